// Delivery and message edges against the real botbusd, as PROTOCOL.md states
// them: idempotency keys reused elsewhere, the caught_up marker under a small
// credit, waiting fetches (their reply order, and a prompt answer when their
// subscription ends), what channel.delete ends, and exact ttl expiries.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "daemon_process.hpp"
#include "raw_wire.hpp"

namespace botbus {
namespace {

using namespace testing;
using namespace std::chrono_literals;

class DeliveryEdges : public ::testing::Test {
protected:
    void SetUp() override { start(); }
    void start() { m_daemon = std::make_unique<DaemonProcess>(data_dir()); }
    std::filesystem::path data_dir() const { return m_dir.path() / "data"; }

    std::unique_ptr<RawDealer> connect(const std::string& bot) {
        auto dealer = std::make_unique<RawDealer>(m_context, m_daemon->command_endpoint());
        dealer->call_ok(MapFrame().with("op", "hello").with("bot", bot).str());
        return dealer;
    }
    static std::string error_of(RawDealer& dealer, const std::string& frame) {
        const auto reply = dealer.call(frame);
        if (!reply) return "<no reply>";
        return reply->ok() == false ? reply->text("error") : "<ok>";
    }
    static std::uint64_t publish(RawDealer& dealer, const std::string& channel, const std::string& body) {
        return dealer.call_ok(MapFrame().with("op", "publish").with("channel", channel).with("body", body).str())
            .u64("seq")
            .value_or(0);
    }

    TempDir m_dir;
    zmq::context_t m_context;
    std::unique_ptr<DaemonProcess> m_daemon;
};

// ---- idempotency keys

TEST_F(DeliveryEdges, AnIdempotencyKeyReusedForAnotherTargetOrOpIsAConflict) {
    auto alice = connect("alice");
    const auto publish_with = [](const std::string& channel, const std::string& key) {
        return MapFrame().with("op", "publish").with("channel", channel).with("body", "x").with("idempotency_key", key)
            .str();
    };
    const auto send_with = [](const std::string& to, const std::string& key) {
        return MapFrame().with("op", "send").with("to", to).with("body", "x").with("idempotency_key", key).str();
    };
    const auto first = alice->call_ok(publish_with("a", "k1"));
    const auto again = alice->call_ok(publish_with("a", "k1"));
    EXPECT_EQ(again.u64("seq"), first.u64("seq"));
    EXPECT_EQ(error_of(*alice, publish_with("b", "k1")), "conflict") << "another channel";
    EXPECT_EQ(error_of(*alice, send_with("bob", "k1")), "conflict") << "a send with a publish's key";
    alice->call_ok(send_with("bob", "k2"));
    EXPECT_EQ(error_of(*alice, send_with("carol", "k2")), "conflict") << "another recipient";
    EXPECT_EQ(error_of(*alice, publish_with("a", "k2")), "conflict") << "a publish with a send's key";
    // Keys are per bot: another bot's k1 is its own.
    auto bob = connect("bob");
    bob->call_ok(publish_with("b", "k1"));
}

// ---- caught_up needs no credit

TEST_F(DeliveryEdges, CaughtUpComesAfterTheCreditsWorthOfHistoryWithoutAnAck) {
    auto alice = connect("alice");
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 5; ++i) seqs.push_back(publish(*alice, "log", "m" + std::to_string(i)));
    auto bob = connect("bob");
    bob->call_ok(MapFrame().with("op", "subscribe").with("channel", "log").with("durable", true).with("from_seq", 1)
                     .with("credit", 2).str());
    std::vector<std::uint64_t> pushed;
    for (int i = 0; i < 2; ++i) {
        const auto push = bob->next_push(5s);
        ASSERT_TRUE(push);
        ASSERT_EQ(push->text("push"), "message");
        pushed.push_back(RawFrame::find_in(*push->find("message"), "seq")->via.u64);
    }
    EXPECT_EQ(pushed, (std::vector<std::uint64_t>{seqs[0], seqs[1]}));
    const auto marker = bob->next_push(5s);
    ASSERT_TRUE(marker) << "no caught_up marker while the credit is used up";
    EXPECT_EQ(marker->text("push"), "caught_up");
    EXPECT_EQ(marker->u64("seq"), seqs[4]) << "where the history ends";
    // Acknowledging makes room for the rest of the history, with no second marker.
    bob->call_ok(MapFrame().with("op", "ack").with("channel", "log").with("upto", seqs[1]).str());
    for (std::size_t i = 2; i < 4; ++i) {
        const auto push = bob->next_push(5s);
        ASSERT_TRUE(push);
        ASSERT_EQ(push->text("push"), "message");
        EXPECT_EQ(RawFrame::find_in(*push->find("message"), "seq")->via.u64, seqs[i]);
    }
}

// ---- waiting fetches

TEST_F(DeliveryEdges, AWaitingFetchIsAnsweredAfterLaterRequestsAndMatchedById) {
    auto alice = connect("alice");
    auto bob = connect("bob");
    bob->call_ok(MapFrame().with("op", "subscribe").with("channel", "jobs").with("durable", true)
                     .with("deliver", "pull").str());
    bob->send(MapFrame().with("op", "fetch").with("id", 1).with("channel", "jobs").with("wait_ms", 20000).str());
    bob->send(MapFrame().with("op", "ping").with("id", 2).str());
    const auto first = bob->reply();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->u64("id"), 2U) << "the ping, sent after the fetch, is answered first";
    const auto seq = publish(*alice, "jobs", "work");
    const auto fetched = bob->reply();
    ASSERT_TRUE(fetched);
    EXPECT_EQ(fetched->u64("id"), 1U);
    const auto* messages = fetched->find("messages");
    ASSERT_TRUE(messages && messages->type == msgpack::type::ARRAY && messages->via.array.size == 1);
    EXPECT_EQ(RawFrame::find_in(*RawFrame::find_in(messages->via.array.ptr[0], "message"), "seq")->via.u64, seq);
}

TEST_F(DeliveryEdges, AWaitingFetchIsAnsweredAtOnceWhenAnotherConnectionEndsItsSubscription) {
    auto bob = connect("bob");
    bob->call_ok(MapFrame().with("op", "subscribe").with("channel", "jobs").with("durable", true)
                     .with("deliver", "pull").str());
    bob->send(MapFrame().with("op", "fetch").with("id", 7).with("channel", "jobs").with("wait_ms", 60000).str());
    auto other = connect("bob");
    other->call_ok(MapFrame().with("op", "unsubscribe").with("channel", "jobs").str());
    const auto answered = bob->reply(10s);  // well before its 60 s wait
    ASSERT_TRUE(answered) << "the waiting fetch was not answered when its subscription ended";
    EXPECT_EQ(answered->u64("id"), 7U);
    EXPECT_EQ(answered->text("error"), "not_found");
}

// ---- channel.delete

TEST_F(DeliveryEdges, DeletingAChannelEndsEverySubscriptionToItAndARebuildAgrees) {
    auto alice = connect("alice");
    auto puller = connect("bob");
    auto pusher = connect("carol");
    auto watcher = connect("dave");
    publish(*alice, "news", "before");
    puller->call_ok(MapFrame().with("op", "subscribe").with("channel", "news").with("durable", true)
                        .with("deliver", "pull").str());
    pusher->call_ok(MapFrame().with("op", "subscribe").with("channel", "news").with("durable", true).str());
    watcher->call_ok(MapFrame().with("op", "subscribe").with("channel", "news").with("credit", 10).str());
    ASSERT_TRUE(pusher->next_push(5s));   // caught_up
    ASSERT_TRUE(watcher->next_push(5s));  // caught_up
    puller->send(MapFrame().with("op", "fetch").with("id", 3).with("channel", "news").with("wait_ms", 60000).str());
    puller->call_ok(MapFrame().with("op", "ping").str());  // the fetch is parked

    alice->call_ok(MapFrame().with("op", "channel.delete").with("name", "news").str());
    const auto answered = puller->reply(10s);
    ASSERT_TRUE(answered) << "the fetch waiting on the deleted channel was not answered";
    EXPECT_EQ(answered->u64("id"), 3U);
    EXPECT_EQ(answered->text("error"), "not_found");

    const auto consumers = alice->call_ok(MapFrame().with("op", "consumers").str());
    EXPECT_EQ(consumers.find("consumers")->via.array.size, 0U);
    EXPECT_EQ(error_of(*puller, MapFrame().with("op", "fetch").with("channel", "news").str()), "not_found");
    EXPECT_EQ(error_of(*pusher, MapFrame().with("op", "ack").with("channel", "news").with("upto", 1).str()),
              "not_found");

    // Created again: none of the old subscriptions receives anything.
    publish(*alice, "news", "after");
    pusher->call_ok(MapFrame().with("op", "ping").str());
    watcher->call_ok(MapFrame().with("op", "ping").str());
    EXPECT_FALSE(pusher->has_push()) << "the durable subscription outlived its channel";
    EXPECT_FALSE(watcher->has_push()) << "the connection's subscription outlived its channel";
    const auto members = alice->call_ok(MapFrame().with("op", "subscribers").with("channel", "news").str());
    EXPECT_EQ(members.find("bots")->via.array.size, 0U);

    ASSERT_EQ(m_daemon->terminate(), 0) << m_daemon->stderr_text();
    m_daemon.reset();
    auto args = testing::store_args(data_dir());
    args.insert(args.begin(), "rebuild");
    args.insert(args.end(), {"--log-level", "warn"});
    const auto rebuild = run_botbusd(args);
    EXPECT_EQ(rebuild.exit_code, 0) << rebuild.stdout_text << rebuild.stderr_text;
    EXPECT_NE(rebuild.stdout_text.find("match"), std::string::npos) << rebuild.stdout_text;
}

// ---- ttl

TEST_F(DeliveryEdges, ExpiresAtIsExactlyTheEventsTsPlusTheTtl) {
    auto alice = connect("alice");
    auto bob = connect("bob");
    for (const std::uint64_t ttl : {1500ULL, 60000ULL, 31536000000ULL}) {
        const auto sent = alice->call_ok(MapFrame().with("op", "send").with("to", "bob").with("body", "soon")
                                             .with("ttl_ms", ttl).str());
        const auto ts = static_cast<std::int64_t>(sent.u64("ts").value_or(0));
        const auto expected = ts + static_cast<std::int64_t>(ttl) * 1000;
        const auto push = bob->next_push(5s);
        ASSERT_TRUE(push);
        const auto* pushed = RawFrame::find_in(*push->find("message"), "expires_at");
        ASSERT_TRUE(pushed);
        EXPECT_EQ(pushed->via.i64, expected) << "push, ttl " << ttl;
        const auto history = bob->call_ok(MapFrame().with("op", "history").with("inbox", true).with("order", "desc")
                                               .with("limit", 1).str());
        const auto& newest = history.find("messages")->via.array.ptr[0];
        EXPECT_EQ(RawFrame::find_in(newest, "expires_at")->via.i64, expected) << "history, ttl " << ttl;
    }
}

}  // namespace
}  // namespace botbus
