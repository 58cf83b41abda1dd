#include "store/trimmer.hpp"

#include <algorithm>
#include <vector>

#include "store/payloads.hpp"
#include "store/statement_helpers.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;

Trimmer::Trimmer(Store& store, RetentionLimits defaults)
    : m_store(store),
      m_defaults(defaults),
      // Channels and mailboxes only: 'ch/' .. 'ch0' and 'dm/' .. 'dm0' are
      // the name ranges of those streams ('0' follows '/').
      m_streams_after(store.database(),
                      "SELECT stream, last_stream_seq FROM streams WHERE stream > ?1"
                      " AND ((stream > 'ch/' AND stream < 'ch0') OR (stream > 'dm/' AND stream < 'dm0'))"
                      " ORDER BY stream LIMIT ?2"),
      m_oldest(store.database(),
               "SELECT seq, stream_seq, ts_us FROM events WHERE stream = ?1"
               " AND type IN ('message.published', 'message.sent') ORDER BY seq LIMIT ?2"),
      m_delete(store.database(),
               "DELETE FROM events WHERE stream = ?1 AND seq <= ?2 AND type IN ('message.published', 'message.sent')") {}

std::size_t Trimmer::step(Batch& batch, std::int64_t now_us, std::size_t budget) {
    struct Candidate {
        std::string stream;
        Seq last_stream_seq;
    };
    std::vector<Candidate> streams;
    {
        ResetOnExit reset{m_streams_after};
        m_streams_after.bind(1, m_cursor);
        m_streams_after.bind(2, static_cast<std::int64_t>(k_streams_per_step));
        while (m_streams_after.executeStep()) {
            streams.push_back({m_streams_after.getColumn(0).getString(),
                               static_cast<Seq>(m_streams_after.getColumn(1).getInt64())});
        }
    }
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

    struct Row {
        Seq seq;
        Seq stream_seq;
        std::int64_t ts_us;
    };
    std::vector<Row> rows;
    {
        ResetOnExit reset{m_oldest};
        m_oldest.bind(1, stream);
        m_oldest.bind(2, static_cast<std::int64_t>(budget));
        while (m_oldest.executeStep()) {
            rows.push_back({static_cast<Seq>(m_oldest.getColumn(0).getInt64()),
                            static_cast<Seq>(m_oldest.getColumn(1).getInt64()), m_oldest.getColumn(2).getInt64()});
        }
    }
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
    m_delete.bind(1, stream);
    m_delete.bind(2, static_cast<std::int64_t>(through));
    exec_and_reset(m_delete);
    batch.append({std::string(stream::k_retention), std::string(event_type::k_stream_trimmed), "botbusd", std::nullopt,
                  encode_payload(StreamTrimmed{stream, through, count})});
    return count;
}

}  // namespace botbus::store
