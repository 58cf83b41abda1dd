// The log's own tables, read and trimmed the same way by both stores:
// `events` (by seq, by idempotency key, by stream), `streams` (each stream's
// floor) and the log-count check. What differs between the engines (how a
// batch starts, its savepoints, where the head and counts are kept between
// batches) stays in each store.
// Concurrency: the thread of the connection it was made on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/event.hpp"
#include "store/sql/statement.hpp"
#include "store/store.hpp"

namespace botbus::store {

class LogTable {
public:
    explicit LogTable(sql::Connection& db);

    // Store::read_range: throws on an event type this build does not know
    // (skipping it would make a replay differ from the live projections).
    std::vector<Event> read_range(Seq after, std::size_t limit);
    // The event the producer appended under `key`, as a duplicate.
    std::optional<Appended> find_by_idem_key(const std::string& producer, const std::string& key);

    // A stream's last stream seq (its newest event, or the floor retention
    // left), and whether `streams` lists it.
    struct StreamHead {
        Seq stream_seq = 0;
        bool listed = false;
    };
    StreamHead stream_head(const std::string& stream);
    // Adds a stream that appeared to `streams` (floor 0).
    void list_stream(const std::string& stream);

    // Store::message_streams_after and Store::oldest_messages.
    std::vector<MessageStream> message_streams_after(const std::string& after, std::size_t limit);
    std::vector<MessagePosition> oldest_messages(const std::string& stream, std::size_t limit);
    // The message seqs of `stream` at or below `through`, oldest first.
    std::vector<Seq> messages_through(const std::string& stream, Seq through);
    // Raises the stream's floor to its head, then deletes its messages at or
    // below `through`; returns how many went.
    std::int64_t delete_messages_through(const std::string& stream, Seq through);

    // What log_head keeps of the log's counts against a count of the log
    // (a full count: for rebuild checks), one line per disagreement.
    std::vector<std::string> count_differences();

private:
    sql::Connection& m_db;
    sql::Statement m_read_range;
    sql::Statement m_find_idem;
    sql::Statement m_find_stream;
    sql::Statement m_list_stream;
    sql::Statement m_message_streams_after;
    sql::Statement m_oldest_messages;
    sql::Statement m_messages_through;
    sql::Statement m_raise_floor;
    sql::Statement m_delete_messages;
};

}  // namespace botbus::store
