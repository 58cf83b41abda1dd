// Several botbusd nodes on one PostgreSQL log, over the wire: three real
// daemons started with the same --store (a schema of the test server's),
// clients on different nodes. What one node appends reaches the feed
// subscribers and mailboxes of the others, once each and in seq order; a
// node killed with kill -9 loses nothing it acknowledged.
// These run in the default pass only (they choose their store themselves).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "postgres_test_server.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::options_for;

bus::PackedValue text_body(const std::string& text) { return bus::pack_as_value(text); }

class MultiNode : public ::testing::Test {
protected:
    void SetUp() override {
        if (testing::test_store_is_postgres()) GTEST_SKIP() << "runs once, in the default pass";
        BOTBUS_NEEDS_POSTGRES();
        m_store = testing::fresh_postgres_schema();
        for (int i = 0; i < 3; ++i) start_node(i);
    }

    void start_node(int i) {
        m_nodes.resize(3);
        m_nodes[static_cast<std::size_t>(i)] = std::make_unique<testing::DaemonProcess>(
            m_dir.path() / ("node" + std::to_string(i)), std::vector<std::string>{"--store", m_store});
    }
    testing::DaemonProcess& node(int i) { return *m_nodes[static_cast<std::size_t>(i)]; }

    testing::TempDir m_dir;
    std::string m_store;
    std::vector<std::unique_ptr<testing::DaemonProcess>> m_nodes;
    zmq::context_t m_context;
};

// Collects a subscription's messages until `count` arrived or 30 s passed.
std::vector<bus::Message> collect(client::Subscription& sub, std::size_t count) {
    std::vector<bus::Message> got;
    const auto deadline = Clock::now() + 30s;
    while (got.size() < count && Clock::now() < deadline) {
        auto message = sub.next(std::chrono::duration_cast<client::Millis>(deadline - Clock::now()));
        if (!message) break;
        got.push_back(std::move(*message));
    }
    return got;
}

TEST_F(MultiNode, MessagesPublishedOnOneNodeReachSubscribersOnTheOthersOnceEachInSeqOrder) {
    constexpr std::size_t k_before = 100;
    constexpr std::size_t k_after = 200;
    client::Client publisher(m_context, options_for(node(0)));
    publisher.hello("publisher");
    std::vector<std::uint64_t> acked;
    for (std::size_t i = 0; i < k_before; ++i) acked.push_back(publisher.publish("shared", text_body("m")).seq);

    // A live subscriber on node 1 from now on, a late joiner on node 2 that
    // catches up from the start (history, then live).
    client::Client live_client(m_context, options_for(node(1)));
    live_client.hello("live");
    client::Subscription live(live_client, "shared", acked.back());
    client::Client late_client(m_context, options_for(node(2)));
    late_client.hello("late");
    client::Subscription late(late_client, "shared", 0);

    // Publishing goes on through two nodes at once.
    std::thread other([&] {
        client::Client second(m_context, options_for(node(2)));
        second.hello("second");
        for (std::size_t i = 0; i < k_after / 2; ++i) second.publish("shared", text_body("n"));
    });
    for (std::size_t i = 0; i < k_after / 2; ++i) publisher.publish("shared", text_body("m"));
    other.join();

    const auto live_got = collect(live, k_after);
    const auto late_got = collect(late, k_before + k_after);
    ASSERT_EQ(live_got.size(), k_after);
    ASSERT_EQ(late_got.size(), k_before + k_after);
    for (const auto* got : {&live_got, &late_got}) {
        for (std::size_t i = 1; i < got->size(); ++i) {
            ASSERT_EQ((*got)[i].stream_seq, (*got)[i - 1].stream_seq + 1) << "at " << i;
            ASSERT_GT((*got)[i].seq, (*got)[i - 1].seq) << "at " << i;
        }
    }
    EXPECT_EQ(late_got.front().stream_seq, 1U);
    EXPECT_EQ(late_got.back().stream_seq, k_before + k_after);
    EXPECT_EQ(live_got.front().stream_seq, k_before + 1);
}

TEST_F(MultiNode, ADirectMessageSentThroughOneNodeIsPushedToItsBotOnAnotherOnce) {
    client::Client bob(m_context, options_for(node(2)));
    bob.hello("bob");
    client::Client alice(m_context, options_for(node(0)));
    alice.hello("alice");
    std::vector<std::uint64_t> sent;
    for (int i = 0; i < 50; ++i) sent.push_back(alice.send("bob", text_body("hi " + std::to_string(i))).seq);
    std::vector<std::uint64_t> pushed;
    const auto deadline = Clock::now() + 20s;
    while (pushed.size() < sent.size() && Clock::now() < deadline) {
        const auto push = bob.next_push(1000ms);
        if (!push) continue;
        pushed.push_back(push->seq);
        bob.ack(std::nullopt, {push->seq});
    }
    EXPECT_EQ(pushed, sent);
    // Nothing more comes: each was pushed once.
    EXPECT_FALSE(bob.next_push(300ms));
}

TEST_F(MultiNode, ANodeKilledUnderLoadLosesNothingItAcknowledged) {
    client::Client watcher_client(m_context, options_for(node(1)));
    watcher_client.hello("watcher");
    client::Subscription watcher(watcher_client, "load", 0);

    std::set<std::uint64_t> acked;
    std::size_t published = 0;
    {
        client::Client publisher(m_context, options_for(node(0)));
        publisher.hello("publisher");
        for (; published < 300; ++published) {
            acked.insert(publisher.publish("load", text_body("m"), "text", "k" + std::to_string(published)).seq);
        }
        node(0).kill_hard();
    }
    // The publisher moves to another node and retries what it may not have
    // had acknowledged (here: the last one) under the same key, then goes on.
    client::Client moved(m_context, options_for(node(2)));
    moved.hello("publisher");
    const auto retried = moved.publish("load", text_body("m"), "text", "k" + std::to_string(published - 1));
    EXPECT_TRUE(retried.duplicate);
    EXPECT_TRUE(acked.contains(retried.seq));
    for (std::size_t i = 0; i < 100; ++i, ++published) {
        acked.insert(moved.publish("load", text_body("m"), "text", "k" + std::to_string(published)).seq);
    }
    const auto got = collect(watcher, acked.size());
    std::set<std::uint64_t> seen;
    for (const auto& m : got) EXPECT_TRUE(seen.insert(m.seq).second) << "seq " << m.seq << " twice";
    EXPECT_EQ(seen, acked);
}

}  // namespace
}  // namespace botbus
