// Savepoints in a batch (store.hpp): one request's appends undone alone, on a
// real SQLite file. After a rollback to a savepoint, the log, the projections,
// the batch's events and every cache the store keeps are as they were before
// the request; the other requests commit, and a rebuild from the log equals
// the live projections.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/payloads.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "temp_dir.hpp"

namespace store = botbus::store;
using store::EventDraft;
using store::SqliteStore;

namespace {

using botbus::testing::TempDir;

EventDraft channel_created(const std::string& name) {
    return EventDraft{std::string(store::stream::k_channels), store::EventType::channel_created, "alice",
                      std::nullopt, store::encode_payload(store::ChannelCreated{name, std::nullopt})};
}

EventDraft channel_deleted(const std::string& name) {
    return EventDraft{std::string(store::stream::k_channels), store::EventType::channel_deleted, "alice",
                      std::nullopt, store::encode_payload(store::ChannelDeleted{name})};
}

EventDraft subscribed(const std::string& bot, const std::string& channel) {
    return EventDraft{std::string(store::stream::k_channels), store::EventType::subscription_added, bot,
                      std::nullopt, store::encode_payload(store::SubscriptionChanged{bot, channel})};
}

EventDraft published(const std::string& channel, std::optional<std::string> key = std::nullopt) {
    // MessagePayload views its fields: the body must outlive the encoding.
    const std::string body("\xa2hi", 3);
    store::MessagePayload p;
    p.channel = channel;
    p.type = "text";
    p.body = body;
    return EventDraft{store::stream::channel(channel), store::EventType::message_published, "alice", std::move(key),
                      store::encode_message_payload(p)};
}

class Savepoints : public ::testing::Test {
protected:
    SqliteStore& open() {
        m_store.reset();
        m_store.emplace(store::StoreOptions{m_dir.file("botbus.db"), store::Durability::full});
        return *m_store;
    }

    void expect_projections_match() {
        const auto check = m_store->verify_projections();
        EXPECT_TRUE(check.differences.empty()) << check.differences.front();
    }

    TempDir m_dir;
    std::optional<SqliteStore> m_store;
};

TEST_F(Savepoints, AFailedRequestIsUndoneAloneAndTheOthersCommit) {
    auto& s = open();
    {
        auto batch = s.begin();
        // Request A: creates "kept" and publishes to it.
        batch.savepoint();
        batch.append(channel_created("kept"));
        batch.append(published("kept"));
        batch.release_savepoint();
        // Request B: creates "lost", subscribes to it, publishes to "kept"
        // and "lost", asks (filling the channel cache), then fails in the
        // middle of an append: "kept" exists already.
        batch.savepoint();
        batch.append(channel_created("lost"));
        batch.append(subscribed("bob", "lost"));
        batch.append(published("kept"));
        batch.append(published("lost", "key-1"));
        EXPECT_TRUE(s.messages().channel_exists("lost"));
        EXPECT_THROW(batch.append(channel_created("kept")), SQLite::Exception);
        EXPECT_EQ(batch.events().size(), 6U);
        ASSERT_TRUE(batch.rollback_to_savepoint());
        EXPECT_EQ(batch.events().size(), 2U) << "B's events are still pending";
        // Within the same batch, B is gone already.
        EXPECT_FALSE(s.messages().channel_exists("lost"));
        EXPECT_FALSE(s.messages().is_subscribed("bob", "lost"));
        // Request C: seqs and stream seqs go on from A's, as if B never ran;
        // B's idempotency key is free.
        batch.savepoint();
        const auto c1 = batch.append(published("kept"));
        EXPECT_EQ(c1.seq, 3U);
        EXPECT_EQ(c1.stream_seq, 2U);
        const auto c2 = batch.append(published("lost", "key-1"));
        EXPECT_FALSE(c2.duplicate);
        EXPECT_EQ(c2.seq, 4U);
        EXPECT_EQ(c2.stream_seq, 1U);
        batch.release_savepoint();
        batch.commit();
    }
    EXPECT_EQ(s.last_seq(), 4U);
    const auto log = s.read_range(0, 100);
    ASSERT_EQ(log.size(), 4U);
    for (std::size_t i = 0; i < log.size(); ++i) EXPECT_EQ(log[i].seq, i + 1);
    EXPECT_EQ(log[1].stream, store::stream::channel("kept"));
    EXPECT_EQ(log[3].stream, store::stream::channel("lost"));
    EXPECT_TRUE(s.messages().channel_exists("kept"));
    EXPECT_FALSE(s.messages().channel_exists("lost")) << "a channel only B created outlived B";
    EXPECT_FALSE(s.messages().channel("lost"));
    EXPECT_TRUE(s.messages().subscribers("lost", "", {}).empty());
    expect_projections_match();

    // The committed stream heads are A's and C's: the next batch goes on from there.
    {
        auto batch = s.begin();
        EXPECT_EQ(batch.append(published("kept")).stream_seq, 3U);
        EXPECT_EQ(batch.append(published("lost")).stream_seq, 2U);
        batch.commit();
    }
    auto& reopened = open();
    EXPECT_EQ(reopened.last_seq(), 6U);
    EXPECT_FALSE(reopened.messages().channel_exists("lost"));
    expect_projections_match();
}

TEST_F(Savepoints, AFailedRequestOfLogRowsAloneIsUndoneToo) {
    // Publishes write log rows alone (no SQL savepoint is taken for them);
    // undoing them must still leave no trace, before and after a projecting
    // append in the same request.
    auto& s = open();
    {
        auto batch = s.begin();
        batch.append(channel_created("news"));
        batch.append(published("news"));
        // Only publishes, then the request fails (say, while building its reply).
        batch.savepoint();
        batch.append(published("news", "k1"));
        batch.append(published("news"));
        ASSERT_TRUE(batch.rollback_to_savepoint());
        // Publishes, then a projecting append, then a failure.
        batch.savepoint();
        batch.append(published("news", "k2"));
        batch.append(subscribed("bob", "news"));
        batch.append(published("news"));
        EXPECT_THROW(batch.append(channel_created("news")), SQLite::Exception);
        ASSERT_TRUE(batch.rollback_to_savepoint());
        EXPECT_EQ(batch.events().size(), 2U);
        EXPECT_FALSE(s.messages().is_subscribed("bob", "news"));
        // The next request takes up the same seqs and keys.
        batch.savepoint();
        const auto next = batch.append(published("news", "k1"));
        EXPECT_FALSE(next.duplicate);
        EXPECT_EQ(next.seq, 3U);
        EXPECT_EQ(next.stream_seq, 2U);
        EXPECT_FALSE(batch.append(published("news", "k2")).duplicate);
        batch.release_savepoint();
        batch.commit();
    }
    const auto log = s.read_range(0, 100);
    ASSERT_EQ(log.size(), 4U);
    EXPECT_EQ(log.back().seq, 4U);
    EXPECT_EQ(log.back().stream_seq, 3U);
    EXPECT_EQ(s.last_seq(), 4U);
    expect_projections_match();
    auto& reopened = open();
    EXPECT_EQ(reopened.last_seq(), 4U);
    auto batch = reopened.begin();
    EXPECT_EQ(batch.append(published("news")).stream_seq, 4U);
    batch.commit();
    expect_projections_match();
}

TEST_F(Savepoints, AChannelDeletedByAFailedRequestStillExists) {
    auto& s = open();
    {
        auto batch = s.begin();
        batch.append(channel_created("general"));
        batch.commit();
    }
    EXPECT_TRUE(s.messages().channel_exists("general"));  // now cached
    {
        auto batch = s.begin();
        batch.savepoint();
        batch.append(channel_deleted("general"));
        EXPECT_FALSE(s.messages().channel_exists("general"));
        ASSERT_TRUE(batch.rollback_to_savepoint());
        EXPECT_TRUE(s.messages().channel_exists("general"));
        batch.commit();
    }
    EXPECT_TRUE(s.messages().channel_exists("general"));
    EXPECT_EQ(s.last_seq(), 1U);
    expect_projections_match();
}

TEST_F(Savepoints, ASavepointWithoutAppendsCostsNothingAndUndoesNothing) {
    auto& s = open();
    auto batch = s.begin();
    batch.append(channel_created("a"));
    batch.savepoint();
    EXPECT_TRUE(batch.rollback_to_savepoint());
    batch.savepoint();
    batch.release_savepoint();
    EXPECT_EQ(batch.events().size(), 1U);
    batch.commit();
    EXPECT_EQ(s.last_seq(), 1U);
    EXPECT_TRUE(s.messages().channel_exists("a"));
}

TEST_F(Savepoints, AFailedAppendInASavepointMustBeRolledBackBeforeAnythingElse) {
    auto& s = open();
    auto batch = s.begin();
    batch.append(channel_created("a"));
    batch.savepoint();
    EXPECT_THROW(batch.append(channel_created("a")), SQLite::Exception);
    EXPECT_THROW(batch.append(channel_created("b")), std::logic_error);
    EXPECT_THROW(batch.release_savepoint(), std::logic_error);
    ASSERT_TRUE(batch.rollback_to_savepoint());
    batch.append(channel_created("b"));
    batch.commit();
    EXPECT_EQ(s.last_seq(), 2U);
    expect_projections_match();
}

TEST_F(Savepoints, CommittingWithASavepointOpenRollsTheBatchBack) {
    auto& s = open();
    auto batch = s.begin();
    batch.append(channel_created("a"));
    batch.savepoint();
    batch.append(channel_created("b"));
    EXPECT_THROW(batch.commit(), std::logic_error);
    EXPECT_EQ(s.last_seq(), 0U);
    EXPECT_FALSE(s.messages().channel_exists("a"));
    auto next = s.begin();  // the failed batch is closed
    next.commit();
}

TEST_F(Savepoints, ATransactionLostUnderneathFailsTheWholeBatch) {
    auto& s = open();
    {
        auto batch = s.begin();
        batch.append(channel_created("a"));
        batch.savepoint();
        batch.append(channel_created("b"));
        // What SQLite does by itself on some I/O and memory errors.
        s.database().exec("ROLLBACK");
        EXPECT_FALSE(batch.rollback_to_savepoint());
        EXPECT_THROW(batch.commit(), std::logic_error) << "a lost batch was committed";
    }
    EXPECT_EQ(s.last_seq(), 0U);
    EXPECT_FALSE(s.messages().channel_exists("a"));
    auto batch = s.begin();
    EXPECT_EQ(batch.append(channel_created("a")).seq, 1U);
    batch.commit();
    expect_projections_match();
}

TEST_F(Savepoints, AfterSQLiteLostTheTransactionNothingIsWrittenOutsideIt) {
    auto& s = open();
    {
        auto batch = s.begin();
        batch.append(channel_created("a"));
        batch.savepoint();
        // A request that only read, and whose failed read cost the
        // transaction (SQLite rolls back by itself on a read's I/O error).
        s.database().exec("ROLLBACK");
        EXPECT_FALSE(batch.rollback_to_savepoint()) << "a lost transaction was taken for an intact one";
    }
    {
        // Without savepoints: appends must not autocommit one by one.
        auto batch = s.begin();
        batch.append(channel_created("b"));
        s.database().exec("ROLLBACK");
        EXPECT_THROW(batch.append(channel_created("c")), std::runtime_error);
    }
    {
        auto batch = s.begin();
        batch.append(channel_created("d"));
        s.database().exec("ROLLBACK");
        EXPECT_THROW(batch.commit(), std::runtime_error) << "log_head and streams written outside a transaction";
    }
    EXPECT_EQ(s.last_seq(), 0U);
    for (const char* name : {"a", "b", "c", "d"}) EXPECT_FALSE(s.messages().channel_exists(name)) << name;
    auto& reopened = open();
    EXPECT_EQ(reopened.last_seq(), 0U) << "log_head moved without its events";
    EXPECT_TRUE(reopened.read_range(0, 10).empty());
    auto batch = reopened.begin();
    EXPECT_EQ(batch.append(channel_created("a")).seq, 1U);
    batch.commit();
    expect_projections_match();
}

}  // namespace
