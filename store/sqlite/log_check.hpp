// `botbusd verify`: walks the log's hash chain (event_hash.hpp) from its
// first chained event to log_head and reports the first broken or missing
// link: a seq missing from the log without a trimmed range that explains
// it, an event whose stored hash differs from the one its fields and its
// predecessor give, a log_head whose hash is not its last event's, and a log
// that ends below the seq record (seq_record.hpp).
//
// Operation: opens the database read-only on a connection of its own and
// reads in one read transaction, so it may run beside a daemon that keeps
// appending (it then checks the snapshot it read).
// Limitations: events from before migration 0008 carry no hash and are only
// counted. A trimmed range is trusted as a record of what retention deleted;
// the chain resumes from its hash, so a range that also swallowed an event
// nobody trimmed goes unnoticed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "store/event.hpp"

namespace botbus::store {

struct LogCheck {
    bool intact = true;
    std::string problem;       // the first broken or missing link, when not intact
    Seq last_seq = 0;          // log_head
    Seq chain_start = 0;       // events at or below it predate the chain
    std::uint64_t chained = 0; // events whose link was checked
    std::uint64_t trimmed = 0; // seqs explained by trimmed ranges
    std::uint64_t ranges = 0;  // trimmed ranges walked
    std::optional<Seq> recorded_seq;  // the seq record beside the database, if any
};

// Throws StartupError when the file cannot be opened or predates the chain.
LogCheck check_log(const std::string& database_path);

}  // namespace botbus::store
