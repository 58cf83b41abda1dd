#include "bus/core/deliveries.hpp"

#include <algorithm>
#include <exception>

#include "store/payloads.hpp"

namespace botbus::bus {

Deliveries::Deliveries(store::Store& store, DeliveryOptions options) : m_store(store), m_options(options) {
    m_options.window = std::max<std::size_t>(1, m_options.window);
    m_options.max_deliveries = std::max<std::uint32_t>(1, m_options.max_deliveries);
}

void Deliveries::fly(State& state, const InFlight& flight) {
    land(state, flight.seq);
    state.in_flight[flight.seq] = flight;
    state.by_deadline.emplace(flight.deadline_us, flight.seq);
}

void Deliveries::land(State& state, store::Seq seq) {
    const auto it = state.in_flight.find(seq);
    if (it == state.in_flight.end()) return;
    state.by_deadline.erase({it->second.deadline_us, seq});
    state.in_flight.erase(it);
}

void Deliveries::clear_flights(State& state) {
    state.in_flight.clear();
    state.by_deadline.clear();
}

bool Deliveries::belongs(const Reader& reader, const store::MessageRow& row) {
    return reader.is_mailbox() ? row.to == reader.bot : row.channel == reader.channel;
}

void Deliveries::restart(const Reader& reader, const ReaderSettings& settings, std::int64_t now_us) {
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
    // Grace kept from a connection that closed lasts until its deadline.
    std::erase_if(state.grace, [&](const auto& entry) { return entry.second <= now_us; });
    clear_flights(state);
    // Undecided again: whatever was being logged shows as settled if it was.
    state.settling.clear();
    state.last_ack_us = now_us;
    state.online = !settings.pull;
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
    restart(Reader{"", bot, ""}, ReaderSettings{m_options.window, false, false, 0}, now_us);
}

void Deliveries::offline(const Reader& reader) {
    const auto it = m_readers.find(reader);
    if (it == m_readers.end()) return;
    auto& state = it->second;
    if (state.settings.ephemeral) {
        erase_reader(it);
        return;
    }
    // A reconnect within the ack timeout is no failure, as when the close
    // goes unnoticed: what was in flight keeps its grace until its deadline.
    for (const auto& [seq, flight] : state.in_flight) state.grace[seq] = flight.deadline_us;
    clear_flights(state);
    state.cursor = 0;
    state.online = false;
    // The counts stay: a bot that reconnects and fails again gets closer to
    // the dead-letter limit, as a crashing consumer should.
    if (state.deliveries.empty() && state.settling.empty()) erase_reader(it);
}

void Deliveries::forget(const Reader& reader) {
    if (const auto it = m_readers.find(reader); it != m_readers.end()) erase_reader(it);
}

std::map<Reader, Deliveries::State>::iterator Deliveries::erase_reader(std::map<Reader, State>::iterator it) {
    const auto& reader = it->first;
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
}

void Deliveries::settle_upto(State& state, store::Seq upto) {
    while (!state.in_flight.empty() && state.in_flight.begin()->first <= upto) land(state, state.in_flight.begin()->first);
    std::erase_if(state.deliveries, [&](const auto& d) { return d.first <= upto; });
    std::erase_if(state.settling, [&](const auto seq) { return seq <= upto; });
    std::erase_if(state.grace, [&](const auto& entry) { return entry.first <= upto; });
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

void Deliveries::consider(State& state, store::MessageRow row, std::int64_t now_us, DeliveryPlan& plan) {
    const auto seq = row.seq;
    if (state.settings.ephemeral) {
        plan.deliveries.push_back(Delivery{std::move(row), 1, false});
        return;
    }
    if (row.expires_at && *row.expires_at <= now_us) {
        land(state, seq);
        state.settling.insert(seq);
        plan.expired.push_back(seq);
        return;
    }
    auto& count = state.deliveries[seq];
    if (state.grace.erase(seq) > 0 && count > 0) {
        // Pushed again after a restart before its deadline: the same delivery.
        fly(state, InFlight{seq, count, now_us + m_options.ack_timeout_us});
        plan.deliveries.push_back(Delivery{std::move(row), count, true});
        return;
    }
    if (count >= m_options.max_deliveries) {
        land(state, seq);
        state.settling.insert(seq);
        plan.dead.push_back({seq, count});
        return;
    }
    ++count;
    fly(state, InFlight{seq, count, now_us + m_options.ack_timeout_us});
    plan.deliveries.push_back(Delivery{std::move(row), count, count > 1});
}

void Deliveries::read_new(const Reader& reader, State& state, std::size_t room, store::Seq visible,
                          std::int64_t now_us, DeliveryPlan& plan) {
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
                (state.settings.ephemeral || !is_settled(reader, seq))) {
                const auto before = plan.deliveries.size();
                consider(state, std::move(row), now_us, plan);
                delivered += plan.deliveries.size() - before;
            }
            state.cursor = seq;
        }
        bytes += read;
        // A page cut short by max_bytes is not the end of the log.
        at_head = (rows.size() < query.limit && read < query.max_bytes) || state.cursor >= visible;
    }
    plan.position = std::max(state.cursor, floor_seq);
    if (at_head) {
        if (!state.caught_up) {
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
        plan.caught_up = true;
        plan.caught_up_seq = std::max(plan.position, std::min(m_store.consumers().head(reader.channel), visible));
        state.caught_up = true;
    }
}

DeliveryPlan Deliveries::pump(const Reader& reader, store::Seq visible, std::int64_t now_us) {
    DeliveryPlan plan;
    plan.reader = reader;
    auto [it, fresh] = m_readers.try_emplace(reader);
    auto& state = it->second;
    if (fresh) {
        note_added(reader);
        state.settings = ReaderSettings{m_options.window, false, false, 0};
        state.last_ack_us = now_us;
        state.online = true;
    }
    const auto window = state.settings.window;
    const std::size_t room = state.settings.ephemeral ? window : window - std::min(window, state.in_flight.size());
    try {
        read_new(reader, state, room, visible, now_us, plan);
    } catch (const std::exception& e) {
        plan.read_error = e.what();
    }
    return plan;
}

DeliveryPlan Deliveries::pull(const Reader& reader, std::size_t max, store::Seq visible, std::int64_t now_us) {
    DeliveryPlan plan;
    plan.reader = reader;
    try {
        pull_into(plan, max, visible, now_us);
    } catch (const std::exception& e) {
        plan.read_error = e.what();
    }
    if (!plan.deliveries.empty()) m_pulled.insert(reader);
    return plan;
}

void Deliveries::pull_into(DeliveryPlan& plan, std::size_t max, store::Seq visible, std::int64_t now_us) {
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
        consider(state, std::move(*row), now_us, plan);
    }
    const auto window = state.settings.window;
    const auto room = std::min(max - std::min(max, plan.deliveries.size()),
                               window - std::min(window, state.in_flight.size()));
    if (room > 0) {
        read_new(reader, state, room, visible, now_us, plan);
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
                consider(state, std::move(*row), now_us, plan);
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
    return ReaderStatus{it->second.cursor, it->second.in_flight.size(), it->second.last_ack_us,
                        it->second.settings.pull, it->second.online};
}

}  // namespace botbus::bus
