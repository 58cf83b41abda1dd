#include "store/sql/log_table.hpp"

#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;

LogTable::LogTable(sql::Connection& db)
    : m_db(db),
      m_read_range(db,
                   "SELECT seq, ts_us, stream, stream_seq, type, producer, idem_key, payload FROM events"
                   " WHERE seq > ? ORDER BY seq LIMIT ?"),
      m_find_idem(db, "SELECT seq, stream_seq, ts_us, stream FROM events WHERE producer = ? AND idem_key = ?"),
      // A stream's head is its newest event; the floor (NULL: the stream is
      // not listed in `streams` yet) is what retention left behind.
      m_find_stream(db,
                    "SELECT COALESCE((SELECT stream_seq FROM events WHERE stream = ?1 ORDER BY seq DESC LIMIT 1), 0),"
                    " (SELECT floor_stream_seq FROM streams WHERE stream = ?1)"),
      m_list_stream(db,
                    "INSERT INTO streams (stream, floor_stream_seq, floor_seq) VALUES (?, 0, 0)"
                    " ON CONFLICT (stream) DO NOTHING"),
      // Channels and mailboxes only: 'ch/' .. 'ch0' and 'dm/' .. 'dm0' are
      // the name ranges of those streams ('0' follows '/').
      m_message_streams_after(
          db,
          "SELECT s.stream, (SELECT MAX(x) FROM (SELECT s.floor_stream_seq AS x UNION ALL SELECT COALESCE((SELECT"
          " e.stream_seq FROM events e WHERE e.stream = s.stream ORDER BY e.seq DESC LIMIT 1), 0)) AS head)"
          " FROM streams s"
          " WHERE s.stream > ?1 AND ((s.stream > 'ch/' AND s.stream < 'ch0') OR (s.stream > 'dm/' AND s.stream < 'dm0'))"
          " ORDER BY s.stream LIMIT ?2"),
      m_oldest_messages(db,
                        "SELECT seq, stream_seq, ts_us FROM events WHERE stream = ?1"
                        " AND type IN ('message.published', 'message.sent') ORDER BY seq LIMIT ?2"),
      m_messages_through(db,
                         "SELECT seq FROM events WHERE stream = ?1 AND seq <= ?2"
                         " AND type IN ('message.published', 'message.sent') ORDER BY seq"),
      // Before retention deletes from a stream: its head becomes its floor.
      m_raise_floor(db,
                    "INSERT INTO streams (stream, floor_stream_seq, floor_seq)"
                    " SELECT stream, stream_seq, seq FROM events WHERE stream = ?1 ORDER BY seq DESC LIMIT 1"
                    " ON CONFLICT (stream) DO UPDATE SET"
                    " floor_stream_seq = CASE WHEN excluded.floor_stream_seq > streams.floor_stream_seq"
                    " THEN excluded.floor_stream_seq ELSE streams.floor_stream_seq END,"
                    " floor_seq = CASE WHEN excluded.floor_seq > streams.floor_seq"
                    " THEN excluded.floor_seq ELSE streams.floor_seq END"),
      m_delete_messages(db,
                        "DELETE FROM events WHERE stream = ?1 AND seq <= ?2"
                        " AND type IN ('message.published', 'message.sent')") {}

std::vector<Event> LogTable::read_range(Seq after, std::size_t limit) {
    auto& s = m_read_range;
    ResetOnExit reset{s};
    s.bind(1, static_cast<std::int64_t>(after));
    s.bind(2, static_cast<std::int64_t>(limit));
    std::vector<Event> events;
    while (s.executeStep()) {
        Event e;
        e.seq = static_cast<Seq>(s.getColumn(0).getInt64());
        e.ts_us = s.getColumn(1).getInt64();
        e.stream = s.getColumn(2).getString();
        e.stream_seq = static_cast<Seq>(s.getColumn(3).getInt64());
        const auto type_name = s.getColumn(4).getString();
        const auto type = parse_event_type(type_name);
        if (!type) {
            throw std::runtime_error("event seq " + std::to_string(e.seq) + " has type '" + type_name +
                                     "', which this botbusd does not know (a log written by a newer version?)");
        }
        e.type = *type;
        e.producer = s.getColumn(5).getString();
        if (!s.getColumn(6).isNull()) e.idem_key = s.getColumn(6).getString();
        e.payload = s.getColumn(7).getString();
        events.push_back(std::move(e));
    }
    return events;
}

std::optional<Appended> LogTable::find_by_idem_key(const std::string& producer, const std::string& key) {
    auto& find = m_find_idem;
    ResetOnExit reset{find};
    find.bind(1, producer);
    find.bind(2, key);
    std::optional<Appended> found;
    if (find.executeStep()) {
        found = Appended{find.getColumn(3).getString(), static_cast<Seq>(find.getColumn(0).getInt64()),
                         static_cast<Seq>(find.getColumn(1).getInt64()), find.getColumn(2).getInt64(), true};
    }
    return found;
}

LogTable::StreamHead LogTable::stream_head(const std::string& stream) {
    auto& find = m_find_stream;
    ResetOnExit reset{find};
    find.bind(1, stream);
    StreamHead head;
    if (find.executeStep()) {
        head.stream_seq = static_cast<Seq>(find.getColumn(0).getInt64());
        if (!find.getColumn(1).isNull()) {
            head.listed = true;
            head.stream_seq = std::max(head.stream_seq, static_cast<Seq>(find.getColumn(1).getInt64()));
        }
    }
    return head;
}

void LogTable::list_stream(const std::string& stream) {
    m_list_stream.bindNoCopy(1, stream);
    exec_and_reset(m_list_stream);
}

std::vector<MessageStream> LogTable::message_streams_after(const std::string& after, std::size_t limit) {
    auto& s = m_message_streams_after;
    ResetOnExit reset{s};
    s.bind(1, after);
    s.bind(2, static_cast<std::int64_t>(limit));
    std::vector<MessageStream> streams;
    while (s.executeStep()) {
        streams.push_back({s.getColumn(0).getString(), static_cast<Seq>(s.getColumn(1).getInt64())});
    }
    return streams;
}

std::vector<MessagePosition> LogTable::oldest_messages(const std::string& stream, std::size_t limit) {
    auto& s = m_oldest_messages;
    ResetOnExit reset{s};
    s.bind(1, stream);
    s.bind(2, static_cast<std::int64_t>(limit));
    std::vector<MessagePosition> rows;
    while (s.executeStep()) {
        rows.push_back({static_cast<Seq>(s.getColumn(0).getInt64()), static_cast<Seq>(s.getColumn(1).getInt64()),
                        s.getColumn(2).getInt64()});
    }
    return rows;
}

std::vector<Seq> LogTable::messages_through(const std::string& stream, Seq through) {
    auto& seqs = m_messages_through;
    ResetOnExit reset{seqs};
    seqs.bind(1, stream);
    seqs.bind(2, static_cast<std::int64_t>(through));
    std::vector<Seq> found;
    while (seqs.executeStep()) found.push_back(static_cast<Seq>(seqs.getColumn(0).getInt64()));
    return found;
}

std::int64_t LogTable::delete_messages_through(const std::string& stream, Seq through) {
    // Deleting may remove the stream's newest message, which is where its
    // head is read from: the head becomes the stream's floor first.
    m_raise_floor.bind(1, stream);
    exec_and_reset(m_raise_floor);
    m_delete_messages.bind(1, stream);
    m_delete_messages.bind(2, static_cast<std::int64_t>(through));
    return exec_and_reset(m_delete_messages);
}

std::vector<std::string> LogTable::count_differences() {
    // Read rarely (rebuild checks): prepared per call.
    sql::Statement counted(m_db,
                           "SELECT event_count, (SELECT COUNT(*) FROM events), message_count,"
                           " (SELECT COUNT(*) FROM events WHERE (stream >= 'ch/' AND stream < 'ch0')"
                           " OR (stream >= 'dm/' AND stream < 'dm0')) FROM log_head WHERE id = 1");
    std::vector<std::string> differences;
    if (!counted.executeStep()) return differences;
    for (const auto& [kept, actual, name] : {std::tuple{0, 1, "event_count"}, std::tuple{2, 3, "message_count"}}) {
        const auto stored = counted.getColumn(kept).getInt64();
        const auto real = counted.getColumn(actual).getInt64();
        if (stored != real) {
            differences.push_back(std::string("log_head ") + name + ": kept " + std::to_string(stored) +
                                  ", the log holds " + std::to_string(real));
        }
    }
    return differences;
}

}  // namespace botbus::store
