// Unit tests of the migration runner (store::migrate) and of how Store
// reports a file it cannot use.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "migrations/embedded_migrations.hpp"
#include "store/event.hpp"
#include "store/sql/migrator.hpp"
#include "store/sqlite/sqlite_connection.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "temp_dir.hpp"

namespace store = botbus::store;
using botbus::migrations::MigrationSource;
using store::StartupError;

namespace {

using botbus::testing::TempDir;

const std::vector<MigrationSource> k_two = {
    {1, "people", "1111111111111111111111111111111111111111111111111111111111111111",
     "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
    // Depends on 0001: runs only after it.
    {2, "people_email", "2222222222222222222222222222222222222222222222222222222222222222",
     "ALTER TABLE people ADD COLUMN email TEXT; CREATE INDEX people_by_email ON people(email);"},
};

SQLite::Database memory_db() { return SQLite::Database(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE); }

bool table_exists(SQLite::Database& db, const std::string& name) {
    SQLite::Statement q(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    q.bind(1, name);
    return q.executeStep();
}

struct Recorded {
    int version;
    std::string name;
    std::string checksum;
    std::int64_t applied_at;
};

std::vector<Recorded> recorded(SQLite::Database& db) {
    std::vector<Recorded> rows;
    SQLite::Statement q(db, "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version");
    while (q.executeStep()) {
        rows.push_back({q.getColumn(0).getInt(), q.getColumn(1).getString(), q.getColumn(2).getString(),
                        q.getColumn(3).getInt64()});
    }
    return rows;
}

// Runs `f`, expecting a StartupError; returns its message ("" if none came).
template <typename F>
std::string startup_error_of(F&& f) {
    try {
        f();
    } catch (const StartupError& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected a StartupError";
    return {};
}

store::MigrationReport migrate_sqlite(SQLite::Database& db, const std::vector<botbus::migrations::MigrationSource>& sources,
                                     const std::string& label) {
    store::sql::SqliteConnection connection(db);
    return store::migrate(connection, sources, label);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Migrator, FreshDatabaseAppliesEveryMigrationInOrderAndRecordsIt) {
    auto db = memory_db();
    const auto before = store::now_us();
    const auto report = migrate_sqlite(db, k_two, "test.db");
    const auto after = store::now_us();

    EXPECT_EQ(report.applied, (std::vector<int>{1, 2}));
    EXPECT_EQ(report.schema_version, 2);
    EXPECT_TRUE(table_exists(db, "people"));
    db.exec("INSERT INTO people (name, email) VALUES ('ann', 'ann@example.org')");  // 0002's column exists

    const auto rows = recorded(db);
    ASSERT_EQ(rows.size(), 2U);
    EXPECT_EQ(rows[0].version, 1);
    EXPECT_EQ(rows[0].name, "people");
    EXPECT_EQ(rows[0].checksum, std::string(k_two[0].checksum));
    EXPECT_EQ(rows[1].version, 2);
    EXPECT_EQ(rows[1].name, "people_email");
    EXPECT_EQ(rows[1].checksum, std::string(k_two[1].checksum));
    for (const auto& row : rows) {
        EXPECT_GE(row.applied_at, before);
        EXPECT_LE(row.applied_at, after);
    }
}

TEST(Migrator, AppliesByVersionWhateverTheOrderOfTheList) {
    auto db = memory_db();
    const std::vector<MigrationSource> reversed{k_two[1], k_two[0]};
    const auto report = migrate_sqlite(db, reversed, "test.db");
    EXPECT_EQ(report.applied, (std::vector<int>{1, 2}));
    EXPECT_EQ(recorded(db).size(), 2U);
}

TEST(Migrator, RerunAppliesNothing) {
    auto db = memory_db();
    migrate_sqlite(db, k_two, "test.db");
    const auto first = recorded(db);

    const auto report = migrate_sqlite(db, k_two, "test.db");
    EXPECT_TRUE(report.applied.empty());
    EXPECT_EQ(report.schema_version, 2);
    const auto second = recorded(db);
    ASSERT_EQ(second.size(), first.size());
    for (std::size_t i = 0; i < first.size(); ++i) EXPECT_EQ(second[i].applied_at, first[i].applied_at);
}

TEST(Migrator, NewMigrationIsAppliedAloneOnTopOfApplied) {
    auto db = memory_db();
    migrate_sqlite(db, {k_two[0]}, "test.db");
    const auto report = migrate_sqlite(db, k_two, "test.db");
    EXPECT_EQ(report.applied, (std::vector<int>{2}));
    EXPECT_EQ(report.schema_version, 2);
    EXPECT_EQ(recorded(db).size(), 2U);
}

TEST(Migrator, ChangedChecksumOfAnAppliedMigrationIsAnError) {
    auto db = memory_db();
    migrate_sqlite(db, k_two, "test.db");
    auto edited = k_two;
    edited[0].checksum = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    const auto message = startup_error_of([&] { migrate_sqlite(db, edited, "test.db"); });
    EXPECT_TRUE(contains(message, "0001_people.sql")) << message;
    EXPECT_TRUE(contains(message, "changed")) << message;
    EXPECT_TRUE(contains(message, "test.db")) << message;
    EXPECT_EQ(recorded(db)[0].checksum, std::string(k_two[0].checksum));  // nothing rewritten
}

TEST(Migrator, DatabaseFromANewerBinaryIsAnError) {
    auto db = memory_db();
    auto newer = k_two;
    newer.push_back({3, "people_phone", "3333333333333333333333333333333333333333333333333333333333333333",
                     "ALTER TABLE people ADD COLUMN phone TEXT;"});
    migrate_sqlite(db, newer, "test.db");

    const auto message = startup_error_of([&] { migrate_sqlite(db, k_two, "test.db"); });
    EXPECT_TRUE(contains(message, "newer")) << message;
    EXPECT_TRUE(contains(message, "3")) << message;
    EXPECT_TRUE(contains(message, "test.db")) << message;
}

TEST(Migrator, FailingMigrationRollsBackEntirely) {
    auto db = memory_db();
    auto broken = k_two;
    broken.push_back({3, "half_done", "3333333333333333333333333333333333333333333333333333333333333333",
                      "CREATE TABLE half (x INTEGER); INSERT INTO no_such_table VALUES (1);"});

    const auto message = startup_error_of([&] { migrate_sqlite(db, broken, "test.db"); });
    EXPECT_TRUE(contains(message, "0003_half_done.sql")) << message;
    EXPECT_FALSE(table_exists(db, "half"));
    const auto rows = recorded(db);
    ASSERT_EQ(rows.size(), 2U);  // the good ones before it stay applied
    EXPECT_EQ(rows.back().version, 2);

    // Fixed, it applies on the next start.
    broken.back().sql = "CREATE TABLE half (x INTEGER);";
    const auto report = migrate_sqlite(db, broken, "test.db");
    EXPECT_EQ(report.applied, (std::vector<int>{3}));
    EXPECT_TRUE(table_exists(db, "half"));
}

TEST(Migrator, EmbeddedMigrationsAreNumberedAndChecksummed) {
    const auto& all = botbus::migrations::all();
    ASSERT_FALSE(all.empty());
    for (std::size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(all[i].version, static_cast<int>(i + 1)) << "versions run 1, 2, 3... without gaps";
        EXPECT_FALSE(all[i].name.empty());
        EXPECT_EQ(all[i].checksum.size(), 64U);
        EXPECT_EQ(all[i].checksum.find_first_not_of("0123456789abcdef"), std::string_view::npos);
        EXPECT_FALSE(all[i].sql.empty());
    }
}

TEST(Migrator, EmbeddedMigrationsApplyOnAFreshDatabase) {
    auto db = memory_db();
    const auto& all = botbus::migrations::all();
    const auto report = migrate_sqlite(db, all, ":memory:");
    EXPECT_EQ(report.applied.size(), all.size());
    EXPECT_EQ(report.schema_version, all.back().version);
    for (const char* table : {"events", "log_head", "streams", "bot_channels",
                              "bot_subscriptions", "bot_mailboxes"}) {
        EXPECT_TRUE(table_exists(db, table)) << table;
    }
    SQLite::Statement head(db, "SELECT last_seq FROM log_head WHERE id = 1");
    ASSERT_TRUE(head.executeStep());
    EXPECT_EQ(head.getColumn(0).getInt64(), 0);
    EXPECT_TRUE(migrate_sqlite(db, all, ":memory:").applied.empty());
}

TEST(StoreOpen, FileThatIsNotASqliteDatabaseIsAStartupErrorNamingThePath) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    {
        std::ofstream out(path, std::ios::binary);
        for (int i = 0; i < 4096; ++i) out.put(static_cast<char>((i * 37 + 11) % 251));
    }
    const auto message = startup_error_of([&] { store::SqliteStore s({path, store::Durability::full}); });
    EXPECT_TRUE(contains(message, path)) << message;
}

TEST(StoreOpen, DirectoryThatDoesNotExistIsAStartupErrorNamingThePath) {
    TempDir dir;
    const auto path = dir.file("missing/botbus.db");
    const auto message = startup_error_of([&] { store::SqliteStore s({path, store::Durability::full}); });
    EXPECT_TRUE(contains(message, path)) << message;
}

TEST(StoreOpen, FileFromANewerBinaryIsAStartupError) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    { store::SqliteStore s({path, store::Durability::full}); }
    {
        SQLite::Database db(path, SQLite::OPEN_READWRITE);
        db.exec(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
            " VALUES (9999, 'from_the_future', 'x', 0)");
    }
    const auto message = startup_error_of([&] { store::SqliteStore s({path, store::Durability::full}); });
    EXPECT_TRUE(contains(message, "newer")) << message;
    EXPECT_TRUE(contains(message, path)) << message;
}

TEST(StoreOpen, ReopeningAMigratedFileAppliesNothingNew) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    { store::SqliteStore s({path, store::Durability::full}); }
    { store::SqliteStore s({path, store::Durability::full}); }
    SQLite::Database db(path, SQLite::OPEN_READONLY);
    SQLite::Statement q(db, "SELECT COUNT(*) FROM schema_migrations");
    ASSERT_TRUE(q.executeStep());
    EXPECT_EQ(q.getColumn(0).getInt64(), static_cast<std::int64_t>(botbus::migrations::all().size()));
}

}  // namespace
