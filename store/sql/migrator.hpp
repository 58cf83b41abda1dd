// Brings a database schema up to the migrations this binary embeds (SQLite's
// migrations/NNNN_*.sql, or PostgreSQL's migrations/postgresql/).
//
// Operation: records each applied migration (version, name, SHA-256, time)
// in `schema_migrations`; applies each missing one in its own transaction.
// Refuses, with a StartupError naming the file and version, a database whose
// applied migration no longer matches its embedded text, or one migrated by a
// newer binary.
// Concurrency: call once at start-up, before anything else uses the
// database. On PostgreSQL several nodes may start at once: the whole run
// holds an advisory lock, so one of them migrates and the others then find
// the migrations applied.
#pragma once

#include <string>
#include <vector>

#include "migrations/embedded_migrations.hpp"
#include "store/errors.hpp"
#include "store/sql/connection.hpp"

namespace botbus::store {

struct MigrationReport {
    int schema_version = 0;       // after migrating
    std::vector<int> applied;     // versions applied by this call
};

MigrationReport migrate(sql::Connection& db, const std::vector<migrations::MigrationSource>& sources,
                        const std::string& db_label);

}  // namespace botbus::store
