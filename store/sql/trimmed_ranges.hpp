// The runs of seqs retention deleted from the chained log, each with the
// chain hash of its last event (table `trimmed_ranges`, migration 0008), so
// that `botbusd verify` can tell a trimmed gap from a lost one and resume the
// chain after it.
//
// Operation: record() merges a deleted seq into the range that ends just
// before it and the one that starts just after it, so adjacent deletions
// (a channel trimmed a few messages at a time, several channels whose
// messages interleave) stay one row: there are never more rows than events
// left in the log, plus one.
// Concurrency: inside the store's open batch, on its thread.
#pragma once

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"

#include <optional>

#include "store/sql/event_hash.hpp"

namespace botbus::store {

class TrimmedRanges {
public:
    explicit TrimmedRanges(sql::Connection& db);

    // `seq`, with chain hash `hash`, was deleted. Calls come in ascending
    // seq order within a trim.
    void record(Seq seq, const EventHash& hash);
    // The chain hash of `seq` when a recorded range ends there.
    std::optional<EventHash> hash_ending_at(Seq seq);

private:
    sql::Statement m_ending_at;
    sql::Statement m_starting_at;
    sql::Statement m_delete;
    sql::Statement m_insert;
};

// A chain hash read from a BLOB column; throws std::runtime_error when it is
// not 32 bytes.
EventHash hash_from_column(const sql::Column& column, Seq seq);

}  // namespace botbus::store
