#include "store/sqlite/database.hpp"

#include <SQLiteCpp/Statement.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "store/sqlite/wal_write_vfs.hpp"

namespace botbus::store {

namespace {

void check_integrity(SQLite::Database& db, const std::string& path) {
    // quick_check reads every page: a damaged file stops start-up here, with
    // SQLite's own description, instead of failing a batch later.
    SQLite::Statement check(db, "PRAGMA quick_check(5)");
    std::string problems;
    while (check.executeStep()) {
        const auto line = check.getColumn(0).getString();
        if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
    }
    if (!problems.empty()) {
        throw StartupError(path + ": database is damaged (" + problems + ")");
    }
}

}  // namespace

SQLite::Database open_database(const std::string& path, Durability durability) {
    // Process-wide and only possible before SQLite initialises: memory
    // statistics take a global mutex on every allocation, and nothing reads
    // them. Failing (SQLite already initialised by someone else) is harmless.
    static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)memstatus_off;
    try {
        // botbus-unix writes each commit's WAL frames with one pwrite (wal_write_vfs.hpp).
        SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX, 0,
                            wal_write_vfs());
        db.setBusyTimeout(5000);
        // Reading the schema is the first access: "file is not a database"
        // and similar surface here.
        db.exec("PRAGMA schema_version");
        if (path != ":memory:") {
            SQLite::Statement wal(db, "PRAGMA journal_mode=WAL");
            wal.executeStep();
            if (wal.getColumn(0).getString() != "wal") {
                throw StartupError(path + ": cannot switch the database to WAL mode");
            }
            check_integrity(db, path);
            if (sqlite3_db_readonly(db.getHandle(), "main") == 1) {
                throw StartupError(path + ": opened read-only (the file or its directory is not writable: a "
                                          "read-only file system or missing permissions); botbusd must write its "
                                          "database");
            }
        }
        db.exec(durability == Durability::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        db.exec("PRAGMA foreign_keys=ON");
        return db;
    } catch (const SQLite::Exception& e) {
        throw StartupError(path + ": cannot open database: " + e.what());
    }
}

void check_files_writable(const std::string& path) {
    for (const auto& file : {path, path + "-wal", path + "-shm"}) {
        const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            ::close(fd);
            continue;
        }
        if (errno == ENOENT) continue;
        throw StartupError(file + ": cannot open for writing: " + std::generic_category().message(errno) +
                           "; botbusd must write its database and WAL");
    }
}

void check_write_transaction(SQLite::Database& db, const std::string& path) {
    try {
        db.exec("BEGIN IMMEDIATE");
        db.exec("ROLLBACK");
    } catch (const SQLite::Exception& e) {
        throw StartupError(path + ": cannot take a write transaction: " + e.what());
    }
}

}  // namespace botbus::store
