// The PostgreSQL store against a real server (scripts/postgres.sh; each test
// in a schema of its own): the log and the projections it keeps, the
// migrations and their checksums, and several stores sharing one log, as
// several botbusd nodes do — seqs gap-free and in commit order while they
// append at once, idempotency keys unique across them.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "postgres_test_server.hpp"
#include "store/errors.hpp"
#include "store/payloads.hpp"
#include "store/postgresql/postgres_store.hpp"

namespace store = botbus::store;
using store::EventDraft;
using store::PostgresStore;
using store::Seq;
using botbus::testing::exec_sql;

namespace {

EventDraft channel_created(const std::string& name) {
    return EventDraft{std::string(store::stream::k_channels), store::EventType::channel_created, "alice",
                      std::nullopt, store::encode_payload(store::ChannelCreated{name, std::nullopt})};
}

EventDraft published(const std::string& channel, const std::string& text, std::string producer = "alice",
                     std::optional<std::string> key = std::nullopt) {
    msgpack::sbuffer body;
    msgpack::pack(body, text);
    store::MessagePayload p;
    p.channel = channel;
    p.type = "text";
    p.body = std::string_view(body.data(), body.size());
    return EventDraft{store::stream::channel(channel), store::EventType::message_published, std::move(producer),
                      std::move(key), store::encode_message_payload(p)};
}

class PostgresStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        BOTBUS_NEEDS_POSTGRES();
        m_conninfo = botbus::testing::fresh_postgres_schema();
    }
    std::string m_conninfo;
};

TEST_F(PostgresStoreTest, AppendsCommitAndAreReadBackWithTheirProjections) {
    PostgresStore s(m_conninfo);
    {
        auto batch = s.begin();
        batch.append(channel_created("lobby"));
        batch.append(published("lobby", "one"));
        batch.append(published("lobby", "two"));
        batch.commit();
    }
    EXPECT_EQ(s.last_seq(), 3U);
    const auto events = s.read_range(0, 10);
    ASSERT_EQ(events.size(), 3U);
    EXPECT_EQ(events[0].type, store::EventType::channel_created);
    EXPECT_EQ(events[2].stream, "ch/lobby");
    EXPECT_EQ(events[2].stream_seq, 2U);
    EXPECT_EQ(events[2].payload, published("lobby", "two").payload);  // bytes survive the round trip
    ASSERT_TRUE(s.messages().channel_exists("lobby"));
    const auto channel = s.messages().channel("lobby");
    ASSERT_TRUE(channel);
    EXPECT_EQ(channel->last_channel_seq, 2U);
    store::HistoryQuery query;
    query.channel = "lobby";
    const auto history = s.messages().history(query);
    ASSERT_EQ(history.size(), 2U);
    EXPECT_EQ(history[1].seq, 3U);
    const auto stats = s.stats();
    EXPECT_EQ(stats.event_count, 3);
    EXPECT_EQ(stats.message_count, 2);
    EXPECT_EQ(stats.channel_count, 1);
}

TEST_F(PostgresStoreTest, ARolledBackBatchLeavesNothingAndTheNextTakesItsSeqs) {
    PostgresStore s(m_conninfo);
    {
        auto batch = s.begin();
        batch.append(channel_created("lobby"));
        // destroyed uncommitted: rolled back
    }
    EXPECT_FALSE(s.messages().channel_exists("lobby"));
    auto batch = s.begin();
    EXPECT_EQ(batch.append(channel_created("hall")).seq, 1U);
    batch.commit();
    EXPECT_EQ(s.read_range(0, 10).size(), 1U);
}

TEST_F(PostgresStoreTest, ARequestRolledBackToItsSavepointLeavesTheOthersAndGapFreeSeqs) {
    PostgresStore s(m_conninfo);
    auto batch = s.begin();
    batch.savepoint();
    batch.append(channel_created("lobby"));
    batch.release_savepoint();
    batch.savepoint();
    batch.append(channel_created("hall"));
    batch.append(published("hall", "gone"));
    ASSERT_TRUE(batch.rollback_to_savepoint());
    batch.savepoint();
    const auto kept = batch.append(published("lobby", "kept"));
    batch.release_savepoint();
    batch.commit();
    EXPECT_EQ(kept.seq, 2U);
    EXPECT_EQ(kept.stream_seq, 1U);
    EXPECT_FALSE(s.messages().channel_exists("hall"));
    const auto events = s.read_range(0, 10);
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(events[1].seq, 2U);
}

// Appends go out without waiting (the connection's pipeline), so a write
// that fails is reported by a later request's statement. That request cannot
// tell whose it was: the whole batch fails, and nothing of it is kept.
TEST_F(PostgresStoreTest, AnAppendThatFailsOnTheServerFailsItsWholeBatchWhicheverRequestLearnsOfIt) {
    PostgresStore s(m_conninfo);
    {
        auto batch = s.begin();
        batch.append(channel_created("lobby"));
        batch.commit();
    }
    // A trigger refuses one producer's events on the server, as a full disk
    // or a constraint would.
    exec_sql(m_conninfo,
             "CREATE FUNCTION refuse_mallory() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
             " IF NEW.producer = 'mallory' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;"
             " CREATE TRIGGER refuse_mallory BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse_mallory()");
    auto batch = s.begin();
    batch.savepoint();
    batch.append(published("lobby", "refused", "mallory"));  // sent; the failure is not known yet
    batch.release_savepoint();
    batch.savepoint();
    // This request reads (an idempotency key): the wait reports mallory's failure.
    EXPECT_THROW(batch.append(published("lobby", "fine", "alice", "k1")), std::exception);
    EXPECT_FALSE(batch.rollback_to_savepoint());
    EXPECT_THROW(batch.commit(), std::exception);
    EXPECT_EQ(s.last_seq(), 1U);
    EXPECT_EQ(s.read_range(0, 10).size(), 1U);

    // Nor does a failure nobody waited for commit: the commit finds it.
    {
        auto quiet = s.begin();
        quiet.append(published("lobby", "refused", "mallory"));
        quiet.append(published("lobby", "fine"));
        EXPECT_THROW(quiet.commit(), std::exception);
    }
    EXPECT_EQ(s.read_range(0, 10).size(), 1U);
    // And the next batch starts clean.
    auto next = s.begin();
    EXPECT_EQ(next.append(published("lobby", "after")).seq, 2U);
    next.commit();
    EXPECT_EQ(s.read_range(0, 10).size(), 2U);
}

TEST_F(PostgresStoreTest, AnIdempotencyKeyIsOnePerProducerAcrossNodes) {
    PostgresStore a(m_conninfo);
    PostgresStore b(m_conninfo);
    {
        auto batch = a.begin();
        batch.append(channel_created("lobby"));
        batch.append(published("lobby", "once", "carol", "k1"));
        batch.commit();
    }
    auto batch = b.begin();
    const auto again = batch.append(published("lobby", "twice", "carol", "k1"));
    const auto other = batch.append(published("lobby", "other producer", "dave", "k1"));
    batch.commit();
    EXPECT_TRUE(again.duplicate);
    EXPECT_EQ(again.seq, 2U);
    EXPECT_FALSE(other.duplicate);
    EXPECT_EQ(other.seq, 3U);
    EXPECT_EQ(other.stream_seq, 2U);  // b learned the stream's head from the log, not from memory
}

TEST_F(PostgresStoreTest, ThreeNodesAppendingAtOnceGetGapFreeSeqsInCommitOrder) {
    {
        PostgresStore setup(m_conninfo);
        auto batch = setup.begin();
        batch.append(channel_created("shared"));
        batch.commit();
    }
    constexpr int k_nodes = 3;
    constexpr int k_batches = 150;
    std::atomic<int> tail_errors{0};
    Seq tailed = 1;
    // A fourth node tails the log by seq while the others append: seq order
    // being commit order, it must never see a seq before all below it. It
    // reads until it has every row (or the deadline), not until the writers
    // stop: a read that began before the last commit may come back empty.
    std::thread tail([&] {
        PostgresStore reader(m_conninfo);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (tailed < 1 + k_nodes * k_batches * 2 && std::chrono::steady_clock::now() < deadline) {
            for (const auto& e : reader.read_range(tailed, 1000)) {
                if (e.seq != tailed + 1) tail_errors.fetch_add(1);
                tailed = e.seq;
            }
        }
    });
    std::vector<std::thread> nodes;
    std::vector<std::vector<Seq>> seen(k_nodes);
    for (int n = 0; n < k_nodes; ++n) {
        nodes.emplace_back([&, n] {
            PostgresStore node(m_conninfo);
            for (int i = 0; i < k_batches; ++i) {
                auto batch = node.begin();
                seen[static_cast<std::size_t>(n)].push_back(
                    batch.append(published("shared", "m", "node" + std::to_string(n))).seq);
                seen[static_cast<std::size_t>(n)].push_back(
                    batch.append(published("own" + std::to_string(n), "m", "node" + std::to_string(n))).seq);
                batch.commit();
            }
        });
    }
    for (auto& t : nodes) t.join();
    tail.join();
    EXPECT_EQ(tail_errors.load(), 0);
    EXPECT_EQ(tailed, static_cast<Seq>(1 + k_nodes * k_batches * 2));

    PostgresStore check(m_conninfo);
    const auto events = check.read_range(0, 10000);
    ASSERT_EQ(events.size(), static_cast<std::size_t>(1 + k_nodes * k_batches * 2));
    std::map<std::string, Seq> stream_heads;
    for (std::size_t i = 0; i < events.size(); ++i) {
        EXPECT_EQ(events[i].seq, i + 1);
        EXPECT_EQ(events[i].stream_seq, ++stream_heads[events[i].stream]) << events[i].stream;
    }
    EXPECT_EQ(stream_heads["ch/shared"], static_cast<Seq>(k_nodes * k_batches));
    for (const auto& node : seen) {
        for (std::size_t i = 1; i < node.size(); ++i) EXPECT_LT(node[i - 1], node[i]);
    }
    EXPECT_EQ(check.stats().event_count, static_cast<std::int64_t>(events.size()));
}

TEST_F(PostgresStoreTest, ARebuildIntoAScratchSchemaMatchesTheLiveProjectionsAndNamesAnEditedRow) {
    PostgresStore s(m_conninfo);
    {
        auto batch = s.begin();
        batch.append(channel_created("lobby"));
        batch.append(channel_created("hall"));
        batch.append(EventDraft{std::string(store::stream::k_channels), store::EventType::subscription_added, "bob",
                                std::nullopt, store::encode_payload(store::SubscriptionChanged{"bob", "lobby"})});
        for (int i = 0; i < 5; ++i) batch.append(published("lobby", "m" + std::to_string(i)));
        batch.commit();
    }
    const auto check = s.verify_projections();
    EXPECT_EQ(check.replayed, 8U);
    EXPECT_TRUE(check.differences.empty()) << check.differences.front();

    exec_sql(m_conninfo, "UPDATE bot_channels SET created_by = 'mallory' WHERE name = 'hall'");
    const auto edited = s.verify_projections();
    ASSERT_EQ(edited.differences.size(), 1U);
    EXPECT_NE(edited.differences[0].find("bot_channels"), std::string::npos) << edited.differences[0];
    EXPECT_NE(edited.differences[0].find("created_by: live 'mallory', rebuilt 'alice'"), std::string::npos)
        << edited.differences[0];
}

TEST_F(PostgresStoreTest, OneNodeLeadsAtATimeAndAnotherTakesOverWhenItsSessionEnds) {
    auto first = std::make_unique<PostgresStore>(m_conninfo);
    PostgresStore second(m_conninfo);
    EXPECT_TRUE(first->leads());
    EXPECT_TRUE(first->leads());  // still, and without stacking another hold
    EXPECT_FALSE(second.leads());
    first.reset();  // its session ends, and the lock with it
    // The server releases the lock when the backend notices the closed
    // connection, a moment after the client's PQfinish; the daemon re-checks
    // on its timers, so the test waits the same way, with a deadline.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool took_over = second.leads();
    while (!took_over && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        took_over = second.leads();
    }
    EXPECT_TRUE(took_over);
}

TEST_F(PostgresStoreTest, MigrationsAreRecordedOnceAndAnEditedOneStopsStartUp) {
    { PostgresStore first(m_conninfo); }
    { PostgresStore again(m_conninfo); }  // nothing left to apply
    exec_sql(m_conninfo, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1");
    try {
        PostgresStore refused(m_conninfo);
        FAIL() << "expected a StartupError";
    } catch (const store::StartupError& e) {
        EXPECT_NE(std::string(e.what()).find("0001_schema.sql changed after it was applied"), std::string::npos)
            << e.what();
    }
}

TEST(PostgresStoreStartup, AnUnreachableServerIsAStartupErrorThatSaysSo) {
    try {
        PostgresStore s("host=/nonexistent-botbus-socket-dir dbname=botbus connect_timeout=2");
        FAIL() << "expected a StartupError";
    } catch (const store::StartupError& e) {
        EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
    }
}

}  // namespace
