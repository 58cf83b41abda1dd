// Online backup: a consistent copy of a live database, and the checks that
// tell whether a copy can be restored.
//
// Operation: write_backup opens its own read-only connection and runs
// VACUUM INTO into "<target>.partial": one read transaction, so the copy is
// the log as of one commit, and WAL readers never block the writer, so the
// daemon keeps committing meanwhile. The partial file is fdatasynced, renamed
// to its name and the directory synced: a crash leaves no half copy under
// the final name. check_copy works on a scratch copy of a backup (never on
// the file itself): integrity_check, the migrations it records against this
// build's, the hash chain, and its projections against a replay of its log.
// Concurrency: write_backup may run on any thread beside the daemon's
// connections; `cancel` set from another thread stops it within a few
// thousand SQLite steps (the partial file is removed). check_copy is for a
// process of its own (botbusd verify).
// Limitations: the WAL cannot be checkpointed past the copy's snapshot while
// it runs, so the WAL grows by what is committed meanwhile.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "store/store.hpp"

namespace botbus::store {

// Throws std::runtime_error naming the file and the cause; the target must
// not exist, and its directory must.
BackupResult write_backup(const std::string& database_path, const std::string& target,
                          const std::atomic<bool>& cancel);

// fsyncs `from`, renames it to `to` and fsyncs the directory: after a crash
// `to` is either absent (or what it was) or the whole synced file. Throws
// std::runtime_error naming the file and the cause.
void durable_rename(const std::string& from, const std::string& to);

struct CopyCheck {
    std::vector<std::string> integrity_problems;  // PRAGMA integrity_check's lines other than "ok"
    int schema_version = 0;                       // the newest migration the copy records
    int migrations_to_apply = 0;                  // embedded in this build and not yet in the copy
    std::string migration_problem;                // a recorded migration this build does not match
    bool log_intact = false;
    std::string log_problem;
    Seq last_seq = 0;
    std::uint64_t events = 0;
    std::size_t replayed = 0;
    std::vector<std::string> projection_differences;

    bool ok() const {
        return integrity_problems.empty() && migration_problem.empty() && log_intact &&
               projection_differences.empty();
    }
};

// Checks the backup at `copy_path` through a copy made in `scratch_dir` (an
// empty directory the caller removes). Throws StartupError when the file
// is not a botbus database at all.
CopyCheck check_copy(const std::string& copy_path, const std::string& scratch_dir);

}  // namespace botbus::store
