#include "store/trimmer.hpp"

#include <algorithm>
#include <vector>

namespace botbus::store {

Trimmer::Trimmer(Store& store, RetentionLimits defaults) : m_store(store), m_defaults(defaults) {}

std::size_t Trimmer::step(Batch& batch, std::int64_t now_us, std::size_t budget) {
    const auto streams = m_store.message_streams_after(m_cursor, k_streams_per_step);
    // Fewer than a step's worth: the next step starts over from the first.
    m_cursor = streams.size() < k_streams_per_step ? std::string() : streams.back().stream;
    std::size_t trimmed = 0;
    for (const auto& candidate : streams) {
        if (trimmed >= budget) {
            m_cursor.clear();
            break;
        }
        trimmed += trim_stream(batch, candidate.stream, candidate.last_stream_seq, now_us, budget - trimmed);
    }
    return trimmed;
}

std::size_t Trimmer::trim_stream(Batch& batch, const std::string& stream, Seq last_stream_seq, std::int64_t now_us,
                                 std::size_t budget) {
    const bool mailbox = stream.starts_with("dm/");
    const auto name = stream.substr(3);
    RetentionLimits limits = m_defaults;
    Seq floor = 0;  // a mailbox loses only settled messages: those at or below its floor
    if (mailbox) {
        floor = m_store.messages().mailbox_acked(name);
        if (floor == 0) return 0;
    } else if (const auto channel = m_store.messages().channel(name)) {
        if (channel->max_age_ms) limits.max_age_ms = *channel->max_age_ms;
        if (channel->max_messages) limits.max_messages = *channel->max_messages;
    }
    if (!limits.any()) return 0;

    const auto rows = m_store.oldest_messages(stream, budget);
    if (rows.empty()) return 0;
    // A stream's messages are numbered without gaps and trimmed oldest first,
    // so the count retained is the span from the oldest to the newest.
    const auto retained = last_stream_seq - rows.front().stream_seq + 1;
    const auto cutoff_us = limits.max_age_ms > 0
                               ? now_us - static_cast<std::int64_t>(std::min<std::uint64_t>(limits.max_age_ms, INT64_MAX / 1000)) * 1000
                               : INT64_MIN;
    std::size_t count = 0;
    for (const auto& row : rows) {
        const bool over_count = limits.max_messages > 0 && retained - count > limits.max_messages;
        const bool too_old = limits.max_age_ms > 0 && row.ts_us < cutoff_us;
        if (!over_count && !too_old) break;
        if (mailbox && row.seq > floor) break;
        ++count;
    }
    if (count == 0) return 0;
    const auto through = rows[count - 1].seq;
    m_store.trim_messages(batch, stream, through, count);
    return count;
}

}  // namespace botbus::store
