// Waiting fetches and the delivery reports against the real botbusd, as
// PROTOCOL.md states them (`fetch`, `mailbox`): fetches that wait on one
// subscription are answered oldest first, each message going to exactly one
// of them; how many may wait is bounded per connection and per
// subscription, a closed connection's waiting fetches stop counting; and
// `mailbox` lists at most the first 1000 deliveries in flight while counting
// them all.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "raw_wire.hpp"

namespace botbus {
namespace {

using namespace testing;
using namespace std::chrono_literals;

constexpr std::uint64_t k_wait_bound = 1000;  // per connection and per subscription, as documented

class FetchWaiters : public ::testing::Test {
protected:
    void SetUp() override { m_daemon = std::make_unique<DaemonProcess>(m_dir.path() / "data"); }

    std::unique_ptr<RawDealer> connect(const std::string& bot) {
        auto dealer = std::make_unique<RawDealer>(m_context, m_daemon->command_endpoint());
        dealer->call_ok(MapFrame().with("op", "hello").with("bot", bot).str());
        return dealer;
    }
    static void subscribe_pull(RawDealer& dealer, const std::string& channel) {
        dealer.call_ok(MapFrame().with("op", "subscribe").with("channel", channel).with("durable", true)
                           .with("deliver", "pull").str());
    }
    static std::string waiting_fetch(std::uint64_t id, const std::string& channel) {
        return MapFrame().with("op", "fetch").with("id", id).with("channel", channel).with("max", 1)
            .with("wait_ms", 60000).str();
    }
    // A ping answered before anything else on the connection: every request
    // sent before it was handled, and those fetches wait.
    static void expect_only_ping_answered(RawDealer& dealer) {
        constexpr std::uint64_t k_ping_id = 1'000'000;
        dealer.send(MapFrame().with("op", "ping").with("id", k_ping_id).str());
        const auto reply = dealer.reply();
        ASSERT_TRUE(reply);
        EXPECT_EQ(reply->u64("id"), k_ping_id)
            << "answered instead of the ping: " << reply->text("error") << " " << reply->text("message");
    }
    static std::uint64_t publish(RawDealer& dealer, const std::string& channel, const std::string& body) {
        return dealer.call_ok(MapFrame().with("op", "publish").with("channel", channel).with("body", body).str())
            .u64("seq")
            .value_or(0);
    }
    // The seq of the one message of a fetch reply.
    static std::uint64_t fetched_seq(const RawFrame& reply) {
        const auto* messages = reply.find("messages");
        if (!messages || messages->type != msgpack::type::ARRAY || messages->via.array.size != 1) return 0;
        return RawFrame::find_in(*RawFrame::find_in(messages->via.array.ptr[0], "message"), "seq")->via.u64;
    }

    TempDir m_dir;
    zmq::context_t m_context;
    std::unique_ptr<DaemonProcess> m_daemon;
};

TEST_F(FetchWaiters, TheOldestWaitingFetchGetsEachNewMessageAndEachMessageGoesOnce) {
    auto alice = connect("alice");
    std::vector<std::unique_ptr<RawDealer>> bobs;
    for (int i = 0; i < 3; ++i) bobs.push_back(connect("bob"));
    subscribe_pull(*bobs[0], "jobs");
    constexpr std::uint64_t k_fetches = 30;
    for (std::uint64_t id = 1; id <= k_fetches; ++id) {
        auto& bob = *bobs[id % bobs.size()];
        bob.send(waiting_fetch(id, "jobs"));
        expect_only_ping_answered(bob);  // parked before the next one is sent
    }
    std::vector<std::uint64_t> seqs;
    for (std::uint64_t i = 0; i < k_fetches; ++i) seqs.push_back(publish(*alice, "jobs", "job " + std::to_string(i)));

    std::map<std::uint64_t, std::uint64_t> seq_of_fetch;
    for (auto& bob : bobs) {
        for (std::uint64_t i = 0; i < k_fetches / bobs.size(); ++i) {
            const auto reply = bob->reply();
            ASSERT_TRUE(reply) << "a waiting fetch was not answered";
            EXPECT_EQ(reply->ok(), true) << reply->text("message");
            seq_of_fetch[*reply->u64("id")] = fetched_seq(*reply);
        }
    }
    ASSERT_EQ(seq_of_fetch.size(), k_fetches);
    for (std::uint64_t id = 1; id <= k_fetches; ++id) {
        EXPECT_EQ(seq_of_fetch[id], seqs[id - 1]) << "fetch " << id << " (oldest first) got another message";
    }
}

TEST_F(FetchWaiters, HowManyMayWaitIsBoundedPerConnectionAndPerSubscription) {
    auto alice = connect("alice");
    auto first = connect("bob");
    auto second = connect("bob");
    subscribe_pull(*first, "jobs");
    for (std::uint64_t id = 1; id <= k_wait_bound; ++id) first->send(waiting_fetch(id, "jobs"));
    first->send(waiting_fetch(k_wait_bound + 1, "jobs"));
    const auto refused = first->reply();
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->u64("id"), k_wait_bound + 1);
    EXPECT_EQ(refused->text("error"), "invalid_field");
    EXPECT_NE(refused->text("message").find("this connection"), std::string::npos) << refused->text("message");

    // Another connection of the same bot: the subscription is full.
    const auto refused_too = second->call(waiting_fetch(1, "jobs"));
    ASSERT_TRUE(refused_too);
    EXPECT_EQ(refused_too->text("error"), "invalid_field");
    EXPECT_NE(refused_too->text("message").find("subscription"), std::string::npos) << refused_too->text("message");

    // Another bot's subscription to the same channel is not.
    auto carol = connect("carol");
    subscribe_pull(*carol, "jobs");
    carol->send(waiting_fetch(1, "jobs"));
    expect_only_ping_answered(*carol);

    // A fetch that finds a message is answered whatever the bounds; the
    // oldest waiting fetches get the new message first.
    const auto seq = publish(*alice, "jobs", "one");
    const auto to_bob = first->reply();
    ASSERT_TRUE(to_bob);
    EXPECT_EQ(to_bob->u64("id"), 1U);
    EXPECT_EQ(fetched_seq(*to_bob), seq);
    const auto to_carol = carol->reply();
    ASSERT_TRUE(to_carol);
    EXPECT_EQ(fetched_seq(*to_carol), seq);
    // One of bob's answered: room for one more.
    second->send(waiting_fetch(2, "jobs"));
    expect_only_ping_answered(*second);

    // Closing the first connection drops its 999 waiting fetches: the
    // subscription has room for them again.
    first.reset();
    const auto connections = [&] { return alice->call_ok(MapFrame().with("op", "stats").str()).u64("connections"); };
    ASSERT_TRUE(eventually([&] { return connections() == 3U; })) << "the close was not noticed";
    auto third = connect("bob");
    for (std::uint64_t id = 1; id < k_wait_bound; ++id) third->send(waiting_fetch(id, "jobs"));
    expect_only_ping_answered(*third);
}

TEST_F(FetchWaiters, MailboxListsTheFirstThousandInFlightAndCountsThemAll) {
    auto alice = connect("alice");
    constexpr std::uint64_t k_messages = 1500;
    for (std::uint64_t i = 0; i < k_messages; ++i) {
        alice->send(MapFrame().with("op", "publish").with("channel", "bulk").with("body", i).str());
    }
    std::uint64_t first_seq = 0;
    for (std::uint64_t i = 0; i < k_messages; ++i) {
        const auto reply = alice->reply();
        ASSERT_TRUE(reply);
        if (i == 0) first_seq = *reply->u64("seq");
    }
    auto bob = connect("bob");
    bob->call_ok(MapFrame().with("op", "subscribe").with("channel", "bulk").with("durable", true)
                     .with("from_seq", 1).with("credit", 2000).str());
    for (std::uint64_t i = 0; i < k_messages; ++i) ASSERT_TRUE(bob->next_push()) << "push " << i;

    auto viewer = connect("viewer");
    const auto reply =
        viewer->call_ok(MapFrame().with("op", "mailbox").with("bot", "bob").with("channel", "bulk").str());
    EXPECT_EQ(reply.u64("in_flight_count"), k_messages);
    EXPECT_EQ(reply.u64("unsettled"), k_messages);
    const auto* in_flight = reply.find("in_flight");
    ASSERT_TRUE(in_flight && in_flight->type == msgpack::type::ARRAY);
    ASSERT_EQ(in_flight->via.array.size, 1000U);
    EXPECT_EQ(RawFrame::find_in(in_flight->via.array.ptr[0], "seq")->via.u64, first_seq) << "oldest first";
    EXPECT_EQ(RawFrame::find_in(in_flight->via.array.ptr[999], "seq")->via.u64, first_seq + 999);
}

}  // namespace
}  // namespace botbus
