// Unit tests of retention (store::Trimmer) on a :memory: store: count and
// age limits, the default and a channel's own limits, mailboxes losing only
// settled messages, bounded steps, seqs never reused, idempotency keys kept
// while their event is, readers' floors moving past what is gone, workflow
// streams untouched, and a rebuild that agrees with the live projections.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/payloads.hpp"
#include "store/workflow_payloads.hpp"
#include "store/sqlite/rebuild.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/trimmer.hpp"

namespace store = botbus::store;
using store::EventDraft;
using store::Seq;

namespace {

constexpr std::int64_t k_minute_us = 60'000'000;

std::string packed_body(const std::string& text) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, text);
    return std::string(buffer.data(), buffer.size());
}

class Retention : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};

    Seq append(EventDraft draft) {
        auto batch = m_store.begin();
        const auto appended = batch.append(std::move(draft));
        batch.commit();
        return appended.seq;
    }
    void create_channel(const std::string& name) {
        append({std::string(store::stream::k_channels), store::EventType::channel_created, "alice",
                std::nullopt, store::encode_payload(store::ChannelCreated{name, std::nullopt})});
    }
    Seq publish(const std::string& channel, const std::string& text, std::optional<std::string> key = std::nullopt) {
        const auto body = packed_body(text);
        store::MessagePayload p;
        p.channel = channel;
        p.type = "text";
        p.body = body;
        return append({store::stream::channel(channel), store::EventType::message_published, "alice",
                       std::move(key), store::encode_message_payload(p)});
    }
    Seq send(const std::string& to, const std::string& text) {
        const auto body = packed_body(text);
        store::MessagePayload p;
        p.to = to;
        p.type = "text";
        p.body = body;
        return append({store::stream::mailbox(to), store::EventType::message_sent, "alice",
                       std::nullopt, store::encode_message_payload(p)});
    }
    void set_retention(const std::string& channel, std::optional<std::uint64_t> age, std::optional<std::uint64_t> count) {
        append({std::string(store::stream::k_channels), store::EventType::channel_retention_set,
                "alice", std::nullopt, store::encode_payload(store::ChannelRetentionSet{channel, age, count})});
    }
    // Steps until nothing more goes; returns how many went.
    std::size_t trim(store::Trimmer& trimmer, std::int64_t now_us, std::size_t budget = 1000) {
        std::size_t total = 0;
        for (int step = 0; step < 1000; ++step) {
            auto batch = m_store.begin();
            const auto trimmed = trimmer.step(batch, now_us, budget);
            batch.commit();
            total += trimmed;
            if (trimmed == 0) break;
        }
        return total;
    }
    std::vector<Seq> channel_seqs(const std::string& channel) {
        store::HistoryQuery q;
        q.channel = channel;
        q.limit = 100000;
        std::vector<Seq> seqs;
        for (const auto& row : m_store.messages().history(q)) seqs.push_back(row.seq);
        return seqs;
    }
    std::vector<store::Event> events_of_type(store::EventType type) {
        std::vector<store::Event> out;
        for (const auto& e : m_store.read_range(0, 1'000'000)) {
            if (e.type == type) out.push_back(e);
        }
        return out;
    }
};

TEST_F(Retention, ACountLimitKeepsTheNewestMessagesAndLogsWhatWent) {
    create_channel("lobby");
    std::vector<Seq> seqs;
    for (int i = 0; i < 10; ++i) seqs.push_back(publish("lobby", "m" + std::to_string(i)));
    store::Trimmer trimmer(m_store, {0, 4});
    EXPECT_EQ(trim(trimmer, store::now_us()), 6U);
    EXPECT_EQ(channel_seqs("lobby"), std::vector<Seq>(seqs.begin() + 6, seqs.end()));

    const auto trims = events_of_type(store::EventType::stream_trimmed);
    ASSERT_EQ(trims.size(), 1U);
    EXPECT_EQ(trims[0].stream, store::stream::k_retention);
    EXPECT_EQ(trims[0].producer, "botbusd");
    msgpack::object_handle keep;
    const auto p = store::decode_payload<store::StreamTrimmed>(trims[0].type, trims[0].payload, keep);
    EXPECT_EQ(p.stream, "ch/lobby");
    EXPECT_EQ(p.through_seq, seqs[5]);
    EXPECT_EQ(p.count, 6U);

    // Neither seq nor channel seq is handed out again.
    auto batch = m_store.begin();
    const auto body = packed_body("after");
    store::MessagePayload next;
    next.channel = "lobby";
    next.type = "text";
    next.body = body;
    const auto appended = batch.append({store::stream::channel("lobby"),
                                        store::EventType::message_published, "alice", std::nullopt,
                                        store::encode_message_payload(next)});
    batch.commit();
    EXPECT_EQ(appended.seq, trims[0].seq + 1);
    EXPECT_EQ(appended.stream_seq, 11U);
    EXPECT_EQ(m_store.messages().channel("lobby")->last_channel_seq, 11U);
}

TEST_F(Retention, AnAgeLimitDeletesWhatIsOlderThanIt) {
    create_channel("lobby");
    const auto seqs = std::vector<Seq>{publish("lobby", "a"), publish("lobby", "b")};
    store::Trimmer trimmer(m_store, {60'000, 0});
    EXPECT_EQ(trim(trimmer, store::now_us()), 0U) << "nothing is a minute old yet";
    EXPECT_EQ(channel_seqs("lobby"), seqs);
    EXPECT_EQ(trim(trimmer, store::now_us() + 2 * k_minute_us), 2U);
    EXPECT_TRUE(channel_seqs("lobby").empty());
}

TEST_F(Retention, AChannelsOwnLimitsOverrideTheDefault) {
    create_channel("keep");
    create_channel("short");
    for (int i = 0; i < 5; ++i) {
        publish("keep", "k");
        publish("short", "s");
    }
    set_retention("keep", 0, 0);        // no limits at all
    set_retention("short", std::nullopt, 2);
    store::Trimmer trimmer(m_store, {0, 3});
    trim(trimmer, store::now_us());
    EXPECT_EQ(channel_seqs("keep").size(), 5U);
    EXPECT_EQ(channel_seqs("short").size(), 2U);
    EXPECT_EQ(m_store.messages().channel("short")->max_messages, std::optional<std::uint64_t>(2));
    EXPECT_FALSE(m_store.messages().channel("short")->max_age_ms) << "absent: the default";

    // Back to the default for both.
    set_retention("keep", std::nullopt, std::nullopt);
    trim(trimmer, store::now_us());
    EXPECT_EQ(channel_seqs("keep").size(), 3U);
}

TEST_F(Retention, StepsAreBoundedByTheirBudget) {
    create_channel("big");
    for (int i = 0; i < 25; ++i) publish("big", "x");
    store::Trimmer trimmer(m_store, {0, 1});
    auto batch = m_store.begin();
    EXPECT_EQ(trimmer.step(batch, store::now_us(), 10), 10U);
    batch.commit();
    EXPECT_EQ(channel_seqs("big").size(), 15U);
    EXPECT_EQ(trim(trimmer, store::now_us(), 10), 14U);
    EXPECT_EQ(channel_seqs("big").size(), 1U);
}

TEST_F(Retention, AMailboxLosesOnlySettledMessages) {
    std::vector<Seq> seqs;
    for (int i = 0; i < 5; ++i) seqs.push_back(send("bob", "m" + std::to_string(i)));
    store::Trimmer trimmer(m_store, {0, 1});
    EXPECT_EQ(trim(trimmer, store::now_us()), 0U) << "nothing acknowledged: everything stays";

    append({std::string(store::stream::k_mailboxes), store::EventType::mailbox_acked, "bob",
            std::nullopt, store::encode_payload(store::MailboxAcked{seqs[2], std::nullopt})});
    EXPECT_EQ(trim(trimmer, store::now_us()), 3U);
    store::HistoryQuery inbox;
    inbox.scope = store::HistoryQuery::Scope::inbox;
    inbox.bot_a = "bob";
    const auto left = m_store.messages().history(inbox);
    ASSERT_EQ(left.size(), 2U) << "unacknowledged messages stay over the count limit";
    EXPECT_EQ(left[0].seq, seqs[3]);
    EXPECT_EQ(m_store.mailboxes().unsettled_count("bob"), 2);
}

TEST_F(Retention, AnIdempotencyKeyIsHonouredWhileItsEventIsKept) {
    create_channel("lobby");
    const auto keyed = publish("lobby", "once", "key-1");
    for (int i = 0; i < 3; ++i) publish("lobby", "later");
    {
        auto batch = m_store.begin();
        const auto found = batch.find_idempotent("alice", "key-1");
        ASSERT_TRUE(found);
        EXPECT_EQ(found->seq, keyed);
    }
    store::Trimmer trimmer(m_store, {0, 2});
    trim(trimmer, store::now_us());
    auto batch = m_store.begin();
    EXPECT_FALSE(batch.find_idempotent("alice", "key-1")) << "the event is gone, and its key with it";
}

TEST_F(Retention, ADurableSubscriptionsFloorMovesPastWhatWasTrimmed) {
    create_channel("jobs");
    append({std::string(store::stream::k_consumers), store::EventType::consumer_created, "bob",
            std::nullopt, store::encode_payload(store::ConsumerCreated{"bob", "jobs", 0})});
    std::vector<Seq> seqs;
    for (int i = 0; i < 6; ++i) seqs.push_back(publish("jobs", "j"));
    store::Trimmer trimmer(m_store, {0, 2});
    trim(trimmer, store::now_us());
    const auto consumer = m_store.consumers().consumer("bob", "jobs");
    ASSERT_TRUE(consumer);
    EXPECT_EQ(consumer->acked, seqs[3]);
    EXPECT_EQ(consumer->unsettled, 2);
}

TEST_F(Retention, WorkflowStreamsAreNeverTrimmed) {
    // A run's event whose run is not projected: the log keeps it, the projector changes nothing.
    append({store::stream::run("r1"), store::EventType::run_context, "exec", std::nullopt,
            store::encode_payload(store::RunContext{"r1", "{}"})});
    create_channel("lobby");
    publish("lobby", "a");
    store::Trimmer trimmer(m_store, {1, 1});
    trim(trimmer, store::now_us() + k_minute_us);
    std::size_t run_events = 0;
    for (const auto& e : m_store.read_range(0, 1000)) run_events += e.stream == "run/r1" ? 1U : 0U;
    EXPECT_EQ(run_events, 1U);
}

TEST_F(Retention, ARebuildAfterTrimmingGivesTheLiveProjections) {
    create_channel("jobs");
    append({std::string(store::stream::k_consumers), store::EventType::consumer_created, "bob",
            std::nullopt, store::encode_payload(store::ConsumerCreated{"bob", "jobs", 0})});
    std::vector<Seq> jobs;
    std::vector<Seq> dms;
    for (int i = 0; i < 6; ++i) {
        jobs.push_back(publish("jobs", "j"));
        dms.push_back(send("bob", "d"));
    }
    // Acked out of order, so the floors moved by compaction over messages
    // that retention then deletes.
    append({std::string(store::stream::k_consumers), store::EventType::consumer_acked, "bob",
            std::nullopt,
            store::encode_payload(store::ConsumerAcked{"bob", "jobs", std::nullopt, std::vector<std::uint64_t>{jobs[1], jobs[0]}})});
    append({std::string(store::stream::k_mailboxes), store::EventType::mailbox_acked, "bob",
            std::nullopt, store::encode_payload(store::MailboxAcked{std::nullopt, std::vector<std::uint64_t>{dms[2], dms[1], dms[0], dms[4]}})});
    store::Trimmer trimmer(m_store, {0, 2});
    EXPECT_GT(trim(trimmer, store::now_us()), 0U);

    SQLite::Database rebuilt(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    store::rebuild_projections(m_store, rebuilt);
    const auto differences = store::compare_projections(m_store.database(), rebuilt, 20);
    EXPECT_TRUE(differences.empty()) << differences.front();
}

}  // namespace
