// The log's hash chain (event_hash.hpp), walked from its first chained event
// to log_head: the first broken or missing link is reported — a seq missing
// from the log without a trimmed range that explains it, an event whose
// stored hash differs from the one its fields and its predecessor give, a
// log_head whose hash is not its last event's. `botbusd verify` on either
// engine (store/sqlite/log_check.hpp adds the seq record beside a SQLite
// file; PostgresStore::check_log runs it in one snapshot).
//
// Operation: reads the events and the trimmed ranges a page at a time, in
// the caller's transaction (one snapshot, so it may run beside nodes that
// keep appending).
// Limitations: events from before migration 0008 carry no hash and are only
// counted. A trimmed range is trusted as a record of what retention deleted;
// the chain resumes from its hash, so a range that also swallowed an event
// nobody trimmed goes unnoticed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "store/event.hpp"
#include "store/sql/connection.hpp"

namespace botbus::store {

struct LogCheck {
    bool intact = true;
    std::string problem;       // the first broken or missing link, when not intact
    Seq last_seq = 0;          // log_head
    Seq chain_start = 0;       // events at or below it predate the chain
    std::uint64_t chained = 0; // events whose link was checked
    std::uint64_t trimmed = 0; // seqs explained by trimmed ranges
    std::uint64_t ranges = 0;  // trimmed ranges walked
    std::optional<Seq> recorded_seq;  // SQLite: the seq record beside the database, if any
};

// Reads log_head and walks the chain into `check`. Throws what the
// connection throws (a schema without the chain: "no such" table or column).
void check_chain(sql::Connection& db, LogCheck& check);

// "seq N" or "seqs N..M", as the problems name them.
std::string range_text(Seq first, Seq last);

}  // namespace botbus::store
