// Where a message stream's messages sit (a channel's 'ch/<name>' or a
// mailbox's 'dm/<bot>'), found by probes of the events_by_stream index
// (stream, seq) instead of counting rows.
//
// Operation: a message stream holds messages only, and its stream seqs have
// no gaps among the messages still in the log: retention deletes the oldest
// ones, and a rolled-back append gives its stream seq back. So the messages
// between two of them number the difference of their stream seqs, and the
// N-th newest has a known stream seq, found by bisecting on the seq.
// Each answer costs a few index probes (the N-th newest, O(log² n)),
// whatever the stream's length. Reads see the open batch's appends.
// Concurrency: single-threaded, on the SqliteStore's connection.
#pragma once

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"

#include <cstdint>
#include <optional>
#include <string>

#include "store/event.hpp"

namespace botbus::store {

class StreamPositions {
public:
    explicit StreamPositions(sql::Connection& db);

    // Messages of the stream with a seq above `after`.
    std::int64_t count_after(const std::string& stream, Seq after);
    // The seq of the `count`-th newest message (1: the newest); nothing when
    // the stream holds fewer.
    std::optional<Seq> nth_newest(const std::string& stream, std::uint64_t count);

private:
    struct Position {
        Seq seq = 0;
        Seq stream_seq = 0;
    };
    static std::optional<Position> step(sql::Statement& statement);
    std::optional<Position> newest(const std::string& stream);
    std::optional<Position> oldest(const std::string& stream);
    std::optional<Position> newest_at_or_below(const std::string& stream, Seq seq);
    std::optional<Position> first_at_or_after(const std::string& stream, Seq seq);

    sql::Statement m_newest;
    sql::Statement m_oldest;
    sql::Statement m_at_or_below;
    sql::Statement m_at_or_after;
};

}  // namespace botbus::store
