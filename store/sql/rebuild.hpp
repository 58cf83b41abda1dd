// Rebuilding the projections from the log, and checking a rebuild against
// the live tables, on either engine. The log is the source of truth:
// replaying it through the Projector must give exactly the rows the daemon
// wrote. Each store's verify_projections (what `botbusd rebuild` runs) wraps
// these in one read snapshot; store/sqlite/rebuild.hpp has SQLite shorthands
// for tests.
// Concurrency: single-threaded; the caller owns both connections and must not
// have a Batch open on the source while these run.
// Limitations: compares the projection tables only (not the log-side tables
// events, log_head, streams, schema_migrations).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "migrations/embedded_migrations.hpp"
#include "store/event.hpp"
#include "store/sql/connection.hpp"

namespace botbus::store {

class Store;

// The projection tables, as compared by compare_projections.
const std::vector<std::string>& projection_tables();

// Migrates `target` (a fresh database or schema) with `migrations` and
// replays every event of `source`'s log into its projections in one
// transaction. Returns the number of events replayed. Throws on a damaged
// log (undecodable payload) or a database error.
std::size_t rebuild_projections(Store& source, sql::Connection& target,
                                const std::vector<migrations::MigrationSource>& migrations, const std::string& label);

// Compares every projection table row by row (ordered by primary key) and
// column by column, kind and value. Returns one line per difference, at most
// `max_differences` (empty when the projections are identical).
std::vector<std::string> compare_projections(sql::Connection& live, sql::Connection& rebuilt,
                                             std::size_t max_differences = 100);

}  // namespace botbus::store
