// The rebuild check (store/sql/rebuild.hpp) on SQLite databases: shorthands
// for SqliteStore::verify_projections and the tests, which rebuild into an
// in-memory database.
#pragma once

#include <SQLiteCpp/Database.h>

#include <cstddef>
#include <string>
#include <vector>

#include "store/sql/rebuild.hpp"

namespace botbus::store {

// Migrates `target` (a fresh database) with SQLite's migrations and replays
// `source`'s log into it (rebuild_projections).
std::size_t rebuild_projections(Store& source, SQLite::Database& target);

std::vector<std::string> compare_projections(SQLite::Database& live, SQLite::Database& rebuilt,
                                             std::size_t max_differences = 100);

}  // namespace botbus::store
