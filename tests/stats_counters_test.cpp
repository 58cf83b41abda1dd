// Unit tests of the counts `stats` reports (migration 0009): kept as the log
// and projections change, they equal a full count after appends, rolled-back
// requests and batches, retention, a channel's deletion and a restart; the
// rebuild check names a kept count that drifted; and reading them touches the
// same number of pages on any log size (no scan).
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>

#include "store/payloads.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/trimmer.hpp"
#include "message_drafts.hpp"
#include "temp_dir.hpp"

namespace store = botbus::store;
using store::EventDraft;

namespace {

EventDraft channel_created(const std::string& name) {
    return {std::string(store::stream::k_channels), store::EventType::channel_created, "alice", std::nullopt,
            store::encode_payload(store::ChannelCreated{name, std::nullopt})};
}
EventDraft channel_deleted(const std::string& name) {
    return {std::string(store::stream::k_channels), store::EventType::channel_deleted, "alice", std::nullopt,
            store::encode_payload(store::ChannelDeleted{name})};
}
EventDraft subscribed(const std::string& bot, const std::string& channel) {
    return {std::string(store::stream::k_channels), store::EventType::subscription_added, bot, std::nullopt,
            store::encode_payload(store::SubscriptionChanged{bot, channel})};
}
EventDraft published(const std::string& channel, const std::string& text) {
    return botbus::testing::published_draft(channel, text);
}
EventDraft sent(const std::string& to, const std::string& text) {
    return botbus::testing::sent_draft(to, text);
}

std::int64_t count(SQLite::Database& db, const char* sql) {
    SQLite::Statement s(db, sql);
    s.executeStep();
    return s.getColumn(0).getInt64();
}

// What stats reports against full counts of the tables it describes.
void expect_counts_match(store::SqliteStore& s) {
    auto& db = s.database();
    const auto stats = s.stats();
    EXPECT_EQ(stats.event_count, count(db, "SELECT COUNT(*) FROM events"));
    EXPECT_EQ(stats.message_count,
              count(db, "SELECT COUNT(*) FROM events WHERE type IN ('message.published', 'message.sent')"));
    EXPECT_EQ(stats.channel_count, count(db, "SELECT COUNT(*) FROM bot_channels"));
    EXPECT_EQ(stats.subscription_count, count(db, "SELECT COUNT(*) FROM bot_subscriptions"));
}

void append_all(store::Store& s, std::initializer_list<EventDraft> drafts) {
    auto batch = s.begin();
    for (auto draft : drafts) batch.append(std::move(draft));
    batch.commit();
}

}  // namespace

TEST(StatsCounters, MatchAFullCountAfterAppendsRollbacksTrimsAndADeletedChannel) {
    store::SqliteStore s({":memory:", store::Durability::full});
    append_all(s, {channel_created("a"), channel_created("b"), subscribed("bob", "a"), subscribed("carol", "a"),
                   subscribed("bob", "b")});
    for (int i = 0; i < 10; ++i) append_all(s, {published("a", "m" + std::to_string(i)), sent("bob", "d")});
    expect_counts_match(s);
    EXPECT_EQ(s.stats().message_count, 20);

    {
        // One request of a batch undone alone, and a whole batch dropped.
        auto batch = s.begin();
        batch.append(published("a", "kept"));
        batch.savepoint();
        batch.append(published("a", "undone"));
        batch.append(channel_created("c"));
        ASSERT_TRUE(batch.rollback_to_savepoint());
        EXPECT_EQ(s.stats().message_count, 21) << "inside a batch, its own appends count";
        batch.commit();
    }
    {
        auto dropped = s.begin();
        dropped.append(published("a", "never"));
        dropped.append(channel_created("d"));
    }
    expect_counts_match(s);
    EXPECT_EQ(s.stats().message_count, 21);
    EXPECT_EQ(s.stats().channel_count, 2);

    store::Trimmer trimmer(s, {0, 3});
    for (int step = 0; step < 10; ++step) {
        auto batch = s.begin();
        const auto trimmed = trimmer.step(batch, store::now_us());
        batch.commit();
        if (trimmed == 0) break;
    }
    expect_counts_match(s);
    EXPECT_EQ(s.stats().message_count, 3 + 10) << "three kept in the channel; unacknowledged mail stays";

    append_all(s, {channel_deleted("a")});  // its memberships go with it
    expect_counts_match(s);
    EXPECT_EQ(s.stats().channel_count, 1);
    EXPECT_EQ(s.stats().subscription_count, 1);
    EXPECT_TRUE(s.verify_projections().differences.empty());
}

TEST(StatsCounters, SurviveARestart) {
    botbus::testing::TempDir dir;
    const auto path = dir.file("botbus.db");
    {
        store::SqliteStore s({path, store::Durability::normal});
        append_all(s, {channel_created("a"), subscribed("bob", "a")});
        for (int i = 0; i < 25; ++i) append_all(s, {published("a", "m"), sent("bob", "d")});
        store::Trimmer trimmer(s, {0, 5});
        auto batch = s.begin();
        trimmer.step(batch, store::now_us());
        batch.commit();
    }
    store::SqliteStore reopened({path, store::Durability::normal});
    expect_counts_match(reopened);
    EXPECT_EQ(reopened.stats().message_count, 5 + 25);  // unacknowledged mail stays
    EXPECT_EQ(reopened.stats().channel_count, 1);
    EXPECT_EQ(reopened.stats().subscription_count, 1);
}

TEST(StatsCounters, TheRebuildCheckNamesAKeptCountThatDrifted) {
    store::SqliteStore s({":memory:", store::Durability::full});
    append_all(s, {channel_created("a"), published("a", "x")});
    EXPECT_TRUE(s.verify_projections().differences.empty());
    s.database().exec("UPDATE log_head SET message_count = message_count + 5");
    s.database().exec("UPDATE projection_counts SET count = 7 WHERE name = 'channels'");
    const auto differences = s.verify_projections().differences;
    ASSERT_EQ(differences.size(), 2U);
    EXPECT_NE(differences[0].find("projection_counts"), std::string::npos) << differences[0];
    EXPECT_NE(differences[1].find("message_count: kept 6, the log holds 1"), std::string::npos) << differences[1];
}

namespace {

// Pages stats() reads from the page cache (hits and misses).
int pages_read_by_stats(store::SqliteStore& s) {
    auto* db = s.database().getHandle();
    int current = 0;
    int high = 0;
    sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_HIT, &current, &high, 1);
    sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &current, &high, 1);
    (void)s.stats();
    int hits = 0;
    int misses = 0;
    sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_HIT, &hits, &high, 0);
    sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &misses, &high, 0);
    return hits + misses;
}

}  // namespace

TEST(StatsCounters, ReadTheSamePagesOnAnyLogSize) {
    store::SqliteStore small({":memory:", store::Durability::full});
    append_all(small, {channel_created("a"), published("a", "x"), sent("bob", "y")});
    store::SqliteStore large({":memory:", store::Durability::full});
    append_all(large, {channel_created("a")});
    for (int b = 0; b < 20; ++b) {
        auto batch = large.begin();
        for (int i = 0; i < 500; ++i) {
            batch.append(published("a", std::string(200, 'x')));
            batch.append(sent("bob", std::string(200, 'y')));
        }
        batch.commit();
    }
    ASSERT_EQ(large.stats().message_count, 20'000);
    const auto few = pages_read_by_stats(small);
    const auto many = pages_read_by_stats(large);
    EXPECT_GT(few, 0);
    EXPECT_EQ(many, few) << "stats read " << many << " pages on 20,000 messages and " << few << " on 2";
}
