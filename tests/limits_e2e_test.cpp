// The limits on one client against the real botbusd (PROTOCOL.md "Limits per
// bot and per connection"): connections per bot, subscriptions per bot and
// requests in flight per connection. Each is hit by a misbehaving client
// beside a well-behaved one that keeps being served; the refusal is
// limit_reached naming the limit and its value, `stats` counts it, and the
// refused request appends nothing.
#include <gtest/gtest.h>

#include <chrono>
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

class Limits : public ::testing::Test {
protected:
    void start(std::vector<std::string> args) {
        m_daemon = std::make_unique<DaemonProcess>(m_dir.path() / "data", std::move(args));
    }
    std::unique_ptr<RawDealer> connect() {
        return std::make_unique<RawDealer>(m_context, m_daemon->command_endpoint());
    }
    std::unique_ptr<RawDealer> connect_as(const std::string& bot) {
        auto dealer = connect();
        dealer->call_ok(MapFrame().with("op", "hello").with("bot", bot).str());
        return dealer;
    }
    static std::string hello(const std::string& bot) { return MapFrame().with("op", "hello").with("bot", bot).str(); }
    static std::string subscribe(const std::string& channel) {
        return MapFrame().with("op", "subscribe").with("channel", channel).str();
    }
    static std::string publish(const std::string& channel, const std::string& body) {
        return MapFrame().with("op", "publish").with("channel", channel).with("body", body).str();
    }
    static std::uint64_t stat_of(RawDealer& dealer, const std::string& key) {
        return dealer.call_ok(MapFrame().with("op", "stats").str()).u64(key).value_or(~0ULL);
    }
    // A refusal for the limit, its message naming the limit and its value.
    static void expect_limit(const std::optional<RawFrame>& reply, const std::string& limit, std::size_t value) {
        ASSERT_TRUE(reply) << "no reply";
        EXPECT_EQ(reply->ok(), false);
        EXPECT_EQ(reply->text("error"), "limit_reached") << reply->text("message");
        EXPECT_NE(reply->text("message").find(limit + " is " + std::to_string(value)), std::string::npos)
            << reply->text("message");
    }
    // The well-behaved client is served as before: it publishes and reads back.
    static void expect_served(RawDealer& polite, const std::string& channel) {
        const auto seq = polite.call_ok(publish(channel, "still served")).u64("seq");
        ASSERT_TRUE(seq);
        const auto page = polite.call_ok(MapFrame().with("op", "history").with("channel", channel)
                                             .with("after", *seq - 1).str());
        EXPECT_EQ(page.find("messages")->via.array.size, 1U);
    }

    TempDir m_dir;
    zmq::context_t m_context;
    std::unique_ptr<DaemonProcess> m_daemon;
};

TEST_F(Limits, AHelloPastTheConnectionsPerBotIsRefusedAndTheBotsOthersAndOtherBotsAreServed) {
    start({"--max-connections-per-bot", "2"});
    auto polite = connect_as("polite");
    auto first = connect_as("greedy");
    auto second = connect_as("greedy");
    auto third = connect();
    expect_limit(third->call(hello("greedy")), "--max-connections-per-bot", 2);
    EXPECT_EQ(stat_of(*polite, "refused_bot_connections"), 1U);
    // The refused connection has no identity; the two that hold one go on.
    EXPECT_EQ(third->call(publish("room", "x"))->text("error"), "not_identified");
    second->call_ok(publish("room", "from the second"));
    // A connection saying hello again as its own bot takes no new place.
    first->call_ok(hello("greedy"));
    expect_served(*polite, "room");
    // Another bot, and the third connection as another bot, are not limited.
    third->call_ok(hello("other"));
    // Once a connection of the bot closes, its place is free again.
    const auto sessions = stat_of(*polite, "sessions");
    first.reset();
    ASSERT_TRUE(eventually([&] { return stat_of(*polite, "sessions") < sessions; }));
    auto fourth = connect();
    fourth->call_ok(hello("greedy"));
    EXPECT_EQ(stat_of(*polite, "refused_bot_connections"), 1U);
}

TEST_F(Limits, ASubscribePastTheSubscriptionsPerBotIsRefusedAndAppendsNothing) {
    start({"--max-subscriptions-per-bot", "3"});
    auto polite = connect_as("polite");
    auto greedy = connect_as("greedy");
    // Each kind counts: a membership, a durable subscription, a live one.
    greedy->call_ok(subscribe("a"));
    greedy->call_ok(MapFrame().with("op", "subscribe").with("channel", "b").with("durable", true)
                        .with("deliver", "pull").str());
    greedy->call_ok(MapFrame().with("op", "subscribe").with("channel", "c").with("deliver", "push").str());
    const auto before = stat_of(*polite, "last_seq");
    expect_limit(greedy->call(subscribe("d")), "--max-subscriptions-per-bot", 3);
    expect_limit(greedy->call(MapFrame().with("op", "subscribe").with("channel", "d").with("durable", true).str()),
                 "--max-subscriptions-per-bot", 3);
    EXPECT_EQ(stat_of(*polite, "last_seq"), before) << "a refused subscribe appended something";
    EXPECT_EQ(polite->call(MapFrame().with("op", "subscribers").with("channel", "d").str())->text("error"),
              "not_found")
        << "a refused subscribe created its channel";
    EXPECT_EQ(stat_of(*polite, "refused_subscriptions"), 2U);
    // Subscribing again to a channel it has is no new subscription.
    greedy->call_ok(subscribe("a"));
    greedy->call_ok(MapFrame().with("op", "subscribe").with("channel", "a").with("durable", true).str());
    // Another bot subscribes to the channel greedy could not.
    polite->call_ok(subscribe("d"));
    expect_served(*polite, "d");
    // A live subscription counts while it lasts, even once another of the
    // bot's connections ends the membership that came with it.
    auto other_connection = connect_as("greedy");
    other_connection->call_ok(MapFrame().with("op", "unsubscribe").with("channel", "c").str());
    expect_limit(greedy->call(subscribe("d")), "--max-subscriptions-per-bot", 3);
    // Unsubscribing (and so ending the live one) makes room.
    greedy->call_ok(MapFrame().with("op", "unsubscribe").with("channel", "a").str());
    greedy->call_ok(subscribe("d"));
    EXPECT_EQ(stat_of(*polite, "refused_subscriptions"), 3U);
}

TEST_F(Limits, ARequestPastTheInFlightLimitIsAnsweredAtOnceWithoutRunning) {
    constexpr std::size_t k_limit = 8;
    start({"--max-in-flight", std::to_string(k_limit)});
    auto polite = connect_as("polite");
    auto greedy = connect_as("greedy");
    greedy->call_ok(MapFrame().with("op", "subscribe").with("channel", "jobs").with("durable", true)
                        .with("deliver", "pull").str());
    // Fetches that wait stay in flight until answered.
    for (std::size_t i = 0; i < k_limit; ++i) {
        greedy->send(MapFrame().with("op", "fetch").with("id", i).with("channel", "jobs").with("wait_ms", 60000).str());
    }
    const auto before = stat_of(*polite, "last_seq");
    greedy->send(MapFrame().with("op", "publish").with("id", 100).with("channel", "jobs").with("body", "x").str());
    const auto refused = greedy->reply();
    expect_limit(refused, "--max-in-flight", k_limit);
    EXPECT_EQ(refused->u64("id"), 100U) << "the refusal echoes its request's id";
    EXPECT_EQ(stat_of(*polite, "last_seq"), before) << "the refused publish was run";
    EXPECT_EQ(stat_of(*polite, "refused_in_flight"), 1U);
    expect_served(*polite, "room");
    // Answering the waiting fetches frees their places.
    for (std::size_t i = 0; i < k_limit; ++i) polite->call_ok(publish("jobs", "job " + std::to_string(i)));
    for (std::size_t i = 0; i < k_limit; ++i) {
        const auto reply = greedy->reply();
        ASSERT_TRUE(reply);
        EXPECT_EQ(reply->ok(), true) << reply->text("message");
    }
    greedy->call_ok(publish("jobs", "now it runs"));
    EXPECT_EQ(stat_of(*polite, "refused_in_flight"), 1U);
}

TEST_F(Limits, AFloodPastTheInFlightLimitGetsEveryReplyInRequestOrder) {
    constexpr std::size_t k_limit = 4;
    constexpr std::uint64_t k_requests = 500;
    start({"--max-in-flight", std::to_string(k_limit)});
    auto polite = connect_as("polite");
    auto greedy = connect_as("greedy");
    for (std::uint64_t i = 0; i < k_requests; ++i) {
        greedy->send(MapFrame().with("op", "publish").with("id", i).with("channel", "flood")
                         .with("body", std::to_string(i)).str());
    }
    std::uint64_t refused = 0;
    std::uint64_t accepted = 0;
    for (std::uint64_t i = 0; i < k_requests; ++i) {
        const auto reply = greedy->reply();
        ASSERT_TRUE(reply) << "no reply to request " << i;
        ASSERT_EQ(reply->u64("id"), i) << "replies out of request order";
        if (reply->ok() == true) {
            ++accepted;
        } else {
            ASSERT_EQ(reply->text("error"), "limit_reached");
            ++refused;
        }
    }
    EXPECT_GT(refused, 0U) << "the flood never reached the limit";
    EXPECT_EQ(stat_of(*polite, "refused_in_flight"), refused);
    // Only what was accepted was appended.
    std::uint64_t messages = 0;
    for (std::uint64_t after = 0;;) {
        const auto page = polite->call_ok(
            MapFrame().with("op", "history").with("channel", "flood").with("after", after).with("limit", 1000).str());
        const auto& list = page.find("messages")->via.array;
        messages += list.size;
        if (list.size == 0 || page.find("more")->via.boolean == false) break;
        after = RawFrame::find_in(list.ptr[list.size - 1], "seq")->via.u64;
    }
    EXPECT_EQ(messages, accepted);
    expect_served(*polite, "room");
}

TEST(LimitsDefaults, AThousandRequestsInFlightAsTheBenchmarkSendsAreNotRefused) {
    TempDir dir;
    zmq::context_t context;
    DaemonProcess daemon(dir.path() / "data");
    RawDealer client(context, daemon.command_endpoint());
    client.call_ok(MapFrame().with("op", "hello").with("bot", "bench").str());
    constexpr std::uint64_t k_requests = 1000;
    for (std::uint64_t i = 0; i < k_requests; ++i) {
        client.send(MapFrame().with("op", "publish").with("id", i).with("channel", "bench").with("body", "x").str());
    }
    for (std::uint64_t i = 0; i < k_requests; ++i) {
        const auto reply = client.reply();
        ASSERT_TRUE(reply);
        ASSERT_EQ(reply->ok(), true) << reply->text("error") << " " << reply->text("message");
    }
    EXPECT_EQ(client.call_ok(MapFrame().with("op", "stats").str()).u64("refused_in_flight"), 0U);
}

}  // namespace
}  // namespace botbus
