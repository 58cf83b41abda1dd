#include "bus/core/deliveries.hpp"

#include <algorithm>
#include <exception>

#include "store/payloads.hpp"

namespace botbus::bus {

std::string connection_name(const Holder& holder) {
    if (holder.empty()) return "fan_out";
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string name;
    name.reserve(2 * holder.size());
    for (const auto c : holder) {
        const auto byte = static_cast<unsigned char>(c);
        name += k_digits[byte >> 4];
        name += k_digits[byte & 0xf];
    }
    return name;
}

Deliveries::Deliveries(store::Store& store, DeliveryOptions options) : m_store(store), m_options(options) {
    m_options.window = std::max<std::size_t>(1, m_options.window);
    m_options.max_deliveries = std::max<std::uint32_t>(1, m_options.max_deliveries);
}

void Deliveries::fly(State& state, const InFlight& flight) {
    land(state, flight.seq);
    state.in_flight[flight.seq] = flight;
    state.by_deadline.emplace(flight.deadline_us, flight.seq);
    if (const auto c = state.consumers.find(flight.holder); c != state.consumers.end()) ++c->second.holding;
}

void Deliveries::land(State& state, store::Seq seq) {
    const auto it = state.in_flight.find(seq);
    if (it == state.in_flight.end()) return;
    if (const auto c = state.consumers.find(it->second.holder); c != state.consumers.end() && c->second.holding > 0) {
        --c->second.holding;
    }
    state.by_deadline.erase({it->second.deadline_us, seq});
    state.in_flight.erase(it);
}

void Deliveries::clear_flights(State& state) {
    state.in_flight.clear();
    state.by_deadline.clear();
    for (auto& [holder, consumer] : state.consumers) consumer.holding = 0;
}

std::size_t Deliveries::free_credit(const State& state, const std::function<bool(const Holder&)>& takes) {
    std::size_t room = 0;
    for (const auto& [holder, consumer] : state.consumers) {
        if (takes && !takes(holder)) continue;
        room += consumer.window - std::min(consumer.window, consumer.holding);
    }
    return room;
}

std::optional<Holder> Deliveries::pick(const State& state, const std::function<bool(const Holder&)>& takes, bool over) {
    // The most free credit; among equals the one holding least, then the first.
    const Holder* best = nullptr;
    std::int64_t best_free = 0;
    std::size_t best_holding = 0;
    for (const auto& [holder, consumer] : state.consumers) {
        if (takes && !takes(holder)) continue;
        const auto free = static_cast<std::int64_t>(consumer.window) - static_cast<std::int64_t>(consumer.holding);
        if (!best || free > best_free || (free == best_free && consumer.holding < best_holding)) {
            best = &holder;
            best_free = free;
            best_holding = consumer.holding;
        }
    }
    if (!best || (!over && best_free <= 0)) {
        if (over && !best && !state.consumers.empty()) return state.consumers.begin()->first;
        return std::nullopt;
    }
    return *best;
}

void Deliveries::hand_over(State& state, const Holder& holder) {
    std::vector<store::Seq> held;
    for (const auto& [seq, flight] : state.in_flight) {
        if (flight.holder == holder) held.push_back(seq);
    }
    for (const auto seq : held) {
        land(state, seq);
        state.handed_over.insert(seq);
    }
}

void Deliveries::go_offline(State& state, std::int64_t now_us) {
    // A reconnect within the ack timeout is no failure, as when the close
    // goes unnoticed: what was in flight keeps its grace until its deadline.
    for (const auto& [seq, flight] : state.in_flight) state.grace[seq] = flight.deadline_us;
    for (const auto seq : state.handed_over) state.grace.try_emplace(seq, now_us + m_options.ack_timeout_us);
    state.handed_over.clear();
    clear_flights(state);
    state.consumers.clear();
    state.cursor = 0;
    state.online = false;
}

bool Deliveries::belongs(const Reader& reader, const store::MessageRow& row) {
    return reader.is_mailbox() ? row.to == reader.bot : row.channel == reader.channel;
}

std::uint32_t& Deliveries::count_of(const Reader& reader, State& state, store::Seq seq) {
    auto [it, fresh] = state.deliveries.try_emplace(seq, 0);
    if (fresh && m_resume_counts && !state.settings.ephemeral) {
        // Read once per reader and then per message below the mark: after a
        // restart, only the messages delivered before it cost a lookup.
        if (!state.recorded_upto) state.recorded_upto = m_store.mailboxes().delivered_upto(reader.bot, reader.channel);
        if (seq <= *state.recorded_upto) {
            it->second = std::max<std::uint32_t>(1, m_store.mailboxes().delivery_count(reader.bot, reader.channel, seq));
        }
    }
    return it->second;
}

void Deliveries::restart(const Reader& reader, const ReaderSettings& settings, std::int64_t now_us,
                         const Holder& holder) {
    auto [it, fresh] = m_readers.try_emplace(reader);
    if (fresh) note_added(reader);
    auto& state = it->second;
    state.settings = settings;
    state.settings.window = std::max<std::size_t>(1, settings.window);
    state.cursor = settings.ephemeral ? settings.start_after : 0;
    state.caught_up = false;
    // Grace from an earlier restart not yet pumped stays: two restarts in one
    // released batch (two subscribes, a pool's hellos) are still no failure.
    for (const auto& [seq, flight] : state.in_flight) {
        if (flight.deadline_us > now_us) state.grace[seq] = flight.deadline_us;
    }
    for (const auto seq : state.handed_over) state.grace.try_emplace(seq, now_us + m_options.ack_timeout_us);
    state.handed_over.clear();
    // Grace kept from a connection that closed lasts until its deadline.
    std::erase_if(state.grace, [&](const auto& entry) { return entry.second <= now_us; });
    clear_flights(state);
    state.consumers.clear();
    if (!settings.pull) {
        state.consumers[holder] = Consumer{state.settings.window, 0, false};
        if (!holder.empty()) m_holders[holder].insert(reader);
    }
    // Undecided again: whatever was being logged shows as settled if it was.
    state.settling.clear();
    state.last_ack_us = now_us;
    state.online = !settings.pull;
}

void Deliveries::attach(const Reader& reader, const Holder& holder, const ReaderSettings& settings,
                        std::int64_t now_us) {
    const auto it = m_readers.find(reader);
    const bool starts = it == m_readers.end() || settings.ephemeral || it->second.settings.pull != settings.pull ||
                        (!settings.pull && it->second.consumers.empty());
    if (starts) {
        restart(reader, settings, now_us, holder);
        // A fetching connection is listed, without a window of its own.
        if (settings.pull && !holder.empty()) {
            m_holders[holder].insert(reader);
            m_readers[reader].consumers[holder] = Consumer{0, 0, true};
        }
        return;
    }
    auto& state = it->second;
    if (!holder.empty()) m_holders[holder].insert(reader);
    if (settings.pull) {
        state.settings.window = std::max<std::size_t>(1, settings.window);
        if (!holder.empty()) state.consumers.try_emplace(holder, Consumer{0, 0, true});
        return;
    }
    // A consumer attaching again (a second hello, a second subscribe) gets
    // what it held pushed again, as a restart would, without the others'.
    if (state.consumers.contains(holder)) hand_over(state, holder);
    auto& consumer = state.consumers[holder];
    consumer.window = std::max<std::size_t>(1, settings.window);
    consumer.announced = false;
    state.online = true;
}

void Deliveries::detach(const Reader& reader, const Holder& holder, std::int64_t now_us) {
    if (const auto it = m_readers.find(reader); it != m_readers.end()) leave(it, holder, now_us);
}

void Deliveries::leave(std::map<Reader, State>::iterator it, const std::optional<Holder>& holder,
                       std::int64_t now_us) {
    auto& state = it->second;
    if (state.settings.ephemeral) {
        erase_reader(it);
        return;
    }
    if (holder) {
        hand_over(state, *holder);
        state.consumers.erase(*holder);
        unhold(*holder, it->first);
        if (state.settings.pull || !state.consumers.empty()) return;
    }
    for (const auto& [gone, consumer] : state.consumers) unhold(gone, it->first);
    go_offline(state, now_us);
    // The counts stay: a bot that reconnects and fails again gets closer to
    // the dead-letter limit, as a crashing consumer should.
    if (state.deliveries.empty() && state.settling.empty()) erase_reader(it);
}

std::vector<Reader> Deliveries::connection_gone(const Holder& holder, std::int64_t now_us) {
    std::vector<Reader> handing;
    const auto held = m_holders.find(holder);
    if (held == m_holders.end()) return handing;
    const auto readers = std::move(held->second);
    m_holders.erase(held);
    for (const auto& reader : readers) {
        const auto it = m_readers.find(reader);
        if (it == m_readers.end()) continue;
        detach(reader, holder, now_us);
        const auto still = m_readers.find(reader);
        if (still != m_readers.end() && !still->second.handed_over.empty()) handing.push_back(reader);
    }
    return handing;
}

bool Deliveries::has_consumers(const Reader& reader) const {
    const auto it = m_readers.find(reader);
    return it != m_readers.end() && !it->second.consumers.empty();
}

bool Deliveries::has_consumer(const Reader& reader, const Holder& holder) const {
    const auto it = m_readers.find(reader);
    return it != m_readers.end() && it->second.consumers.contains(holder);
}

void Deliveries::abandon(const DeliveryPlan& plan) {
    const auto it = m_readers.find(plan.reader);
    if (it == m_readers.end()) return;
    auto& state = it->second;
    // Read again from before the first of them, so the next read decides
    // them anew (what is in flight or settled meanwhile is skipped).
    const auto again = [&](store::Seq seq) {
        state.settling.erase(seq);
        state.cursor = std::min(state.cursor, seq - 1);
    };
    for (const auto seq : plan.expired) again(seq);
    for (const auto& dead : plan.dead) again(dead.seq);
}

void Deliveries::restart_mailbox(const std::string& bot, std::int64_t now_us) {
    restart(Reader{"", bot, ""}, ReaderSettings{m_options.window, false, false, 0}, now_us, Holder{});
}

void Deliveries::offline(const Reader& reader) {
    if (const auto it = m_readers.find(reader); it != m_readers.end()) leave(it, std::nullopt, 0);
}

void Deliveries::forget(const Reader& reader) {
    if (const auto it = m_readers.find(reader); it != m_readers.end()) erase_reader(it);
}

std::map<Reader, Deliveries::State>::iterator Deliveries::erase_reader(std::map<Reader, State>::iterator it) {
    const auto& reader = it->first;
    for (const auto& [holder, consumer] : it->second.consumers) unhold(holder, reader);
    for (const auto& [seq, flight] : it->second.in_flight) unhold(flight.holder, reader);
    if (!reader.connection.empty()) {
        const auto bot = m_live.find(reader.bot);
        if (bot != m_live.end()) {
            const auto channel = bot->second.find(reader.channel);
            if (channel != bot->second.end() && --channel->second == 0) bot->second.erase(channel);
            if (bot->second.empty()) m_live.erase(bot);
        }
    }
    return m_readers.erase(it);
}

void Deliveries::unhold(const Holder& holder, const Reader& reader) {
    const auto it = m_holders.find(holder);
    if (it == m_holders.end()) return;
    it->second.erase(reader);
    if (it->second.empty()) m_holders.erase(it);
}

void Deliveries::note_added(const Reader& reader) {
    if (!reader.connection.empty()) ++m_live[reader.bot][reader.channel];
}

std::vector<std::string> Deliveries::live_channels(const std::string& bot) const {
    std::vector<std::string> channels;
    if (const auto it = m_live.find(bot); it != m_live.end()) {
        for (const auto& [channel, readers] : it->second) channels.push_back(channel);
    }
    return channels;
}

bool Deliveries::receives_live(const std::string& bot, const std::string& channel) const {
    const auto it = m_live.find(bot);
    return it != m_live.end() && it->second.contains(channel);
}

std::vector<Reader> Deliveries::end_ephemeral(const std::string& channel) {
    std::vector<Reader> ended;
    for (auto it = m_readers.lower_bound(Reader{channel, "", ""}); it != m_readers.end() && it->first.channel == channel;) {
        if (it->second.settings.ephemeral) {
            ended.push_back(it->first);
            it = erase_reader(it);
        } else {
            ++it;
        }
    }
    return ended;
}

void Deliveries::settle(State& state, store::Seq seq) {
    land(state, seq);
    state.deliveries.erase(seq);
    state.settling.erase(seq);
    state.grace.erase(seq);
    state.handed_over.erase(seq);
}

void Deliveries::settle_upto(State& state, store::Seq upto) {
    while (!state.in_flight.empty() && state.in_flight.begin()->first <= upto) land(state, state.in_flight.begin()->first);
    std::erase_if(state.deliveries, [&](const auto& d) { return d.first <= upto; });
    std::erase_if(state.settling, [&](const auto seq) { return seq <= upto; });
    std::erase_if(state.grace, [&](const auto& entry) { return entry.first <= upto; });
    std::erase_if(state.handed_over, [&](const auto seq) { return seq <= upto; });
}

std::optional<Reader> Deliveries::on_settled(const store::Event& event, std::int64_t now_us) {
    msgpack::object_handle keep_alive;
    Reader reader;
    std::optional<std::uint64_t> upto;
    std::vector<std::uint64_t> seqs;
    const auto& type = event.type;
    if (type == store::EventType::mailbox_acked) {
        auto p = store::decode_payload<store::MailboxAcked>(type, event.payload, keep_alive);
        reader.bot = event.producer;
        upto = p.upto;
        if (p.seqs) seqs = std::move(*p.seqs);
    } else if (type == store::EventType::consumer_acked) {
        auto p = store::decode_payload<store::ConsumerAcked>(type, event.payload, keep_alive);
        reader.bot = p.bot;
        reader.channel = p.channel;
        upto = p.upto;
        if (p.seqs) seqs = std::move(*p.seqs);
    } else if (type == store::EventType::message_expired) {
        auto p = store::decode_payload<store::MessagesExpired>(type, event.payload, keep_alive);
        reader.bot = p.bot;
        seqs = std::move(p.seqs);
    } else if (type == store::EventType::message_dead_lettered) {
        const auto p = store::decode_payload<store::MessageDeadLettered>(type, event.payload, keep_alive);
        reader.bot = p.bot;
        reader.channel = p.channel.value_or("");
        seqs.push_back(p.message_seq);
    } else {
        return std::nullopt;
    }
    const auto it = m_readers.find(reader);
    if (it == m_readers.end()) return reader;
    auto& state = it->second;
    if (upto) settle_upto(state, *upto);
    for (const auto seq : seqs) settle(state, seq);
    if (type == store::EventType::mailbox_acked || type == store::EventType::consumer_acked) {
        state.last_ack_us = now_us;
    }
    return reader;
}

store::Seq Deliveries::floor(const Reader& reader, const State& state) {
    if (state.settings.ephemeral) return state.settings.start_after;
    if (reader.is_mailbox()) return m_store.messages().mailbox_acked(reader.bot);
    return m_store.consumers().floor(reader.bot, reader.channel).value_or(0);
}

bool Deliveries::is_settled(const Reader& reader, store::Seq seq) {
    if (reader.is_mailbox()) return m_store.mailboxes().is_settled(reader.bot, seq);
    return m_store.consumers().is_settled(reader.bot, reader.channel, seq);
}

void Deliveries::consider(State& state, store::MessageRow row, std::int64_t now_us, DeliveryPlan& plan,
                          const Holder& holder) {
    const auto seq = row.seq;
    if (state.settings.ephemeral) {
        plan.deliveries.push_back(Delivery{std::move(row), 1, false, holder});
        return;
    }
    if (row.expires_at && *row.expires_at <= now_us) {
        land(state, seq);
        state.settling.insert(seq);
        plan.expired.push_back(seq);
        return;
    }
    auto& count = count_of(plan.reader, state, seq);
    if ((state.grace.erase(seq) > 0 || state.handed_over.erase(seq) > 0) && count > 0) {
        // Pushed again after a restart before its deadline, or handed over
        // from a consumer that left: the same delivery.
        fly(state, InFlight{seq, count, now_us + m_options.ack_timeout_us, holder});
        plan.deliveries.push_back(Delivery{std::move(row), count, true, holder});
        return;
    }
    if (count >= m_options.max_deliveries) {
        land(state, seq);
        state.settling.insert(seq);
        plan.dead.push_back({seq, count});
        return;
    }
    ++count;
    fly(state, InFlight{seq, count, now_us + m_options.ack_timeout_us, holder});
    m_attempts.push_back(DeliveryAttempt{plan.reader, seq, count});
    plan.deliveries.push_back(Delivery{std::move(row), count, count > 1, holder});
}

void Deliveries::deliver_handed_over(const Reader& reader, State& state, std::size_t& room, std::int64_t now_us,
                                     DeliveryPlan& plan, const std::function<std::optional<Holder>()>& next_holder) {
    while (room > 0 && !state.handed_over.empty()) {
        const auto seq = *state.handed_over.begin();
        auto row = m_store.messages().message(seq);
        if (!row || !belongs(reader, *row) || is_settled(reader, seq)) {
            settle(state, seq);
            continue;
        }
        const auto holder = next_holder();
        if (!holder) break;
        const auto before = plan.deliveries.size();
        consider(state, std::move(*row), now_us, plan, *holder);
        state.handed_over.erase(seq);  // expired or given up on: settling now
        room -= std::min(room, plan.deliveries.size() - before);
    }
}

void Deliveries::announce(State& state, DeliveryPlan& plan, store::Seq seq) {
    for (auto& [holder, consumer] : state.consumers) {
        if (consumer.announced) continue;
        consumer.announced = true;
        plan.caught_up = true;
        plan.caught_up_seq = seq;
        plan.caught_up_holders.push_back(holder);
    }
}

void Deliveries::read_new(const Reader& reader, State& state, std::size_t room, store::Seq visible,
                          std::int64_t now_us, DeliveryPlan& plan,
                          const std::function<std::optional<Holder>()>& next_holder) {
    auto& messages = m_store.messages();
    std::size_t delivered = 0;
    // Read once: nothing this pass decides moves the floor (settlements are
    // logged later, in batches of their own).
    const auto floor_seq = floor(reader, state);
    // A read that ends exactly on the newest visible message is at the head
    // too, not only one that comes back short.
    bool at_head = std::max(state.cursor, floor_seq) >= visible;
    std::size_t bytes = 0;
    for (const auto& delivery : plan.deliveries) bytes += store::message_bytes(delivery.message);
    while (delivered < room && !at_head) {
        if (bytes >= m_options.max_read_bytes) {
            plan.more = true;
            break;
        }
        store::HistoryQuery query;
        if (reader.is_mailbox()) {
            query.scope = store::HistoryQuery::Scope::inbox;
            query.bot_a = reader.bot;
        } else {
            query.scope = store::HistoryQuery::Scope::channel;
            query.channel = reader.channel;
        }
        query.after = std::max(state.cursor, floor_seq);
        query.before = visible + 1;
        query.limit = std::min<std::size_t>(room - delivered, 1000);
        query.max_bytes = m_options.max_read_bytes - bytes;
        auto rows = messages.history(query);
        std::size_t read = 0;
        for (auto& row : rows) {
            read += store::message_bytes(row);
            const auto seq = row.seq;
            // The cursor passes a row only once it is decided: when a read
            // throws, the row is read again next time.
            if (!state.in_flight.contains(seq) && !state.settling.contains(seq) &&
                !state.handed_over.contains(seq) && (state.settings.ephemeral || !is_settled(reader, seq))) {
                const auto holder = delivered < room ? next_holder() : std::nullopt;
                if (!holder) break;  // every window is full: read again from here
                const auto before = plan.deliveries.size();
                consider(state, std::move(row), now_us, plan, *holder);
                delivered += plan.deliveries.size() - before;
            }
            state.cursor = seq;
        }
        bytes += read;
        // A page cut short by max_bytes is not the end of the log; nor one
        // left part-read because the windows filled.
        const bool whole = rows.empty() || state.cursor == rows.back().seq;
        at_head = (whole && rows.size() < query.limit && read < query.max_bytes) || state.cursor >= visible;
        if (!whole) break;
    }
    plan.position = std::max(state.cursor, floor_seq);
    if (at_head) {
        if (!state.caught_up) {
            state.caught_up_seq = plan.position;
            // Pulled readers and mailboxes: reported once, nobody to announce to.
            plan.caught_up = true;
            plan.caught_up_seq = plan.position;
        }
        state.caught_up = true;
        plan.at_head = true;
    } else if (!state.caught_up && !reader.is_mailbox() && !state.settings.pull && !state.settings.ephemeral) {
        // The credit ran out inside the history. The marker needs no credit:
        // a consumer that waits for it before acknowledging would otherwise
        // wait for a redelivery. It names where the history ends; the rest
        // of it follows as acknowledgements make room.
        state.caught_up_seq = std::max(plan.position, std::min(m_store.consumers().head(reader.channel), visible));
        state.caught_up = true;
    }
    // Each consumer is told once where the history it joined ends: the
    // first ones where the reader caught up, a later one where it joined.
    if (state.caught_up && !reader.is_mailbox() && !state.settings.pull) {
        announce(state, plan, std::max(state.caught_up_seq, plan.position));
    }
}

DeliveryPlan Deliveries::pump(const Reader& reader, store::Seq visible, std::int64_t now_us,
                              const std::function<bool(const Holder&)>& takes) {
    DeliveryPlan plan;
    plan.reader = reader;
    auto [it, fresh] = m_readers.try_emplace(reader);
    auto& state = it->second;
    if (fresh) {
        // A mailbox pumped before any hello named a consumer (the unit
        // tests): one consumer with the default window.
        note_added(reader);
        state.settings = ReaderSettings{m_options.window, false, false, 0};
        state.consumers[reader.connection] = Consumer{m_options.window, 0, false};
        state.last_ack_us = now_us;
        state.online = true;
    }
    if (state.settings.pull || state.consumers.empty()) return plan;
    try {
        if (!serves(reader, state, now_us)) return plan;
    } catch (const std::exception& e) {
        plan.read_error = e.what();
        return plan;
    }
    const auto next_holder = [&]() -> std::optional<Holder> {
        if (!state.settings.ephemeral) return pick(state, takes, false);
        const auto& holder = state.consumers.begin()->first;
        if (takes && !takes(holder)) return std::nullopt;
        return holder;
    };
    std::size_t room = state.settings.ephemeral ? state.settings.window : free_credit(state, takes);
    try {
        deliver_handed_over(reader, state, room, now_us, plan, next_holder);
        read_new(reader, state, room, visible, now_us, plan, next_holder);
    } catch (const std::exception& e) {
        plan.read_error = e.what();
    }
    return plan;
}

DeliveryPlan Deliveries::pull(const Reader& reader, std::size_t max, store::Seq visible, std::int64_t now_us,
                              const Holder& holder) {
    DeliveryPlan plan;
    plan.reader = reader;
    try {
        pull_into(plan, max, visible, now_us, holder);
    } catch (const std::exception& e) {
        plan.read_error = e.what();
    }
    if (!plan.deliveries.empty()) {
        m_pulled.insert(reader);
        if (!holder.empty()) m_holders[holder].insert(reader);
    }
    return plan;
}

void Deliveries::pull_into(DeliveryPlan& plan, std::size_t max, store::Seq visible, std::int64_t now_us,
                           const Holder& holder) {
    const auto& reader = plan.reader;
    if (!reader.is_mailbox() && !m_store.consumers().floor(reader.bot, reader.channel)) {
        forget(reader);  // unsubscribed meanwhile
        plan.gone = true;
        return;
    }
    auto [it, fresh] = m_readers.try_emplace(reader);
    auto& state = it->second;
    if (fresh) {
        note_added(reader);
        state.settings = ReaderSettings{m_options.window, true, false, 0};
        state.last_ack_us = now_us;
    }
    if (!serves(reader, state, now_us)) {
        plan.position = std::max(state.cursor, floor(reader, state));
        return;
    }
    std::vector<store::Seq> due;
    for (const auto& [deadline, seq] : state.by_deadline) {
        if (due.size() >= max || deadline > now_us) break;
        due.push_back(seq);
    }
    std::sort(due.begin(), due.end());
    for (const auto seq : due) {
        auto row = m_store.messages().message(seq);
        if (!row || !belongs(reader, *row) || is_settled(reader, seq)) {
            settle(state, seq);
            continue;
        }
        consider(state, std::move(*row), now_us, plan, holder);
    }
    const auto to_holder = [&]() -> std::optional<Holder> { return holder; };
    // What a fetcher that went away held, before anything new.
    std::size_t handing = max - std::min(max, plan.deliveries.size());
    deliver_handed_over(reader, state, handing, now_us, plan, to_holder);
    const auto window = state.settings.window;
    const auto room = std::min(max - std::min(max, plan.deliveries.size()),
                               window - std::min(window, state.in_flight.size()));
    if (room > 0) {
        read_new(reader, state, room, visible, now_us, plan, to_holder);
    } else {
        plan.position = std::max(state.cursor, floor(reader, state));
    }
}

std::vector<DeliveryPlan> Deliveries::expire(std::int64_t now_us) {
    std::vector<DeliveryPlan> plans;
    for (auto& [reader, state] : m_readers) {
        if (state.settings.pull || state.settings.ephemeral) continue;
        std::vector<store::Seq> due;
        for (const auto& [deadline, seq] : state.by_deadline) {
            if (deadline > now_us) break;
            due.push_back(seq);
        }
        if (due.empty()) continue;
        std::sort(due.begin(), due.end());  // redelivered in seq order
        DeliveryPlan plan;
        plan.reader = reader;
        try {
            for (const auto seq : due) {
                auto row = m_store.messages().message(seq);
                if (!row || !belongs(reader, *row) || is_settled(reader, seq)) {
                    settle(state, seq);  // settled by a batch not released yet, or gone
                    continue;
                }
                // Taken back first, so the consumer that let it time out may get it again.
                land(state, seq);
                const auto holder = pick(state, {}, true);
                if (!holder) break;
                consider(state, std::move(*row), now_us, plan, *holder);
            }
        } catch (const std::exception& e) {
            plan.read_error = e.what();  // the rest stays due
        }
        plan.position = state.cursor;
        if (!plan.empty() || plan.read_error) plans.push_back(std::move(plan));
    }
    return plans;
}

std::optional<std::int64_t> Deliveries::next_deadline() const {
    std::optional<std::int64_t> next;
    for (const auto& [reader, state] : m_readers) {
        if (state.settings.pull || state.by_deadline.empty()) continue;
        const auto soonest = state.by_deadline.begin()->first;
        if (!next || soonest < *next) next = soonest;
    }
    return next;
}

std::optional<std::int64_t> Deliveries::next_deadline(const Reader& reader) const {
    const auto it = m_readers.find(reader);
    if (it == m_readers.end() || it->second.by_deadline.empty()) return std::nullopt;
    return it->second.by_deadline.begin()->first;
}

bool Deliveries::serves(const Reader& reader, State& state, std::int64_t now_us) {
    if (!m_store.shared() || state.settings.ephemeral || !reader.connection.empty()) return true;
    if (m_claimed.contains(reader)) return true;
    // Claimed once only: a second hold of a session's advisory lock stacks.
    if (const auto refused = m_refused.find(reader); refused != m_refused.end() && now_us < refused->second) {
        return false;
    }
    if (!m_store.claim_reader(reader.channel, reader.bot)) {
        m_refused[reader] = now_us + k_claim_retry_us;
        return false;
    }
    m_refused.erase(reader);
    m_claimed.insert(reader);
    // Read from the floor as the log has it now, and tell the consumers
    // where the history ends again. (Nothing was in flight here: a claim is
    // given up only when nothing is.)
    state.cursor = state.settings.ephemeral ? state.settings.start_after : 0;
    state.caught_up = false;
    state.recorded_upto.reset();
    for (auto& [holder, consumer] : state.consumers) consumer.announced = false;
    return true;
}

std::vector<Reader> Deliveries::refused_readers() {
    std::vector<Reader> wanted;
    for (auto it = m_refused.begin(); it != m_refused.end();) {
        const auto state = m_readers.find(it->first);
        const bool wants = state != m_readers.end() &&
                           (!state->second.consumers.empty() || waiting_fetches(it->first) > 0);
        if (!wants) {
            it = m_refused.erase(it);
            continue;
        }
        wanted.push_back(it->first);
        ++it;
    }
    return wanted;
}

std::size_t Deliveries::release_idle() {
    std::size_t released = 0;
    for (auto it = m_claimed.begin(); it != m_claimed.end();) {
        const auto state = m_readers.find(*it);
        const bool busy = state != m_readers.end() &&
                          (!state->second.consumers.empty() || !state->second.in_flight.empty() ||
                           !state->second.handed_over.empty() || !state->second.settling.empty() ||
                           waiting_fetches(*it) > 0);
        if (busy) {
            ++it;
            continue;
        }
        m_store.release_reader(it->channel, it->bot);
        it = m_claimed.erase(it);
        ++released;
    }
    return released;
}

std::size_t Deliveries::waiting_fetches(const Reader& reader) const {
    const auto it = m_waiting.find(reader);
    return it == m_waiting.end() ? 0 : it->second;
}

void Deliveries::fetch_waits(const Reader& reader) {
    ++m_waiting[reader];
    ++m_waiting_total;
}

void Deliveries::fetch_stopped_waiting(const Reader& reader) {
    const auto it = m_waiting.find(reader);
    if (it == m_waiting.end()) return;
    if (--it->second == 0) m_waiting.erase(it);
    --m_waiting_total;
}

std::vector<Reader> Deliveries::readers_of(const std::string& channel) const {
    std::vector<Reader> out;
    for (auto it = m_readers.lower_bound(Reader{channel, "", ""}); it != m_readers.end() && it->first.channel == channel;
         ++it) {
        if (!it->second.settings.pull) out.push_back(it->first);
    }
    return out;
}

std::vector<Reader> Deliveries::channel_readers() const {
    std::vector<Reader> out;
    for (const auto& [reader, state] : m_readers) {
        if (!reader.is_mailbox()) out.push_back(reader);
    }
    return out;
}

std::vector<InFlight> Deliveries::in_flight(const Reader& reader, std::size_t limit) const {
    std::vector<InFlight> out;
    const auto it = m_readers.find(reader);
    if (it == m_readers.end()) return out;
    for (const auto& [seq, flight] : it->second.in_flight) {
        if (out.size() >= limit) break;
        out.push_back(flight);
    }
    return out;
}

std::optional<ReaderStatus> Deliveries::status(const Reader& reader) const {
    const auto it = m_readers.find(reader);
    if (it == m_readers.end()) return std::nullopt;
    const auto& state = it->second;
    ReaderStatus status{state.cursor, state.in_flight.size(), state.last_ack_us, state.settings.pull, state.online, {}};
    for (const auto& [holder, consumer] : state.consumers) {
        status.consumers.push_back(ConsumerStatus{holder, consumer.window, consumer.holding});
    }
    if (state.settings.pull) {
        // Connections that fetch without having subscribed on that connection.
        std::map<Holder, std::size_t> held;
        for (const auto& [seq, flight] : state.in_flight) {
            if (!state.consumers.contains(flight.holder)) ++held[flight.holder];
        }
        for (const auto& [holder, count] : held) status.consumers.push_back(ConsumerStatus{holder, 0, count});
    }
    return status;
}

}  // namespace botbus::bus
