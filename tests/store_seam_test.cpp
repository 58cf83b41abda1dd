// Unit tests of what the store seam adds over the SQLite store: the
// projection check behind `botbusd rebuild` (verify_projections), the
// retention primitives Trimmer builds on, and the batch protocol as seen
// through the Store interface alone.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/payloads.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"
#include "temp_dir.hpp"

namespace store = botbus::store;
using store::EventDraft;
using store::Seq;

namespace {

EventDraft channel_created(const std::string& name) {
    return EventDraft{std::string(store::stream::k_channels), store::EventType::channel_created,
                      "alice", std::nullopt, store::encode_payload(store::ChannelCreated{name, std::nullopt})};
}

EventDraft published(const std::string& channel, const std::string& text) {
    msgpack::sbuffer body;
    msgpack::pack(body, text);
    store::MessagePayload p;
    p.channel = channel;
    p.type = "text";
    p.body = std::string_view(body.data(), body.size());
    return EventDraft{store::stream::channel(channel), store::EventType::message_published, "alice",
                      std::nullopt, store::encode_message_payload(p)};
}

// Appends in one committed batch, through the interface only.
void append_all(store::Store& s, std::vector<EventDraft> drafts) {
    auto batch = s.begin();
    for (auto& d : drafts) batch.append(std::move(d));
    batch.commit();
}

class StoreSeam : public ::testing::Test {
protected:
    store::SqliteStore m_sqlite{{":memory:", store::Durability::full}};
    store::Store& m_store = m_sqlite;
};

TEST_F(StoreSeam, VerifyProjectionsReplaysTheWholeLogAndFindsNoDifference) {
    append_all(m_store, {channel_created("lobby"), published("lobby", "one"), published("lobby", "two")});
    const auto check = m_store.verify_projections();
    EXPECT_EQ(check.replayed, 3U);
    EXPECT_TRUE(check.differences.empty()) << check.differences.front();
}

TEST_F(StoreSeam, VerifyProjectionsReportsAProjectionRowThatDisagreesWithTheLog) {
    append_all(m_store, {channel_created("lobby")});
    m_sqlite.database().exec("UPDATE bot_channels SET created_by = 'mallory' WHERE name = 'lobby'");
    const auto check = m_store.verify_projections();
    ASSERT_EQ(check.differences.size(), 1U);
    EXPECT_NE(check.differences[0].find("bot_channels"), std::string::npos) << check.differences[0];
    EXPECT_NE(check.differences[0].find("mallory"), std::string::npos) << check.differences[0];
    // Its read transaction is over: batches work as before.
    append_all(m_store, {published("lobby", "after")});
    EXPECT_EQ(m_store.last_seq(), 2U);
}

TEST_F(StoreSeam, VerifyProjectionsStopsAtMaxDifferences) {
    append_all(m_store, {channel_created("a"), channel_created("b"), channel_created("c")});
    m_sqlite.database().exec("UPDATE bot_channels SET created_by = 'mallory'");
    EXPECT_EQ(m_store.verify_projections(2).differences.size(), 2U);
}

TEST_F(StoreSeam, VerifyProjectionsRefusesWhileABatchIsOpen) {
    auto batch = m_store.begin();
    batch.append(channel_created("lobby"));
    EXPECT_THROW(m_store.verify_projections(), std::logic_error);
    batch.commit();  // the batch was left alone
    EXPECT_EQ(m_store.last_seq(), 1U);
}

TEST_F(StoreSeam, TrimMessagesDeletesThroughASeqAndLogsItInTheBatch) {
    append_all(m_store, {channel_created("lobby"), published("lobby", "1"), published("lobby", "2"),
                         published("lobby", "3")});
    const auto streams = m_store.message_streams_after("", 10);
    ASSERT_EQ(streams.size(), 1U);
    EXPECT_EQ(streams[0].stream, "ch/lobby");
    EXPECT_EQ(streams[0].last_stream_seq, 3U);
    const auto oldest = m_store.oldest_messages("ch/lobby", 2);
    ASSERT_EQ(oldest.size(), 2U);
    EXPECT_EQ(oldest[0].seq, 2U);
    EXPECT_EQ(oldest[1].stream_seq, 2U);

    {
        auto batch = m_store.begin();
        m_store.trim_messages(batch, "ch/lobby", 3, 2);
        // Dropped without a commit: the deletion goes with the batch.
    }
    EXPECT_EQ(m_store.oldest_messages("ch/lobby", 10).size(), 3U);

    auto batch = m_store.begin();
    const auto logged = m_store.trim_messages(batch, "ch/lobby", 3, 2);
    ASSERT_EQ(batch.events().size(), 1U);
    EXPECT_EQ(batch.events()[0].type, store::EventType::stream_trimmed);
    batch.commit();
    EXPECT_EQ(logged.seq, 5U);
    const auto left = m_store.oldest_messages("ch/lobby", 10);
    ASSERT_EQ(left.size(), 1U);
    EXPECT_EQ(left[0].seq, 4U);
    EXPECT_TRUE(m_store.verify_projections().differences.empty());
}

TEST_F(StoreSeam, TrimMessagesRefusesWithoutAnOpenBatch) {
    append_all(m_store, {channel_created("lobby"), published("lobby", "1")});
    auto batch = m_store.begin();
    batch.commit();
    EXPECT_THROW(m_store.trim_messages(batch, "ch/lobby", 2, 1), std::logic_error);
    EXPECT_EQ(m_store.oldest_messages("ch/lobby", 10).size(), 1U);
}

TEST_F(StoreSeam, MessageStreamsAreListedInNameOrderFromACursor) {
    append_all(m_store, {channel_created("b"), channel_created("a"), published("b", "x"), published("a", "y")});
    std::vector<std::string> names;
    for (const auto& s : m_store.message_streams_after("", 10)) names.push_back(s.stream);
    EXPECT_EQ(names, (std::vector<std::string>{"ch/a", "ch/b"}));
    const auto rest = m_store.message_streams_after("ch/a", 10);
    ASSERT_EQ(rest.size(), 1U);
    EXPECT_EQ(rest[0].stream, "ch/b");
    EXPECT_EQ(m_store.message_streams_after("", 1).size(), 1U);
}

TEST_F(StoreSeam, ReadsInsideABatchSeeItsAppendsAndARollbackForgetsThem) {
    {
        auto batch = m_store.begin();
        batch.append(channel_created("lobby"));
        EXPECT_TRUE(m_store.messages().channel_exists("lobby"));
        EXPECT_EQ(m_store.read_range(0, 10).size(), 1U);
    }
    EXPECT_FALSE(m_store.messages().channel_exists("lobby"));
    EXPECT_TRUE(m_store.read_range(0, 10).empty());
    EXPECT_EQ(m_store.last_seq(), 0U);
}

TEST(StoreSeamFile, VerifyProjectionsOfAFileSeesOneSnapshotWhileAnotherStoreAppends) {
    botbus::testing::TempDir dir;
    const auto path = (dir.path() / "botbus.db").string();
    store::SqliteStore writer({path, store::Durability::normal});
    append_all(writer, {channel_created("lobby"), published("lobby", "1")});
    store::SqliteStore checker({path, store::Durability::normal});
    // The writer holds a batch open (uncommitted appends are invisible to
    // the checker) while the check runs.
    auto batch = writer.begin();
    batch.append(published("lobby", "2"));
    const auto check = checker.verify_projections();
    EXPECT_EQ(check.replayed, 2U);
    EXPECT_TRUE(check.differences.empty());
    batch.commit();
    EXPECT_EQ(checker.verify_projections().replayed, 3U);
}

}  // namespace
