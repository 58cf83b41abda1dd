#include "store/sql/migrator.hpp"

#include <map>

#include "store/event.hpp"
#include "store/sql/statement.hpp"

namespace botbus::store {
namespace {

struct AppliedMigration {
    std::string name;
    std::string checksum;
};

std::map<int, AppliedMigration> read_applied(sql::Connection& db) {
    std::map<int, AppliedMigration> applied;
    sql::Statement query(db, "SELECT version, name, checksum FROM schema_migrations ORDER BY version");
    while (query.executeStep()) {
        applied.emplace(query.getColumn(0).getInt(),
                        AppliedMigration{query.getColumn(1).getString(), query.getColumn(2).getString()});
    }
    return applied;
}

// The file a migration came from, as named in migrations/: NNNN_name.sql.
std::string file_name(int version, std::string_view name) {
    std::string digits = std::to_string(version);
    if (digits.size() < 4) digits.insert(0, 4 - digits.size(), '0');
    return digits + "_" + std::string(name) + ".sql";
}

// Held for the whole run on PostgreSQL: nodes starting together migrate one
// at a time. Keyed by the schema they migrate (the first number is botbus's
// own, not the leader lock's: postgres_store.cpp).
constexpr const char* k_lock = "SELECT pg_advisory_lock(6447725, hashtext(current_schema()))";
constexpr const char* k_unlock = "SELECT pg_advisory_unlock(6447725, hashtext(current_schema()))";

// The error of a failed statement, whichever engine threw it.
template <typename F>
void as_startup_error(const std::string& context, F&& run) {
    try {
        run();
    } catch (const StartupError&) {
        throw;
    } catch (const std::exception& e) {
        throw StartupError(context + e.what());
    }
}

MigrationReport migrate_locked(sql::Connection& db, const std::vector<migrations::MigrationSource>& sources,
                               const std::string& db_label) {
    const bool postgresql = db.dialect() == sql::Dialect::postgresql;
    as_startup_error(db_label + ": cannot create schema_migrations: ", [&] {
        db.exec(postgresql ? "CREATE TABLE IF NOT EXISTS schema_migrations ("
                             " version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
                             " applied_at BIGINT NOT NULL)"
                           : "CREATE TABLE IF NOT EXISTS schema_migrations ("
                             " version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
                             " applied_at INTEGER NOT NULL) STRICT");
    });

    const auto applied = read_applied(db);
    std::map<int, const migrations::MigrationSource*> known;
    for (const auto& source : sources) known.emplace(source.version, &source);

    for (const auto& [version, migration] : applied) {
        const auto it = known.find(version);
        if (it == known.end()) {
            throw StartupError(db_label + ": schema version " + std::to_string(version) + " (" +
                               file_name(version, migration.name) +
                               ") was applied by a newer botbusd than this one, which knows versions up to " +
                               std::to_string(known.empty() ? 0 : known.rbegin()->first) +
                               "; run the newer botbusd or restore a matching backup");
        }
        if (it->second->checksum != migration.checksum) {
            throw StartupError(db_label + ": migration " + file_name(version, migration.name) +
                               " changed after it was applied (recorded checksum " + migration.checksum +
                               ", embedded " + std::string(it->second->checksum) +
                               "); add a new migration instead of editing an applied one");
        }
    }

    MigrationReport report;
    for (const auto& [version, source] : known) {
        if (applied.contains(version)) continue;
        try {
            db.exec(postgresql ? "BEGIN" : "BEGIN IMMEDIATE");
            db.exec(std::string(source->sql));
            sql::Statement record(db,
                                  "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                                  " VALUES (?, ?, ?, ?)");
            record.bind(1, version);
            record.bind(2, std::string(source->name));
            record.bind(3, std::string(source->checksum));
            record.bind(4, static_cast<std::int64_t>(now_us()));
            record.exec();
            db.exec("COMMIT");
        } catch (const std::exception& e) {
            try {
                db.exec("ROLLBACK");
            } catch (...) {  // the engine may have rolled back by itself
            }
            throw StartupError(db_label + ": migration " + file_name(version, source->name) + " failed: " +
                               e.what());
        }
        report.applied.push_back(version);
    }
    report.schema_version = known.empty() ? 0 : known.rbegin()->first;
    return report;
}

}  // namespace

MigrationReport migrate(sql::Connection& db, const std::vector<migrations::MigrationSource>& sources,
                        const std::string& db_label) {
    if (db.dialect() != sql::Dialect::postgresql) return migrate_locked(db, sources, db_label);
    as_startup_error(db_label + ": cannot take the migration lock: ", [&] { db.exec(k_lock); });
    try {
        auto report = migrate_locked(db, sources, db_label);
        db.exec(k_unlock);
        return report;
    } catch (...) {
        try {
            db.exec(k_unlock);
        } catch (...) {  // the session's end releases it too
        }
        throw;
    }
}

}  // namespace botbus::store
