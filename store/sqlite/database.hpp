// Opening a botbus SQLite database: the connection flags and pragmas every
// user of the file needs (WAL, busy timeout, foreign keys, synchronous), and
// a quick integrity check of file databases.
// Concurrency: the connection returned belongs to one thread at a time.
#pragma once

#include <SQLiteCpp/Database.h>

#include <string>

#include "store/store.hpp"

namespace botbus::store {

// Throws StartupError naming the path when the file cannot be opened, is not
// a database, cannot switch to WAL, or is damaged.
SQLite::Database open_database(const std::string& path, Durability durability);

}  // namespace botbus::store
