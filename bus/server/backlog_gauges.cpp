#include "bus/server/backlog_gauges.hpp"

#include <algorithm>

namespace botbus::bus {

namespace {

constexpr std::string_view k_mailbox_prefix = "dm/";

}  // namespace

bool BacklogGauges::step(std::int64_t now_us) {
    std::size_t budget = m_rows_per_step;
    if (!m_in_subscriptions) {
        if (!step_mailboxes(budget)) return false;
        m_in_subscriptions = true;
    }
    if (!step_subscriptions(budget)) return false;
    m_pass.completed_at_us = now_us;
    m_published = std::exchange(m_pass, {});
    m_in_subscriptions = false;
    m_stream_cursor.clear();
    m_consumer_cursor.reset();
    return true;
}

bool BacklogGauges::step_mailboxes(std::size_t& budget) {
    // Streams are in name order: the mailboxes are the run after "dm/".
    if (m_stream_cursor.empty()) m_stream_cursor = std::string(k_mailbox_prefix);
    while (budget > 0) {
        const auto streams = m_store.message_streams_after(m_stream_cursor, budget);
        if (streams.empty()) return true;
        for (const auto& stream : streams) {
            if (!stream.stream.starts_with(k_mailbox_prefix)) return true;  // past the mailboxes
            m_stream_cursor = stream.stream;
            --budget;
            const auto bot = stream.stream.substr(k_mailbox_prefix.size());
            const auto unsettled = m_store.mailboxes().unsettled_count(bot);
            if (unsettled <= 0) continue;
            const auto depth = static_cast<std::uint64_t>(unsettled);
            ++m_pass.mailboxes;
            m_pass.mailbox_messages += depth;
            m_pass.mailbox_max = std::max(m_pass.mailbox_max, depth);
            if (const auto sent = m_store.mailboxes().oldest_unsettled_ts(bot)) {
                m_pass.oldest_unacked_us = std::min(m_pass.oldest_unacked_us.value_or(*sent), *sent);
            }
        }
    }
    return false;
}

bool BacklogGauges::step_subscriptions(std::size_t& budget) {
    while (budget > 0) {
        store::ConsumerFilter filter;
        filter.after = m_consumer_cursor;
        filter.limit = budget;
        const auto rows = m_store.consumers().consumers(filter);
        for (const auto& row : rows) {
            m_consumer_cursor = std::make_pair(row.channel, row.bot);
            const auto lag = static_cast<std::uint64_t>(std::max<std::int64_t>(row.unsettled, 0));
            ++m_pass.subscriptions;
            m_pass.subscription_lag += lag;
            m_pass.subscription_max_lag = std::max(m_pass.subscription_max_lag, lag);
        }
        budget -= std::min(budget, rows.size());
        if (rows.size() < filter.limit) return true;
    }
    return false;
}

}  // namespace botbus::bus
