// Rebuilding the projections from the log, and checking a rebuild against
// the live tables. The log is the source of truth: replaying it through the
// Projector must give exactly the rows the daemon wrote.
// SqliteStore::verify_projections (what `botbusd rebuild` runs) wraps these
// in one read transaction; tests call them directly.
// Concurrency: single-threaded; the caller owns both databases and must not
// have a Batch open on the source while these run.
// Limitations: compares the projection tables only (not the log-side tables
// events, log_head, streams, schema_migrations).
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstddef>
#include <string>
#include <vector>

#include "store/event.hpp"

namespace botbus::store {

class Store;

// The projection tables, as compared by compare_projections.
const std::vector<std::string>& projection_tables();

// Migrates `target` (a fresh database) and replays every event of `source`'s
// log into its projections in one transaction. Returns the number of events
// replayed. Throws on a damaged log (undecodable payload) or SQLite error.
std::size_t rebuild_projections(Store& source, SQLite::Database& target);

// Compares every projection table row by row (ordered by primary key) and
// column by column, type and value. Returns one line per difference, at most
// `max_differences` (empty when the projections are identical).
std::vector<std::string> compare_projections(SQLite::Database& live, SQLite::Database& rebuilt,
                                             std::size_t max_differences = 100);

}  // namespace botbus::store
