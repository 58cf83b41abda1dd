#include "daemon/maintenance.hpp"

#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

#include "daemon/data_dir_lock.hpp"
#include "store/postgresql/postgres_store.hpp"
#include "store/sqlite/backup.hpp"
#include "store/sqlite/log_check.hpp"
#include "store/sqlite/seq_record.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace botbus::daemon {

namespace fs = std::filesystem;

namespace {

using ull = unsigned long long;

std::string database_of(const Config& config) { return (fs::path(config.data_dir) / "botbus.db").string(); }

// A scratch directory for a copy of the backup, removed on every way out.
class ScratchDir {
public:
    ScratchDir() {
        auto pattern = (fs::temp_directory_path() / "botbusd-verify-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("cannot make a scratch directory in " + fs::temp_directory_path().string() +
                                     " (set TMPDIR to one with room for a copy): " + std::strerror(errno));
        }
        m_path = pattern;
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    ~ScratchDir() {
        std::error_code ignored;
        fs::remove_all(m_path, ignored);
    }
    const std::string& path() const { return m_path; }

private:
    std::string m_path;
};

// Prints what check_copy found, a line per check; true when the copy is good.
bool report_copy(const std::string& file, const store::CopyCheck& check) {
    if (!check.integrity_problems.empty()) {
        std::printf("verify: %s: DAMAGED: integrity_check: %s\n", file.c_str(), check.integrity_problems[0].c_str());
        for (std::size_t i = 1; i < check.integrity_problems.size(); ++i) {
            std::printf("  %s\n", check.integrity_problems[i].c_str());
        }
        return false;
    }
    std::printf("  integrity: ok\n");
    if (!check.migration_problem.empty()) {
        std::printf("verify: %s: NOT RESTORABLE by this botbusd: %s\n", file.c_str(), check.migration_problem.c_str());
        return false;
    }
    std::printf("  migrations: schema version %d, checksums match this botbusd (%d to apply at start)\n",
                check.schema_version, check.migrations_to_apply);
    if (!check.log_intact) {
        std::printf("verify: %s: DAMAGED: hash chain: %s\n", file.c_str(), check.log_problem.c_str());
        return false;
    }
    std::printf("  hash chain: intact up to seq %llu\n", static_cast<ull>(check.last_seq));
    if (!check.projection_differences.empty()) {
        std::printf("verify: %s: DAMAGED: replaying %zu events gives %zu difference(s) from its projections:\n",
                    file.c_str(), check.replayed, check.projection_differences.size());
        for (const auto& line : check.projection_differences) std::printf("  %s\n", line.c_str());
        return false;
    }
    std::printf("  projections: equal to a replay of its %zu events\n", check.replayed);
    std::printf("verify: %s: good: the log up to seq %llu (%llu events)\n", file.c_str(),
                static_cast<ull>(check.last_seq), static_cast<ull>(check.events));
    return true;
}

bool check_backup(const std::string& file) {
    const ScratchDir scratch;
    return report_copy(file, store::check_copy(file, scratch.path()));
}

std::string utc_stamp() {
    const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm utc{};
    gmtime_r(&now, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &utc);
    return text;
}

int report_rebuild(const store::ProjectionCheck& check);

}  // namespace

// `botbusd rebuild`: the projections are derived data; this proves it.
int rebuild(const Config& config) {
    if (!config.store.empty()) {
        store::PostgresStore postgres(config.store);
        return report_rebuild(postgres.verify_projections());
    }
    const auto path = database_of(config);
    if (!fs::exists(path)) throw std::runtime_error("no database at " + path);
    store::SqliteStore store({path, config.durability});
    return report_rebuild(store.verify_projections());
}

namespace {

// One line when the rebuild matches, else every difference; exit 1 then.
int report_rebuild(const store::ProjectionCheck& check) {
    const auto& [replayed, differences] = check;
    if (differences.empty()) {
        std::printf("rebuild: replayed %zu events; the projections match the live ones\n", replayed);
        return 0;
    }
    std::printf("rebuild: replayed %zu events; %zu difference(s) from the live projections:\n", replayed,
                differences.size());
    for (const auto& line : differences) std::printf("  %s\n", line.c_str());
    return 1;
}

}  // namespace

// `botbusd verify`: the log's hash chain, read-only, beside a running daemon
// or not. One line either way; exit 1 names the first broken link. With a
// FILE: everything a restore needs of a backup copy, on a scratch copy.
int verify(const Config& config) {
    std::string where;
    store::LogCheck check;
    if (!config.store.empty()) {
        if (!config.file.empty()) {
            throw std::runtime_error("verify FILE checks a SQLite backup copy; a PostgreSQL store has none");
        }
        store::PostgresStore postgres(config.store);
        where = postgres.label();
        check = postgres.check_log();
    } else {
        if (!config.file.empty()) return check_backup(config.file) ? 0 : 1;
        where = database_of(config);
        check = store::check_log(where);
    }
    if (!check.intact) {
        std::printf("verify: %s: DAMAGED: %s\n", where.c_str(), check.problem.c_str());
        return 1;
    }
    const auto recorded = !config.store.empty() ? std::string()
                          : check.recorded_seq  ? "; botbus.seq records " + std::to_string(*check.recorded_seq)
                                                : std::string("; botbus.seq records nothing");
    std::printf(
        "verify: %s: intact: log_head at seq %llu, %llu chained events checked, %llu trimmed seqs in %llu "
        "ranges, %llu seqs before the chain began%s\n",
        where.c_str(), static_cast<ull>(check.last_seq), static_cast<ull>(check.chained),
        static_cast<ull>(check.trimmed), static_cast<ull>(check.ranges), static_cast<ull>(check.chain_start),
        recorded.c_str());
    return 0;
}

// `botbusd restore FILE`: with the daemon stopped (the data directory's lock
// says so), checks the copy, moves the current database and its seq record
// aside (never deletes them) and installs the copy. The seq record goes
// aside too: it remembers seqs past the copy's end, which a restore gives
// up on purpose.
int restore(const Config& config) {
    if (!config.store.empty()) {
        throw std::runtime_error("restore: a PostgreSQL store is restored with PostgreSQL's tools (docs/SCALING.md)");
    }
    fs::create_directories(config.data_dir);
    const DataDirLock lock(config.data_dir);
    std::printf("restore: checking %s\n", config.file.c_str());
    if (!check_backup(config.file)) {
        std::printf("restore: nothing changed in %s\n", config.data_dir.c_str());
        return 1;
    }
    const auto database = database_of(config);
    const auto record = store::SeqRecord::path_for(database);
    const fs::path aside = fs::path(config.data_dir) / ("replaced-" + utc_stamp());
    bool moved = false;
    for (const auto& path : {database, database + "-wal", database + "-shm", record}) {
        if (!fs::exists(path)) continue;
        fs::create_directories(aside);
        fs::rename(path, aside / fs::path(path).filename());
        moved = true;
    }
    const auto partial = database + ".partial";
    fs::copy_file(config.file, partial, fs::copy_options::overwrite_existing);
    store::durable_rename(partial, database);
    std::printf("restore: installed %s as %s\n", config.file.c_str(), database.c_str());
    if (moved) {
        std::printf("restore: the database it replaced is in %s; remove it once botbusd serves the restored one\n",
                    aside.c_str());
    }
    return 0;
}

}  // namespace botbus::daemon
