#include "store/sqlite/backup.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "migrations/embedded_migrations.hpp"
#include "store/sqlite/log_check.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace botbus::store {

namespace fs = std::filesystem;

namespace {

// A rename is durable once the directory that holds it is synced too.
void sync_path(const std::string& path, int flags) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path + " to sync it: " + std::strerror(errno));
    const int synced = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (synced != 0) throw std::runtime_error("cannot sync " + path + ": " + std::strerror(error));
}

// Called by SQLite every few thousand steps of the copy: stops it when
// cancelled, and writes the copy back to disk as it grows. Left to the
// kernel, hundreds of MB of the copy would be dirty in the page cache at
// once, and the daemon's next WAL fdatasync, in the same file system's
// journal, would wait for them to reach the disk (one publish took 131 ms).
class CopyProgress {
public:
    CopyProgress(std::string path, const std::atomic<bool>& cancel) : m_path(std::move(path)), m_cancel(cancel) {}
    CopyProgress(const CopyProgress&) = delete;
    CopyProgress& operator=(const CopyProgress&) = delete;
    ~CopyProgress() {
        if (m_fd >= 0) ::close(m_fd);
    }

    static int step(void* self) { return static_cast<CopyProgress*>(self)->step(); }

private:
    static constexpr off_t k_write_back_bytes = 8 * 1024 * 1024;

    int step() {
        if (m_cancel.load(std::memory_order_relaxed)) return 1;
        if (m_fd < 0) m_fd = ::open(m_path.c_str(), O_RDONLY | O_CLOEXEC);  // SQLite creates it as it starts
        struct stat written {};
        if (m_fd < 0 || ::fstat(m_fd, &written) != 0) return 0;
        if (written.st_size - m_synced < 2 * k_write_back_bytes) return 0;
        // Start writing the newest chunk back, and wait for the one before:
        // at most two chunks are dirty at a time.
        const off_t end = written.st_size / k_write_back_bytes * k_write_back_bytes;
        ::sync_file_range(m_fd, m_synced, end - m_synced, SYNC_FILE_RANGE_WRITE);
        ::sync_file_range(m_fd, m_synced, end - k_write_back_bytes - m_synced,
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
        m_synced = end - k_write_back_bytes;
        return 0;
    }

    std::string m_path;
    const std::atomic<bool>& m_cancel;
    int m_fd = -1;
    off_t m_synced = 0;  // bytes of the copy already on disk
};

void copy_log_head(const std::string& path, BackupResult& result) {
    SQLite::Database copy(path, SQLite::OPEN_READONLY);
    SQLite::Statement head(copy, "SELECT last_seq, event_count FROM log_head WHERE id = 1");
    if (!head.executeStep()) throw std::runtime_error(path + ": the copy has no log_head row");
    result.last_seq = static_cast<Seq>(head.getColumn(0).getInt64());
    result.events = static_cast<std::uint64_t>(head.getColumn(1).getInt64());
}

}  // namespace

void durable_rename(const std::string& from, const std::string& to) {
    sync_path(from, O_RDONLY);
    fs::rename(from, to);
    const auto directory = fs::path(to).parent_path();
    sync_path(directory.empty() ? std::string(".") : directory.string(), O_RDONLY | O_DIRECTORY);
}

BackupResult write_backup(const std::string& database_path, const std::string& target,
                          const std::atomic<bool>& cancel) {
    if (fs::exists(target)) throw std::runtime_error(target + " already exists: a backup never overwrites");
    const std::string partial = target + ".partial";
    std::error_code ignored;
    fs::remove(partial, ignored);  // left by a crash during an earlier backup
    try {
        CopyProgress progress(partial, cancel);  // outlives the connection that calls it
        SQLite::Database db(database_path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX);
        db.setBusyTimeout(5000);
        sqlite3_progress_handler(db.getHandle(), 4096, CopyProgress::step, &progress);
        SQLite::Statement vacuum(db, "VACUUM INTO ?");
        vacuum.bind(1, partial);
        vacuum.exec();
    } catch (const SQLite::Exception& e) {
        fs::remove(partial, ignored);
        if (cancel.load()) throw std::runtime_error("the backup was cancelled: botbusd is stopping");
        throw std::runtime_error("cannot write " + partial + " from " + database_path + ": " + e.what());
    }
    BackupResult result;
    try {
        durable_rename(partial, target);
        result.path = target;
        result.bytes = fs::file_size(target);
        copy_log_head(target, result);
    } catch (const fs::filesystem_error& e) {
        fs::remove(partial, ignored);
        throw std::runtime_error(std::string("cannot finish the backup: ") + e.what());
    }
    return result;
}

namespace {

void check_migrations(SQLite::Database& db, CopyCheck& check) {
    const auto& embedded = migrations::all();
    SQLite::Statement recorded(db, "SELECT version, checksum FROM schema_migrations ORDER BY version");
    std::size_t matched = 0;
    while (recorded.executeStep()) {
        const int version = recorded.getColumn(0).getInt();
        const auto checksum = recorded.getColumn(1).getString();
        check.schema_version = version;
        const auto known = std::find_if(embedded.begin(), embedded.end(),
                                        [&](const auto& migration) { return migration.version == version; });
        if (known == embedded.end()) {
            check.migration_problem = "migration " + std::to_string(version) +
                                      " is recorded in the copy and unknown to this botbusd (a newer one wrote it)";
            return;
        }
        if (known->checksum != checksum) {
            check.migration_problem = "migration " + std::to_string(version) + " (" + std::string(known->name) +
                                      ") was applied with a different text than this botbusd's";
            return;
        }
        ++matched;
    }
    check.migrations_to_apply = static_cast<int>(embedded.size() - matched);
}

}  // namespace

CopyCheck check_copy(const std::string& copy_path, const std::string& scratch_dir) {
    if (!fs::is_regular_file(copy_path)) throw StartupError(copy_path + ": no such file");
    const auto scratch = (fs::path(scratch_dir) / "botbus.db").string();
    fs::copy_file(copy_path, scratch);
    CopyCheck check;
    try {
        SQLite::Database db(scratch, SQLite::OPEN_READONLY);
        SQLite::Statement integrity(db, "PRAGMA integrity_check(20)");
        while (integrity.executeStep()) {
            auto line = integrity.getColumn(0).getString();
            if (line != "ok") check.integrity_problems.push_back(std::move(line));
        }
        if (!check.integrity_problems.empty()) return check;
        check_migrations(db, check);
        if (!check.migration_problem.empty()) return check;
    } catch (const SQLite::Exception& e) {
        throw StartupError(copy_path + ": not a botbus database (" + e.what() + ")");
    }
    {
        // As botbusd would open it: migrated to this build, then replayed.
        SqliteStore store({scratch, Durability::normal});
        check.last_seq = store.last_seq();
        auto projections = store.verify_projections();
        check.replayed = projections.replayed;
        check.projection_differences = std::move(projections.differences);
        check.events = static_cast<std::uint64_t>(store.stats().event_count);
    }
    const auto log = check_log(scratch);
    check.log_intact = log.intact;
    check.log_problem = log.problem;
    return check;
}

BackupResult SqliteStore::backup(const std::string& target, const std::atomic<bool>& cancel) {
    if (m_path == ":memory:") throw std::runtime_error("an in-memory database has no backup");
    return write_backup(m_path, target, cancel);
}

}  // namespace botbus::store
