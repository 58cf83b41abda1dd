#include "bus/mailbox_delivery.hpp"

#include <algorithm>

#include "store/payloads.hpp"

namespace botbus::bus {

MailboxDelivery::MailboxDelivery(store::Store& store, DeliveryOptions options)
    : m_store(store), m_options(options) {
    m_options.window = std::max<std::size_t>(1, m_options.window);
    m_options.max_deliveries = std::max<std::uint32_t>(1, m_options.max_deliveries);
}

void MailboxDelivery::restart(const std::string& bot) {
    auto& state = m_bots[bot];
    state.cursor = 0;
    state.in_flight.clear();
}

void MailboxDelivery::offline(const std::string& bot) {
    const auto it = m_bots.find(bot);
    if (it == m_bots.end()) return;
    it->second.in_flight.clear();
    it->second.cursor = 0;
    // The counts stay: a bot that reconnects and fails again gets closer to
    // the dead-letter limit, as a crashing consumer should.
    if (it->second.deliveries.empty() && it->second.settling.empty()) m_bots.erase(it);
}

void MailboxDelivery::settle(BotState& state, store::Seq seq) {
    state.in_flight.erase(seq);
    state.deliveries.erase(seq);
    state.settling.erase(seq);
}

void MailboxDelivery::on_settled(const store::Event& event) {
    msgpack::object_handle keep_alive;
    if (event.type == store::event_type::k_mailbox_acked) {
        const auto it = m_bots.find(event.producer);
        if (it == m_bots.end()) return;
        auto& state = it->second;
        const auto p = store::decode_payload<store::MailboxAcked>(event.type, event.payload, keep_alive);
        if (p.upto) {
            for (auto f = state.in_flight.begin(); f != state.in_flight.end() && f->first <= *p.upto;) {
                state.deliveries.erase(f->first);
                f = state.in_flight.erase(f);
            }
            std::erase_if(state.deliveries, [&](const auto& d) { return d.first <= *p.upto; });
        }
        if (p.seqs) {
            for (const auto seq : *p.seqs) settle(state, seq);
        }
    } else if (event.type == store::event_type::k_message_expired) {
        const auto p = store::decode_payload<store::MessagesExpired>(event.type, event.payload, keep_alive);
        const auto it = m_bots.find(p.bot);
        if (it == m_bots.end()) return;
        for (const auto seq : p.seqs) settle(it->second, seq);
    } else if (event.type == store::event_type::k_message_dead_lettered) {
        const auto p = store::decode_payload<store::MessageDeadLettered>(event.type, event.payload, keep_alive);
        const auto it = m_bots.find(p.bot);
        if (it == m_bots.end()) return;
        settle(it->second, p.message_seq);
    }
}

void MailboxDelivery::consider(BotState& state, store::MessageRow row, std::int64_t now_us, DeliveryPlan& plan) {
    const auto seq = row.seq;
    if (row.expires_at && *row.expires_at <= now_us) {
        state.in_flight.erase(seq);
        state.settling.insert(seq);
        plan.expired.push_back(seq);
        return;
    }
    auto& count = state.deliveries[seq];
    if (count >= m_options.max_deliveries) {
        state.in_flight.erase(seq);
        state.settling.insert(seq);
        plan.dead.push_back({seq, count});
        return;
    }
    ++count;
    state.in_flight[seq] = InFlight{seq, count, now_us + m_options.ack_timeout_us};
    plan.pushes.push_back(Delivery{std::move(row), count});
}

DeliveryPlan MailboxDelivery::pump(const std::string& bot, store::Seq visible, std::int64_t now_us) {
    DeliveryPlan plan;
    plan.bot = bot;
    auto& state = m_bots[bot];
    auto& messages = m_store.messages();
    auto& mailboxes = m_store.mailboxes();
    while (state.in_flight.size() < m_options.window) {
        store::HistoryQuery query;
        query.scope = store::HistoryQuery::Scope::inbox;
        query.bot_a = bot;
        query.after = std::max(state.cursor, messages.mailbox_acked(bot));
        query.before = visible + 1;
        query.limit = std::min<std::size_t>(m_options.window - state.in_flight.size(), 1000);
        auto rows = messages.history(query);
        for (auto& row : rows) {
            state.cursor = row.seq;
            if (state.in_flight.contains(row.seq) || state.settling.contains(row.seq)) continue;
            if (mailboxes.is_settled(bot, row.seq)) continue;
            consider(state, std::move(row), now_us, plan);
        }
        if (rows.size() < query.limit) break;
    }
    return plan;
}

std::vector<DeliveryPlan> MailboxDelivery::expire(std::int64_t now_us) {
    std::vector<DeliveryPlan> plans;
    for (auto& [bot, state] : m_bots) {
        std::vector<store::Seq> due;
        for (const auto& [seq, flight] : state.in_flight) {
            if (flight.deadline_us <= now_us) due.push_back(seq);
        }
        if (due.empty()) continue;
        DeliveryPlan plan;
        plan.bot = bot;
        for (const auto seq : due) {
            auto row = m_store.messages().message(seq);
            if (!row || m_store.mailboxes().is_settled(bot, seq)) {
                settle(state, seq);  // settled by a batch not released yet, or gone
                continue;
            }
            consider(state, std::move(*row), now_us, plan);
        }
        if (!plan.empty()) plans.push_back(std::move(plan));
    }
    return plans;
}

std::optional<std::int64_t> MailboxDelivery::next_deadline() const {
    std::optional<std::int64_t> next;
    for (const auto& [bot, state] : m_bots) {
        for (const auto& [seq, flight] : state.in_flight) {
            if (!next || flight.deadline_us < *next) next = flight.deadline_us;
        }
    }
    return next;
}

std::vector<InFlight> MailboxDelivery::in_flight(const std::string& bot) const {
    std::vector<InFlight> out;
    const auto it = m_bots.find(bot);
    if (it == m_bots.end()) return out;
    for (const auto& [seq, flight] : it->second.in_flight) out.push_back(flight);
    return out;
}

}  // namespace botbus::bus
