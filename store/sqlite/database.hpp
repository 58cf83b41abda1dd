// Opening a botbus SQLite database: the connection flags and pragmas every
// user of the file needs (WAL, busy timeout, foreign keys, synchronous), and
// a quick integrity check of file databases, and the proof that they take
// writes.
// Concurrency: the connection returned belongs to one thread at a time.
#pragma once

#include <SQLiteCpp/Database.h>

#include <string>

#include "store/store.hpp"

namespace botbus::store {

// Throws StartupError naming the path when the file cannot be opened, is not
// a database, cannot switch to WAL, is damaged, or does not take writes.
SQLite::Database open_database(const std::string& path, Durability durability);

// Before SQLite opens them: each of the database, its -wal and -shm files
// that exists can be opened for writing. Throws StartupError naming the file
// and the cause (read-only file system, permission denied, ...), which
// SQLite would otherwise hide by opening the file read-only.
void check_files_writable(const std::string& path);

// SQLite opens a file it may not write read-only without a word, and a
// read-only WAL database still serves reads: such a daemon would start, say
// it is ready and fail every write. A write transaction, taken and rolled
// back, proves the file, its WAL and -shm take writes; throws StartupError.
// Not on a database without pages: SQLite deletes the WAL of an empty
// database when such a transaction ends.
void check_write_transaction(SQLite::Database& db, const std::string& path);

}  // namespace botbus::store
