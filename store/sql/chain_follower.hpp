// The chain hash of any event still in the log, although only the last event
// of each commit stores one (migration 0012).
//
// Operation: the hash of event S is found from the nearest point at or below
// S whose hash is known, called the anchor: an event with a stored hash, the
// end of a trimmed range, or the chain's start (the genesis hash). From there
// the events up to S are hashed again. Any commit ends in a stored hash, so
// the walk is never longer than one commit, however long the log: a commit's
// last event either keeps its hash or, once retention deleted it, its hash
// moved to the end of a trimmed range at or past it.
// Concurrency: inside the store's open batch, on its thread.
#pragma once

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"

#include <vector>

#include "store/sql/event_hash.hpp"

namespace botbus::store {

class ChainFollower {
public:
    explicit ChainFollower(sql::Connection& db);

    // The chain hashes of `seqs` (ascending, each an event in the log),
    // with `chain_start` the last seq before the chain began. Consecutive
    // seqs share one walk. Throws std::runtime_error when an event on the
    // way is missing without a trimmed range to explain it.
    std::vector<EventHash> hashes_at(const std::vector<Seq>& seqs, Seq chain_start);
    EventHash hash_at(Seq seq, Seq chain_start);

private:
    struct Anchor {
        Seq seq = 0;
        EventHash hash{};
    };
    Anchor anchor_at_or_below(Seq seq, Seq chain_start);

    sql::Statement m_stored_at_or_below;
    sql::Statement m_range_ending_at_or_below;
    sql::Statement m_events_between;
};

// The stored fields of an event read by a statement whose first columns are
// seq, ts_us, stream, stream_seq, type, producer, idem_key, payload. The
// views point into the statement's row: valid until it steps or resets.
StoredEventFields stored_fields(const sql::Statement& row);

}  // namespace botbus::store
