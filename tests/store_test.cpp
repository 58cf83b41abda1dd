// Unit tests of the store: the event log (Batch, append, commit, read_range)
// and the messaging projections it keeps in the same transaction.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/payloads.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "temp_dir.hpp"

namespace store = botbus::store;
using store::Durability;
using store::EventDraft;
using store::Seq;
using store::SqliteStore;

namespace {

using botbus::testing::TempDir;

// A type the projections skip (messages are read from the log itself), so
// these events need no real payload.
constexpr store::EventType k_test_type = store::EventType::message_published;

EventDraft draft(std::string stream, std::string producer = "bot", std::optional<std::string> key = std::nullopt,
                 std::string payload = std::string("\x80", 1)) {
    return EventDraft{std::move(stream), k_test_type, std::move(producer), std::move(key),
                      std::move(payload)};
}

EventDraft channel_created(const std::string& name, std::optional<std::string> description = std::nullopt,
                           std::string producer = "alice") {
    return EventDraft{std::string(store::stream::k_channels), store::EventType::channel_created,
                      std::move(producer), std::nullopt,
                      store::encode_payload(store::ChannelCreated{name, std::move(description)})};
}

EventDraft subscription(store::EventType type, const std::string& bot, const std::string& channel) {
    return EventDraft{std::string(store::stream::k_channels), type, bot, std::nullopt,
                      store::encode_payload(store::SubscriptionChanged{bot, channel})};
}

// A packed msgpack string, as a message body.
std::string packed_body(const std::string& text) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, text);
    return std::string(buffer.data(), buffer.size());
}

EventDraft published(const std::string& from, const std::string& channel, const std::string& body,
                     std::optional<std::uint64_t> reply_to = std::nullopt) {
    store::MessagePayload p;
    p.channel = channel;
    p.type = "text";
    p.body = body;
    p.reply_to = reply_to;
    return EventDraft{store::stream::channel(channel), store::EventType::message_published, from,
                      std::nullopt, store::encode_message_payload(p)};
}

EventDraft sent(const std::string& from, const std::string& to, const std::string& body) {
    store::MessagePayload p;
    p.to = to;
    p.type = "note";
    p.body = body;
    return EventDraft{store::stream::mailbox(to), store::EventType::message_sent, from, std::nullopt,
                      store::encode_message_payload(p)};
}

EventDraft acked(const std::string& bot, std::uint64_t upto) {
    return EventDraft{std::string(store::stream::k_mailboxes), store::EventType::mailbox_acked, bot,
                      std::nullopt, store::encode_payload(store::MailboxAcked{upto, std::nullopt})};
}

std::vector<Seq> seqs_of(const std::vector<store::Event>& events) {
    std::vector<Seq> seqs;
    for (const auto& e : events) seqs.push_back(e.seq);
    return seqs;
}

std::vector<Seq> seqs_of(const std::vector<store::MessageRow>& rows) {
    std::vector<Seq> seqs;
    for (const auto& r : rows) seqs.push_back(r.seq);
    return seqs;
}

std::int64_t count_rows(SqliteStore& s, const std::string& sql) {
    SQLite::Statement q(s.database(), sql);
    if (!q.executeStep()) return -1;
    return q.getColumn(0).getInt64();
}

// The projections commit in the log's transaction: their position is the
// head the log records (migration 0011).
std::int64_t projection_position(SqliteStore& s) {
    return count_rows(s, "SELECT last_seq FROM log_head WHERE id = 1");
}

class EventLog : public ::testing::Test {
protected:
    SqliteStore m_store{{":memory:", Durability::full}};
};

class Projections : public ::testing::Test {
protected:
    SqliteStore m_store{{":memory:", Durability::full}};

    std::vector<store::MessageRow> channel_history(const std::string& channel, bool newest_first = false) {
        store::HistoryQuery q;
        q.scope = store::HistoryQuery::Scope::channel;
        q.channel = channel;
        q.newest_first = newest_first;
        return m_store.messages().history(q);
    }
};

// ---- the log

TEST(StoreOpen, FreshStoreStartsWithAnEmptyLog) {
    SqliteStore s{{":memory:", Durability::full}};
    EXPECT_EQ(s.last_seq(), 0U);
    EXPECT_TRUE(s.read_range(0, 100).empty());
    const auto stats = s.stats();
    EXPECT_EQ(stats.event_count, 0);
    EXPECT_EQ(stats.last_seq, 0U);
    EXPECT_GT(stats.db_bytes, 0);
}

TEST_F(EventLog, AppendsGetSeqsOneToNInOrderWithoutGaps) {
    auto batch = m_store.begin();
    for (Seq expected = 1; expected <= 5; ++expected) {
        const auto appended = batch.append(draft("s"));
        EXPECT_EQ(appended.seq, expected);
        EXPECT_FALSE(appended.duplicate);
        EXPECT_GT(appended.ts_us, 0);
    }
    batch.commit();
    EXPECT_EQ(m_store.last_seq(), 5U);
    EXPECT_EQ(seqs_of(m_store.read_range(0, 100)), (std::vector<Seq>{1, 2, 3, 4, 5}));
}

TEST_F(EventLog, SeqsContinueAcrossBatches) {
    {
        auto batch = m_store.begin();
        batch.append(draft("s"));
        batch.append(draft("s"));
        batch.commit();
    }
    auto batch = m_store.begin();
    EXPECT_EQ(batch.append(draft("t")).seq, 3U);
    EXPECT_EQ(batch.append(draft("s")).seq, 4U);
    batch.commit();
    EXPECT_EQ(seqs_of(m_store.read_range(0, 100)), (std::vector<Seq>{1, 2, 3, 4}));
}

TEST_F(EventLog, StreamSeqsCountEachStreamIndependently) {
    auto batch = m_store.begin();
    EXPECT_EQ(batch.append(draft("a")).stream_seq, 1U);
    EXPECT_EQ(batch.append(draft("b")).stream_seq, 1U);
    EXPECT_EQ(batch.append(draft("a")).stream_seq, 2U);
    EXPECT_EQ(batch.append(draft("a")).stream_seq, 3U);
    EXPECT_EQ(batch.append(draft("b")).stream_seq, 2U);
    batch.commit();

    auto next = m_store.begin();
    EXPECT_EQ(next.append(draft("b")).stream_seq, 3U);
    EXPECT_EQ(next.append(draft("c")).stream_seq, 1U);
    EXPECT_EQ(next.append(draft("a")).stream_seq, 4U);
    next.commit();

    const auto events = m_store.read_range(0, 100);
    ASSERT_EQ(events.size(), 8U);
    EXPECT_EQ(events[5].stream, "b");
    EXPECT_EQ(events[5].stream_seq, 3U);
    EXPECT_EQ(events[7].stream, "a");
    EXPECT_EQ(events[7].stream_seq, 4U);
}

TEST_F(EventLog, RetriedAppendWithSameKeyReturnsFirstSeq) {
    store::Appended first;
    {
        auto batch = m_store.begin();
        batch.append(draft("s"));
        first = batch.append(draft("s", "alice", "key-1"));
        batch.commit();
    }
    auto batch = m_store.begin();
    const auto retried = batch.append(draft("s", "alice", "key-1"));
    EXPECT_TRUE(retried.duplicate);
    EXPECT_EQ(retried.seq, first.seq);
    EXPECT_EQ(retried.stream_seq, first.stream_seq);
    EXPECT_EQ(retried.ts_us, first.ts_us);
    EXPECT_TRUE(batch.events().empty());
    batch.commit();

    EXPECT_EQ(m_store.last_seq(), 2U);
    EXPECT_EQ(m_store.stats().event_count, 2);
    // The next real append takes the next seq: the duplicate used none.
    auto after = m_store.begin();
    EXPECT_EQ(after.append(draft("s")).seq, 3U);
}

TEST_F(EventLog, SameKeyFromAnotherProducerAppends) {
    auto batch = m_store.begin();
    const auto a = batch.append(draft("s", "alice", "shared"));
    const auto b = batch.append(draft("s", "bob", "shared"));
    batch.commit();
    EXPECT_FALSE(b.duplicate);
    EXPECT_EQ(a.seq, 1U);
    EXPECT_EQ(b.seq, 2U);
    EXPECT_EQ(m_store.stats().event_count, 2);
}

TEST_F(EventLog, RetriedAppendWithinOneBatchReturnsFirstSeq) {
    auto batch = m_store.begin();
    const auto first = batch.append(draft("s", "alice", "k"));
    batch.append(draft("other"));
    const auto retried = batch.append(draft("s", "alice", "k"));
    EXPECT_TRUE(retried.duplicate);
    EXPECT_EQ(retried.seq, first.seq);
    EXPECT_EQ(retried.stream_seq, first.stream_seq);
    EXPECT_EQ(batch.events().size(), 2U);

    const auto found = batch.find_idempotent("alice", "k");
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->seq, first.seq);
    EXPECT_FALSE(batch.find_idempotent("bob", "k").has_value());
    EXPECT_FALSE(batch.find_idempotent("alice", "other-key").has_value());
    batch.commit();
    EXPECT_EQ(seqs_of(m_store.read_range(0, 10)), (std::vector<Seq>{1, 2}));
}

TEST_F(EventLog, AppendsWithoutKeyAreNeverDeduplicated) {
    auto batch = m_store.begin();
    const auto a = batch.append(draft("s", "alice"));
    const auto b = batch.append(draft("s", "alice"));
    batch.commit();
    EXPECT_FALSE(b.duplicate);
    EXPECT_NE(a.seq, b.seq);
}

TEST_F(EventLog, ReadRangeReturnsEventsAfterSeqUpToLimit) {
    {
        auto batch = m_store.begin();
        for (int i = 0; i < 10; ++i) batch.append(draft("s"));
        batch.commit();
    }
    EXPECT_EQ(seqs_of(m_store.read_range(3, 4)), (std::vector<Seq>{4, 5, 6, 7}));
    EXPECT_EQ(seqs_of(m_store.read_range(8, 100)), (std::vector<Seq>{9, 10}));
    EXPECT_TRUE(m_store.read_range(10, 100).empty());
    EXPECT_TRUE(m_store.read_range(0, 0).empty());
}

TEST_F(EventLog, CommittedEventReadsBackFieldForField) {
    const std::string payload("\x82\xa1k\x00\xa1v\xc4\x02\x00\xff", 10);  // binary, with NUL bytes
    store::Appended appended;
    {
        auto batch = m_store.begin();
        batch.append(draft("first"));
        appended = batch.append(EventDraft{"ch/x", k_test_type, "alice", "idem", payload});
        batch.commit();
    }
    const auto events = m_store.read_range(1, 10);
    ASSERT_EQ(events.size(), 1U);
    const auto& e = events[0];
    EXPECT_EQ(e.seq, 2U);
    EXPECT_EQ(e.stream_seq, 1U);
    EXPECT_EQ(e.ts_us, appended.ts_us);
    EXPECT_EQ(e.stream, "ch/x");
    EXPECT_EQ(e.type, k_test_type);
    EXPECT_EQ(e.producer, "alice");
    EXPECT_EQ(e.idem_key, std::optional<std::string>("idem"));
    EXPECT_EQ(e.payload, payload);
    EXPECT_FALSE(m_store.read_range(0, 1)[0].idem_key.has_value());
}

TEST_F(EventLog, BatchEventsListTheAppendsInOrder) {
    auto batch = m_store.begin();
    batch.append(draft("a", "alice"));
    batch.append(draft("b", "bob"));
    ASSERT_EQ(batch.events().size(), 2U);
    EXPECT_EQ(batch.events()[0].seq, 1U);
    EXPECT_EQ(batch.events()[0].producer, "alice");
    EXPECT_EQ(batch.events()[1].seq, 2U);
    EXPECT_EQ(batch.events()[1].stream, "b");
}

TEST_F(EventLog, DestroyedBatchWithoutCommitLeavesNothing) {
    {
        auto batch = m_store.begin();
        batch.append(draft("s", "alice", "k"));
        batch.append(channel_created("general"));
        batch.append(published("alice", "general", packed_body("hi")));
    }
    EXPECT_EQ(m_store.last_seq(), 0U);
    EXPECT_TRUE(m_store.read_range(0, 100).empty());
    const auto stats = m_store.stats();
    EXPECT_EQ(stats.event_count, 0);
    EXPECT_EQ(stats.channel_count, 0);
    EXPECT_EQ(stats.message_count, 0);
    EXPECT_EQ(count_rows(m_store, "SELECT COUNT(*) FROM streams"), 0);
    EXPECT_EQ(projection_position(m_store), 0);

    // The idempotency key was rolled back too: using it again appends.
    auto batch = m_store.begin();
    EXPECT_FALSE(batch.append(draft("s", "alice", "k")).duplicate);
}

TEST_F(EventLog, BatchAfterRollbackReusesTheSeqsWithoutGap) {
    {
        auto batch = m_store.begin();
        batch.append(draft("a"));
        batch.append(draft("a"));
        batch.commit();
    }
    {
        auto batch = m_store.begin();
        EXPECT_EQ(batch.append(draft("a")).seq, 3U);
        batch.append(draft("a"));
        batch.append(draft("new"));
    }  // rolled back
    auto batch = m_store.begin();
    const auto a = batch.append(draft("a"));
    const auto fresh = batch.append(draft("new"));
    batch.commit();
    EXPECT_EQ(a.seq, 3U);
    EXPECT_EQ(a.stream_seq, 3U);
    EXPECT_EQ(fresh.seq, 4U);
    EXPECT_EQ(fresh.stream_seq, 1U);
    EXPECT_EQ(seqs_of(m_store.read_range(0, 100)), (std::vector<Seq>{1, 2, 3, 4}));
}

TEST_F(EventLog, OnlyOneBatchMayBeOpenAtATime) {
    auto batch = m_store.begin();
    EXPECT_THROW(m_store.begin(), std::logic_error);
    batch.commit();
    EXPECT_NO_THROW(m_store.begin());
}

TEST_F(EventLog, ClosedBatchRefusesAppendAndCommit) {
    auto batch = m_store.begin();
    batch.append(draft("s"));
    batch.commit();
    EXPECT_THROW(batch.append(draft("s")), std::logic_error);
    EXPECT_THROW(batch.commit(), std::logic_error);
    EXPECT_EQ(m_store.stats().event_count, 1);
}

TEST_F(EventLog, MovedBatchCommitsAndTheSourceRollsNothingBack) {
    auto source = m_store.begin();
    source.append(draft("s"));
    {
        store::Batch moved(std::move(source));
        moved.append(draft("s"));
        moved.commit();
    }
    EXPECT_THROW(source.commit(), std::logic_error);  // NOLINT(bugprone-use-after-move): the point of the test
    EXPECT_EQ(m_store.last_seq(), 2U);
    EXPECT_EQ(m_store.stats().event_count, 2);
}

TEST_F(EventLog, BatchThatAppendsNothingCommitsWithoutChangingTheHead) {
    {
        auto batch = m_store.begin();
        batch.append(draft("s"));
        batch.commit();
    }
    auto empty = m_store.begin();
    empty.commit();
    EXPECT_EQ(m_store.last_seq(), 1U);
    EXPECT_EQ(projection_position(m_store), 1);
}

TEST_F(EventLog, AppendThatFailsRollsBackTheWholeBatch) {
    // A channel.created payload that is not a ChannelCreated map: the
    // projection cannot apply it, so the append throws.
    {
        auto batch = m_store.begin();
        batch.append(draft("s"));
        EXPECT_THROW(batch.append(EventDraft{std::string(store::stream::k_channels),
                                             store::EventType::channel_created, "alice", std::nullopt,
                                             "not msgpack \xc1"}),
                     std::runtime_error);
        // Committing what is left would record an event the head does not
        // count; the batch is closed instead.
        EXPECT_THROW(batch.commit(), std::logic_error);
    }
    EXPECT_EQ(m_store.stats().event_count, 0);
    auto batch = m_store.begin();
    EXPECT_EQ(batch.append(draft("s")).seq, 1U);
    batch.commit();
    EXPECT_EQ(seqs_of(m_store.read_range(0, 10)), (std::vector<Seq>{1}));
}

TEST_F(EventLog, FailedStatementDoesNotBreakLaterBatches) {
    // A trigger makes the event insert itself fail for one stream.
    m_store.database().exec(
        "CREATE TEMP TRIGGER refuse_boom BEFORE INSERT ON main.events WHEN NEW.stream = 'boom'"
        " BEGIN SELECT RAISE(ABORT, 'boom refused'); END");
    {
        auto batch = m_store.begin();
        EXPECT_THROW(batch.append(draft("boom", "alice")), SQLite::Exception);
    }
    // The same prepared statements serve the next batch.
    auto batch = m_store.begin();
    EXPECT_EQ(batch.append(draft("s")).seq, 1U);
    EXPECT_EQ(batch.append(channel_created("general")).seq, 2U);
    batch.commit();
    EXPECT_EQ(m_store.stats().event_count, 2);
}

TEST_F(EventLog, FailedProjectionStatementDoesNotBreakLaterBatches) {
    // A second channel of the same name breaks bot_channels' primary key.
    {
        auto batch = m_store.begin();
        batch.append(channel_created("general"));
        EXPECT_THROW(batch.append(channel_created("general")), SQLite::Exception);
    }
    auto batch = m_store.begin();
    EXPECT_EQ(batch.append(channel_created("general")).seq, 1U);
    EXPECT_EQ(batch.append(published("alice", "general", packed_body("x"))).seq, 2U);
    batch.commit();
    EXPECT_EQ(m_store.stats().message_count, 1);
    EXPECT_EQ(m_store.stats().channel_count, 1);
}

// ---- reopening a file

TEST(StoreFile, CheckpointsRunInTheBackgroundOnceTheWalOutgrowsTheSoftLimit) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    SqliteStore s{{path, Durability::full}};
    const auto db_bytes = [&] { return std::filesystem::file_size(path); };
    const auto before = db_bytes();
    // ~8 MB of events: past the soft limit (1000 frames of 4 KiB), short of
    // the hard one, so only the background checkpointer copies them.
    const std::string payload(2000, 'x');
    for (int b = 0; b < 40; ++b) {
        auto batch = s.begin();
        for (int i = 0; i < 100; ++i) batch.append(draft("s", "bot", std::nullopt, payload));
        batch.commit();
    }
    ASSERT_TRUE(s.wait_for_checkpoints(1, std::chrono::steady_clock::now() + std::chrono::seconds(20)))
        << "no background checkpoint within 20 s";
    // The checkpoint copied the log into the database file itself.
    EXPECT_GT(db_bytes(), before + 4'000'000) << "database file still " << db_bytes() << " bytes";
    EXPECT_EQ(s.last_seq(), 4000U);
}

TEST(StoreFile, SeqIsNeverReusedAcrossReopen) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    {
        SqliteStore s{{path, Durability::full}};
        auto batch = s.begin();
        batch.append(draft("a"));
        batch.append(draft("a"));
        batch.append(draft("b"));
        batch.commit();
        auto lost = s.begin();
        lost.append(draft("a"));  // rolled back
    }
    SqliteStore s{{path, Durability::full}};
    EXPECT_EQ(s.last_seq(), 3U);
    auto batch = s.begin();
    const auto a = batch.append(draft("a"));
    const auto b = batch.append(draft("b"));
    batch.commit();
    EXPECT_EQ(a.seq, 4U);
    EXPECT_EQ(a.stream_seq, 3U);
    EXPECT_EQ(b.seq, 5U);
    EXPECT_EQ(b.stream_seq, 2U);
    EXPECT_EQ(seqs_of(s.read_range(0, 100)), (std::vector<Seq>{1, 2, 3, 4, 5}));
}

TEST(StoreFile, SeqIsNeverReusedEvenWhenTheNewestEventsAreGone) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    {
        SqliteStore s{{path, Durability::normal}};
        auto batch = s.begin();
        batch.append(published("alice", "general", packed_body("a")));
        batch.append(published("alice", "general", packed_body("b")));
        batch.commit();
        // Retention deletes the channel's every message (and appends its
        // stream.trimmed event, seq 3) ...
        auto trim = s.begin();
        s.trim_messages(trim, "ch/general", 2, 2);
        trim.commit();
        // ... and then the rest of the log is gone too.
        s.database().exec("DELETE FROM events");
    }
    SqliteStore s{{path, Durability::normal}};
    auto batch = s.begin();
    const auto next = batch.append(published("alice", "general", packed_body("c")));
    EXPECT_EQ(next.seq, 4U);
    EXPECT_EQ(next.stream_seq, 3U);
    batch.commit();
}

TEST(StoreFile, IdempotencyKeySurvivesReopen) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    {
        SqliteStore s{{path, Durability::full}};
        auto batch = s.begin();
        batch.append(draft("s", "alice", "k"));
        batch.commit();
    }
    SqliteStore s{{path, Durability::full}};
    auto batch = s.begin();
    const auto retried = batch.append(draft("s", "alice", "k"));
    EXPECT_TRUE(retried.duplicate);
    EXPECT_EQ(retried.seq, 1U);
}

TEST(StoreFile, RefusesAnEventsTableAheadOfTheHead) {
    TempDir dir;
    const auto path = dir.file("botbus.db");
    {
        SqliteStore s{{path, Durability::full}};
        s.database().exec(
            "INSERT INTO events (seq, ts_us, stream, stream_seq, type, producer, idem_key, payload)"
            " VALUES (7, 1, 's', 1, 't', 'p', NULL, x'80')");
    }
    try {
        SqliteStore s{{path, Durability::full}};
        FAIL() << "opened a store whose events run ahead of log_head";
    } catch (const store::StartupError& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("ahead"), std::string::npos) << e.what();
    }
}

// ---- projections

TEST_F(Projections, ChannelCreatedAddsItsRowInTheSameTransaction) {
    auto batch = m_store.begin();
    const auto appended = batch.append(channel_created("general", "all hands", "alice"));
    // Visible inside the batch, before commit.
    const auto inside = m_store.messages().channel("general");
    ASSERT_TRUE(inside.has_value());
    batch.commit();

    const auto row = m_store.messages().channel("general");
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->name, "general");
    EXPECT_EQ(row->description, std::optional<std::string>("all hands"));
    EXPECT_EQ(row->created_by, "alice");
    EXPECT_EQ(row->created_at, appended.ts_us);
    EXPECT_EQ(row->subscriber_count, 0);
    EXPECT_EQ(row->last_channel_seq, 0U);
    EXPECT_EQ(count_rows(m_store, "SELECT last_seq FROM bot_channels WHERE name = 'general'"),
              static_cast<std::int64_t>(appended.seq));
    EXPECT_EQ(projection_position(m_store), 1);
}

TEST_F(Projections, ChannelExistsForgetsDeletedChannelsAndRolledBackOnes) {
    {
        auto batch = m_store.begin();
        batch.append(channel_created("kept"));
        batch.commit();
    }
    EXPECT_TRUE(m_store.messages().channel_exists("kept"));  // now remembered
    {
        auto batch = m_store.begin();
        batch.append(channel_created("lost"));
        EXPECT_TRUE(m_store.messages().channel_exists("lost"));
    }  // rolled back
    EXPECT_FALSE(m_store.messages().channel_exists("lost"));
    {
        auto batch = m_store.begin();
        batch.append(EventDraft{std::string(store::stream::k_channels), store::EventType::channel_deleted,
                                "alice", std::nullopt, store::encode_payload(store::ChannelDeleted{"kept"})});
        EXPECT_FALSE(m_store.messages().channel_exists("kept"));
        batch.commit();
    }
    EXPECT_FALSE(m_store.messages().channel_exists("kept"));
}

TEST_F(Projections, ChannelWithoutDescriptionHasNone) {
    auto batch = m_store.begin();
    batch.append(channel_created("quiet"));
    batch.commit();
    const auto row = m_store.messages().channel("quiet");
    ASSERT_TRUE(row.has_value());
    EXPECT_FALSE(row->description.has_value());
    EXPECT_FALSE(m_store.messages().channel("loud").has_value());
}

TEST_F(Projections, ChannelsAreListedByName) {
    auto batch = m_store.begin();
    batch.append(channel_created("zeta"));
    batch.append(channel_created("alpha"));
    batch.append(channel_created("mid"));
    batch.commit();
    std::vector<std::string> names;
    for (const auto& c : m_store.messages().channels("", {})) names.push_back(c.name);
    EXPECT_EQ(names, (std::vector<std::string>{"alpha", "mid", "zeta"}));
}

TEST_F(Projections, RolledBackBatchLeavesNoProjectionRows) {
    {
        auto batch = m_store.begin();
        batch.append(channel_created("general"));
        batch.append(subscription(store::EventType::subscription_added, "bob", "general"));
        EXPECT_TRUE(m_store.messages().is_subscribed("bob", "general"));
    }
    EXPECT_FALSE(m_store.messages().channel("general").has_value());
    EXPECT_FALSE(m_store.messages().is_subscribed("bob", "general"));
}

TEST_F(Projections, SubscriptionAddedAndRemovedUpdateTheSubscriptions) {
    {
        auto batch = m_store.begin();
        batch.append(channel_created("general"));
        batch.append(channel_created("random"));
        batch.append(subscription(store::EventType::subscription_added, "carol", "general"));
        batch.append(subscription(store::EventType::subscription_added, "bob", "general"));
        batch.append(subscription(store::EventType::subscription_added, "bob", "random"));
        batch.commit();
    }
    auto& q = m_store.messages();
    EXPECT_TRUE(q.is_subscribed("bob", "general"));
    EXPECT_FALSE(q.is_subscribed("alice", "general"));
    EXPECT_EQ(q.subscribers("general", "", {}), (std::vector<std::string>{"bob", "carol"}));
    EXPECT_EQ(q.subscriptions("bob", "", {}), (std::vector<std::string>{"general", "random"}));
    EXPECT_EQ(q.channel("general")->subscriber_count, 2);
    EXPECT_EQ(projection_position(m_store), 5);

    {
        auto batch = m_store.begin();
        batch.append(subscription(store::EventType::subscription_removed, "bob", "general"));
        batch.commit();
    }
    EXPECT_FALSE(q.is_subscribed("bob", "general"));
    EXPECT_EQ(q.subscribers("general", "", {}), (std::vector<std::string>{"carol"}));
    EXPECT_EQ(q.subscriptions("bob", "", {}), (std::vector<std::string>{"random"}));
    EXPECT_EQ(projection_position(m_store), 6);
}

TEST_F(Projections, ChannelDeletedRemovesTheChannelAndItsSubscriptions) {
    auto batch = m_store.begin();
    batch.append(channel_created("general"));
    batch.append(subscription(store::EventType::subscription_added, "bob", "general"));
    batch.append(EventDraft{std::string(store::stream::k_channels), store::EventType::channel_deleted,
                            "alice", std::nullopt, store::encode_payload(store::ChannelDeleted{"general"})});
    batch.commit();
    EXPECT_FALSE(m_store.messages().channel("general").has_value());
    EXPECT_TRUE(m_store.messages().subscribers("general", "", {}).empty());
}

TEST_F(Projections, MessagePublishedIsIndexedUnderItsChannel) {
    const auto body = packed_body("hello");
    store::Appended first, reply;
    {
        auto batch = m_store.begin();
        batch.append(channel_created("general"));
        first = batch.append(published("alice", "general", body));
        reply = batch.append(published("bob", "general", packed_body("hi"), first.seq));
        batch.commit();
    }
    const auto rows = channel_history("general");
    ASSERT_EQ(rows.size(), 2U);
    const auto& m = rows[0];
    EXPECT_EQ(m.seq, first.seq);
    EXPECT_EQ(m.stream_seq, 1U);
    EXPECT_EQ(m.from, "alice");
    EXPECT_EQ(m.channel, std::optional<std::string>("general"));
    EXPECT_FALSE(m.to.has_value());
    EXPECT_EQ(m.type, "text");
    EXPECT_EQ(m.body, body);
    EXPECT_FALSE(m.reply_to.has_value());
    EXPECT_EQ(m.created_at, first.ts_us);
    EXPECT_EQ(rows[1].stream_seq, 2U);
    EXPECT_EQ(rows[1].reply_to, std::optional<Seq>(first.seq));

    const auto by_seq = m_store.messages().message(reply.seq);
    ASSERT_TRUE(by_seq.has_value());
    EXPECT_EQ(by_seq->from, "bob");
    EXPECT_FALSE(m_store.messages().message(1).has_value());  // channel.created is no message
    EXPECT_EQ(m_store.messages().channel("general")->last_channel_seq, 2U);
    EXPECT_EQ(projection_position(m_store), 3);
}

TEST_F(Projections, MessageSentIsIndexedUnderTheConversationAndInbox) {
    const auto body = packed_body("psst");
    {
        auto batch = m_store.begin();
        batch.append(sent("alice", "bob", body));
        batch.append(sent("bob", "alice", packed_body("what")));
        batch.append(sent("alice", "carol", packed_body("other")));
        batch.append(sent("alice", "bob", packed_body("again")));
        batch.commit();
    }
    store::HistoryQuery q;
    q.scope = store::HistoryQuery::Scope::conversation;
    q.bot_a = "bob";
    q.bot_b = "alice";
    const auto conversation = m_store.messages().history(q);
    EXPECT_EQ(seqs_of(conversation), (std::vector<Seq>{1, 2, 4}));
    ASSERT_EQ(conversation.size(), 3U);
    EXPECT_EQ(conversation[0].from, "alice");
    EXPECT_EQ(conversation[0].to, std::optional<std::string>("bob"));
    EXPECT_FALSE(conversation[0].channel.has_value());
    EXPECT_EQ(conversation[0].type, "note");
    EXPECT_EQ(conversation[0].body, body);
    EXPECT_EQ(conversation[0].stream_seq, 1U);  // bob's mailbox seq
    EXPECT_EQ(conversation[1].stream_seq, 1U);  // alice's mailbox seq
    EXPECT_EQ(conversation[2].stream_seq, 2U);

    q.scope = store::HistoryQuery::Scope::inbox;
    q.bot_a = "bob";
    EXPECT_EQ(seqs_of(m_store.messages().history(q)), (std::vector<Seq>{1, 4}));
    q.bot_a = "carol";
    EXPECT_EQ(seqs_of(m_store.messages().history(q)), (std::vector<Seq>{3}));
}

TEST_F(Projections, ConversationPagesMergeBothDirectionsInSeqOrder) {
    {
        auto batch = m_store.begin();
        // seqs 1..8, alternating directions, with other traffic in between.
        batch.append(sent("alice", "bob", packed_body("1")));
        batch.append(sent("bob", "alice", packed_body("2")));
        batch.append(sent("carol", "bob", packed_body("3")));
        batch.append(sent("bob", "alice", packed_body("4")));
        batch.append(sent("alice", "bob", packed_body("5")));
        batch.append(sent("alice", "alice", packed_body("6")));
        batch.append(sent("bob", "alice", packed_body("7")));
        batch.append(sent("alice", "bob", packed_body("8")));
        batch.commit();
    }
    store::HistoryQuery q;
    q.scope = store::HistoryQuery::Scope::conversation;
    q.bot_a = "alice";
    q.bot_b = "bob";
    q.limit = 3;
    EXPECT_EQ(seqs_of(m_store.messages().history(q)), (std::vector<Seq>{1, 2, 4}));
    q.after = 4;
    EXPECT_EQ(seqs_of(m_store.messages().history(q)), (std::vector<Seq>{5, 7, 8}));
    q.after.reset();
    q.newest_first = true;
    EXPECT_EQ(seqs_of(m_store.messages().history(q)), (std::vector<Seq>{8, 7, 5}));
    q.before = 5;
    EXPECT_EQ(seqs_of(m_store.messages().history(q)), (std::vector<Seq>{4, 2, 1}));
    // A conversation with oneself lists each message once.
    store::HistoryQuery self;
    self.scope = store::HistoryQuery::Scope::conversation;
    self.bot_a = self.bot_b = "alice";
    EXPECT_EQ(seqs_of(m_store.messages().history(self)), (std::vector<Seq>{6}));
}

TEST_F(Projections, MailboxAckedRaisesTheAckedSeqAndNeverLowersIt) {
    EXPECT_EQ(m_store.messages().mailbox_acked("bob"), 0U);
    {
        auto batch = m_store.begin();
        batch.append(sent("alice", "bob", packed_body("1")));
        batch.append(sent("alice", "bob", packed_body("2")));
        batch.append(acked("bob", 2));
        batch.commit();
    }
    EXPECT_EQ(m_store.messages().mailbox_acked("bob"), 2U);
    EXPECT_EQ(count_rows(m_store, "SELECT last_seq FROM bot_mailboxes WHERE bot_id = 'bob'"), 3);
    {
        auto batch = m_store.begin();
        batch.append(acked("bob", 1));
        batch.commit();
    }
    EXPECT_EQ(m_store.messages().mailbox_acked("bob"), 2U);
    EXPECT_EQ(m_store.messages().mailbox_acked("alice"), 0U);
    EXPECT_EQ(projection_position(m_store), 4);
}

TEST_F(Projections, ALoggedEventOfATypeThisBuildDoesNotKnowIsRefusedWhenRead) {
    {
        auto batch = m_store.begin();
        batch.append(draft("s"));
        batch.commit();
    }
    // As a newer botbusd would have logged it: a replay that skipped it would
    // not give the projections that newer daemon built.
    m_store.database().exec(
        "INSERT INTO events (seq, ts_us, stream, stream_seq, type, producer, payload)"
        " VALUES (2, 0, 'future/x', 1, 'future.thing', 'alice', x'80')");
    EXPECT_EQ(m_store.read_range(0, 1).size(), 1U) << "the events before it still read";
    try {
        m_store.read_range(0, 10);
        FAIL() << "read an event of an unknown type";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("event seq 2 has type 'future.thing'"), std::string::npos) << e.what();
    }
}

TEST_F(Projections, DuplicateAppendDoesNotMoveTheProjectionPosition) {
    {
        auto batch = m_store.begin();
        batch.append(draft("s", "alice", "k"));
        batch.commit();
    }
    auto batch = m_store.begin();
    EXPECT_TRUE(batch.append(draft("s", "alice", "k")).duplicate);
    batch.commit();
    EXPECT_EQ(projection_position(m_store), 1);
}

TEST_F(Projections, StatsCountTheProjectedRows) {
    auto batch = m_store.begin();
    batch.append(channel_created("a"));
    batch.append(channel_created("b"));
    batch.append(subscription(store::EventType::subscription_added, "bob", "a"));
    batch.append(published("alice", "a", packed_body("x")));
    batch.append(sent("alice", "bob", packed_body("y")));
    batch.commit();
    const auto stats = m_store.stats();
    EXPECT_EQ(stats.last_seq, 5U);
    EXPECT_EQ(stats.event_count, 5);
    EXPECT_EQ(stats.channel_count, 2);
    EXPECT_EQ(stats.subscription_count, 1);
    EXPECT_EQ(stats.message_count, 2);
}

// ---- history queries

class History : public Projections {
protected:
    void SetUp() override {
        auto batch = m_store.begin();
        batch.append(channel_created("general"));                       // seq 1
        for (int i = 0; i < 5; ++i) {                                   // seqs 2, 4, 6, 8, 10
            batch.append(published("alice", "general", packed_body(std::to_string(i))));
            batch.append(published("alice", "other", packed_body("noise")));  // seqs 3, 5, 7, 9, 11
        }
        batch.commit();
    }
    std::vector<Seq> query(std::optional<Seq> after, std::optional<Seq> before, std::size_t limit, bool newest_first) {
        store::HistoryQuery q;
        q.scope = store::HistoryQuery::Scope::channel;
        q.channel = "general";
        q.after = after;
        q.before = before;
        q.limit = limit;
        q.newest_first = newest_first;
        return seqs_of(m_store.messages().history(q));
    }
};

TEST_F(History, AscendingListsOldestFirst) {
    EXPECT_EQ(query(std::nullopt, std::nullopt, 100, false), (std::vector<Seq>{2, 4, 6, 8, 10}));
}

TEST_F(History, DescendingListsNewestFirst) {
    EXPECT_EQ(query(std::nullopt, std::nullopt, 100, true), (std::vector<Seq>{10, 8, 6, 4, 2}));
}

TEST_F(History, AfterAndBeforeAreExclusiveBounds) {
    EXPECT_EQ(query(4, std::nullopt, 100, false), (std::vector<Seq>{6, 8, 10}));
    EXPECT_EQ(query(std::nullopt, 6, 100, false), (std::vector<Seq>{2, 4}));
    EXPECT_EQ(query(2, 10, 100, false), (std::vector<Seq>{4, 6, 8}));
    EXPECT_EQ(query(2, 10, 100, true), (std::vector<Seq>{8, 6, 4}));
    EXPECT_TRUE(query(10, std::nullopt, 100, false).empty());
    EXPECT_TRUE(query(std::nullopt, 2, 100, false).empty());
}

TEST_F(History, LimitKeepsTheFirstRowsInTheChosenOrder) {
    EXPECT_EQ(query(std::nullopt, std::nullopt, 2, false), (std::vector<Seq>{2, 4}));
    EXPECT_EQ(query(std::nullopt, std::nullopt, 2, true), (std::vector<Seq>{10, 8}));
    EXPECT_EQ(query(4, std::nullopt, 2, false), (std::vector<Seq>{6, 8}));
    EXPECT_EQ(query(std::nullopt, 8, 2, true), (std::vector<Seq>{6, 4}));
}

TEST_F(History, BoundsBeyondTheSignedRangeStillMeanWhatTheySay) {
    constexpr auto k_huge = std::numeric_limits<Seq>::max();
    EXPECT_TRUE(query(k_huge, std::nullopt, 100, false).empty());
    EXPECT_EQ(query(std::nullopt, k_huge, 100, false), (std::vector<Seq>{2, 4, 6, 8, 10}));
}

TEST_F(History, UnknownChannelHasNoHistory) {
    store::HistoryQuery q;
    q.channel = "nowhere";
    EXPECT_TRUE(m_store.messages().history(q).empty());
}

}  // namespace
