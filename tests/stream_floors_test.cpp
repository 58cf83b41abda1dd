// Stream heads read from the log, `streams` kept as a list and a floor
// (migrations/0011_stream_floors.sql): a commit no longer rewrites a
// `streams` row or `projection_state`, and no seq or stream seq is handed
// out twice, even once retention has deleted every message of a stream and
// the daemon restarted; a database the previous layout wrote upgrades in
// place and keeps serving where it stopped.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <string>

#include "store/payloads.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/trimmer.hpp"
#include "message_drafts.hpp"
#include "temp_dir.hpp"

namespace store = botbus::store;
using store::Seq;
using botbus::testing::published_draft;
using botbus::testing::TempDir;

namespace {

store::EventDraft channel_created(const std::string& name) {
    return {std::string(store::stream::k_channels), store::EventType::channel_created, "alice", std::nullopt,
            store::encode_payload(store::ChannelCreated{name, std::nullopt})};
}

store::Appended append(store::SqliteStore& s, store::EventDraft draft) {
    auto batch = s.begin();
    const auto appended = batch.append(std::move(draft));
    batch.commit();
    return appended;
}

std::int64_t integer(store::SqliteStore& s, const std::string& sql) {
    SQLite::Statement q(s.database(), sql);
    return q.executeStep() ? q.getColumn(0).getInt64() : -1;
}

bool table_exists(store::SqliteStore& s, const std::string& table) {
    return integer(s, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '" + table + "'") == 1;
}

}  // namespace

TEST(StreamFloors, AppendingRewritesNoStreamsRowButTheHeadIsTheNewestEvent) {
    store::SqliteStore s({":memory:", store::Durability::full});
    append(s, channel_created("lobby"));
    for (int i = 0; i < 3; ++i) append(s, published_draft("lobby", "m" + std::to_string(i)));
    // Listed once, when it first appeared; never rewritten since.
    EXPECT_EQ(integer(s, "SELECT COUNT(*) FROM streams WHERE stream = 'ch/lobby'"), 1);
    EXPECT_EQ(integer(s, "SELECT floor_stream_seq FROM streams WHERE stream = 'ch/lobby'"), 0);
    EXPECT_EQ(integer(s, "SELECT floor_seq FROM streams WHERE stream = 'ch/lobby'"), 0);
    // What readers see is the newest event.
    EXPECT_EQ(s.messages().channel("lobby")->last_channel_seq, 3U);
    EXPECT_EQ(s.consumers().head("lobby"), 4U);
    const auto streams = s.message_streams_after("", 10);
    ASSERT_EQ(streams.size(), 1U);
    EXPECT_EQ(streams[0].stream, "ch/lobby");
    EXPECT_EQ(streams[0].last_stream_seq, 3U);
    EXPECT_FALSE(table_exists(s, "projection_state"));
}

TEST(StreamFloors, AStreamWhoseEveryMessageWasTrimmedKeepsItsHeadAcrossARestart) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    Seq last_message = 0;
    {
        store::SqliteStore s({path, store::Durability::full});
        append(s, channel_created("lobby"));
        for (int i = 0; i < 3; ++i) last_message = append(s, published_draft("lobby", "m" + std::to_string(i))).seq;
        // An age limit every message is past: all three go.
        store::Trimmer trimmer(s, {1, 0});
        auto batch = s.begin();
        EXPECT_EQ(trimmer.step(batch, store::now_us() + 60'000'000, 1000), 3U);
        batch.commit();
        EXPECT_EQ(integer(s, "SELECT COUNT(*) FROM events WHERE stream = 'ch/lobby'"), 0);
        EXPECT_EQ(integer(s, "SELECT floor_stream_seq FROM streams WHERE stream = 'ch/lobby'"), 3);
    }
    // Read back from the file alone: nothing is cached any more.
    store::SqliteStore s({path, store::Durability::full});
    EXPECT_EQ(s.messages().channel("lobby")->last_channel_seq, 3U);
    EXPECT_EQ(s.consumers().head("lobby"), last_message);
    const auto next = append(s, published_draft("lobby", std::string("after")));
    EXPECT_EQ(next.stream_seq, 4U);
    EXPECT_GT(next.seq, last_message);
    EXPECT_EQ(s.messages().channel("lobby")->last_channel_seq, 4U);
    EXPECT_TRUE(s.verify_projections().differences.empty());
}

TEST(StreamFloors, ADatabaseThePreviousLayoutWroteUpgradesInPlace) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    Seq last = 0;
    {
        store::SqliteStore s({path, store::Durability::full});
        append(s, channel_created("lobby"));
        append(s, published_draft("lobby", std::string("a")));
        last = append(s, published_draft("lobby", std::string("b"))).seq;
    }
    {
        // Back to what a botbusd at migration 0010 left: exact heads in
        // `streams`, the projection position in projection_state.
        SQLite::Database db(path, SQLite::OPEN_READWRITE);
        db.exec("ALTER TABLE streams RENAME COLUMN floor_stream_seq TO last_stream_seq");
        db.exec("ALTER TABLE streams RENAME COLUMN floor_seq TO last_seq");
        db.exec(
            "UPDATE streams SET last_stream_seq = (SELECT MAX(stream_seq) FROM events e WHERE e.stream ="
            " streams.stream), last_seq = (SELECT MAX(seq) FROM events e WHERE e.stream = streams.stream)");
        db.exec("CREATE TABLE projection_state (projection TEXT PRIMARY KEY, last_seq INTEGER NOT NULL)"
                " STRICT, WITHOUT ROWID");
        db.exec("INSERT INTO projection_state (projection, last_seq) SELECT 'messaging', last_seq FROM log_head");
        db.exec("DELETE FROM schema_migrations WHERE version = 11");
    }
    store::SqliteStore s({path, store::Durability::full});
    EXPECT_EQ(integer(s, "SELECT COUNT(*) FROM schema_migrations WHERE version = 11"), 1);
    EXPECT_FALSE(table_exists(s, "projection_state"));
    // The heads the old layout kept became floors, equal to the heads.
    EXPECT_EQ(integer(s, "SELECT floor_stream_seq FROM streams WHERE stream = 'ch/lobby'"), 2);
    EXPECT_EQ(s.messages().channel("lobby")->last_channel_seq, 2U);
    const auto next = append(s, published_draft("lobby", std::string("c")));
    EXPECT_EQ(next.seq, last + 1);
    EXPECT_EQ(next.stream_seq, 3U);
    EXPECT_EQ(s.messages().channel("lobby")->last_channel_seq, 3U);
    EXPECT_EQ(s.consumers().head("lobby"), next.seq);
    EXPECT_TRUE(s.verify_projections().differences.empty());
}
