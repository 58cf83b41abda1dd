// The botbus-unix VFS (store/sqlite/wal_write_vfs.hpp): a commit's WAL
// frames reach the file in one write, and they are on the file when COMMIT
// returns, where another connection (the checkpointer's, `botbusd rebuild`)
// reads them.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "store/sqlite/sqlite_store.hpp"
#include "store/sqlite/wal_write_vfs.hpp"
#include "message_drafts.hpp"
#include "temp_dir.hpp"

namespace store = botbus::store;
using botbus::testing::TempDir;

namespace {

store::EventDraft published(const std::string& channel, int i) {
    return botbus::testing::published_draft(channel, std::string(200, static_cast<char>('a' + i % 26)));
}

// Write system calls this process has made (every thread).
long write_calls() {
    std::ifstream in("/proc/self/io");
    std::string key;
    long value = 0;
    while (in >> key >> value) {
        if (key == "syscw:") return value;
    }
    return -1;
}

}  // namespace

TEST(WalWriteVfs, ACommitOfManyPagesTakesAFractionOfTheWritesSqliteAloneMakes) {
    TempDir dir;
    // The same commit (200 rows of 300 bytes, about 16 pages) through the
    // VFS and through SQLite's own. Counted for the whole process: sanitizer
    // builds add a few writes of their own, hence a ratio, not an exact count.
    const auto writes_for = [&dir](const std::string& name, const char* vfs) {
        SQLite::Database db(dir.file(name), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE, 0, vfs ? vfs : "");
        db.exec("PRAGMA journal_mode=WAL");
        db.exec("PRAGMA synchronous=NORMAL");
        db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
        SQLite::Statement insert(db, "INSERT INTO t (v) VALUES (?)");
        const std::string value(300, 'v');
        db.exec("BEGIN");
        for (int i = 0; i < 200; ++i) {
            insert.bind(1, value.data(), static_cast<int>(value.size()));
            insert.exec();
            insert.reset();
        }
        const long before = write_calls();
        db.exec("COMMIT");
        return write_calls() - before;
    };
    const long plain = writes_for("plain.db", nullptr);
    const long coalesced = writes_for("coalesced.db", store::wal_write_vfs());
    ASSERT_GE(plain, 0) << "no /proc/self/io";
    EXPECT_GE(plain, 30) << "SQLite alone writes two per frame";
    EXPECT_LE(coalesced * 5, plain) << coalesced << " writes with the VFS";
}

TEST(WalWriteVfs, WhatACommitWroteIsReadByAnotherConnectionAtOnce) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    store::SqliteStore s({path, store::Durability::normal});
    // SQLite's default VFS, as the checkpointer and `botbusd rebuild` open it.
    SQLite::Database other(path, SQLite::OPEN_READONLY);
    for (int round = 1; round <= 20; ++round) {
        auto batch = s.begin();
        for (int i = 0; i < round * 7; ++i) batch.append(published("lobby", i));
        batch.commit();
        SQLite::Statement count(other, "SELECT COUNT(*), MAX(seq) FROM events");
        ASSERT_TRUE(count.executeStep());
        EXPECT_EQ(count.getColumn(1).getInt64(), static_cast<std::int64_t>(s.last_seq())) << "round " << round;
        SQLite::Statement check(other, "PRAGMA quick_check");
        ASSERT_TRUE(check.executeStep());
        EXPECT_EQ(check.getColumn(0).getString(), "ok") << "round " << round;
    }
}

TEST(WalWriteVfs, CommitsLargerThanOneWriteOrTheBufferAreWrittenWhole) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    store::SqliteStore s({path, store::Durability::normal});
    SQLite::Database other(path, SQLite::OPEN_READONLY);
    // ~2,000 and ~6,000 messages of ~300 bytes: past the 124 KiB write the
    // unix VFS accepts, and past the 1 MiB buffer.
    for (const int n : {2000, 6000}) {
        auto batch = s.begin();
        for (int i = 0; i < n; ++i) batch.append(published("lobby", i));
        const long before = write_calls();
        batch.commit();
        const long writes = write_calls() - before;
        EXPECT_GE(writes, 2) << n;
        // SQLite alone: two per frame, about 2 * n / 10 here.
        EXPECT_LE(writes, n / 50) << n;
        SQLite::Statement last(other, "SELECT MAX(seq) FROM events");
        ASSERT_TRUE(last.executeStep());
        EXPECT_EQ(last.getColumn(0).getInt64(), static_cast<std::int64_t>(s.last_seq())) << n;
    }
    SQLite::Statement check(other, "PRAGMA integrity_check");
    ASSERT_TRUE(check.executeStep());
    EXPECT_EQ(check.getColumn(0).getString(), "ok");
}
