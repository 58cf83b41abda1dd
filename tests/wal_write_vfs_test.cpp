// The botbus-unix VFS (store/sqlite/wal_write_vfs.hpp): a commit's WAL
// frames reach the file in one write, and they are on the file when COMMIT
// returns, where another connection (the checkpointer's, `botbusd rebuild`)
// reads them.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <fstream>
#include <string>

#include "store/payloads.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "temp_dir.hpp"

namespace store = botbus::store;
using botbus::testing::TempDir;

namespace {

store::EventDraft published(const std::string& channel, int i) {
    msgpack::sbuffer body;
    msgpack::pack(body, std::string(200, static_cast<char>('a' + i % 26)));
    store::MessagePayload p;
    p.channel = channel;
    p.type = "text";
    p.body = std::string(body.data(), body.size());
    return {store::stream::channel(channel), store::EventType::message_published, "alice", std::nullopt,
            store::encode_message_payload(p)};
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

TEST(WalWriteVfs, ACommitOfManyPagesIsOneWriteToTheWal) {
    TempDir dir;
    // Durability::normal: nothing syncs or advances the seq record, so the
    // commit's writes are the only ones.
    store::SqliteStore s({dir.file("botbus.db"), store::Durability::normal});
    auto warm = s.begin();
    warm.append(published("lobby", 0));
    warm.commit();

    auto batch = s.begin();
    for (int i = 0; i < 200; ++i) batch.append(published("lobby", i));  // ~60 KB: about 15 pages
    const long before = write_calls();
    ASSERT_GE(before, 0) << "no /proc/self/io";
    batch.commit();
    EXPECT_EQ(write_calls() - before, 1) << "SQLite alone writes two per frame";
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
