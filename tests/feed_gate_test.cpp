// The feed's subscription gate (bus/server/feed.hpp): an in-process Server
// whose ServerOptions::may_subscribe refuses one channel. Subscriptions
// still reach the XPUB socket, and a refused one delivers nothing.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <zmq.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bus/server/server.hpp"
#include "client/client.hpp"
#include "feed_support.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;

// A Server on its own loop thread, on loopback port 0.
class RunningServer {
public:
    explicit RunningServer(bus::ServerOptions options) {
        options.command_endpoint = "tcp://127.0.0.1:*";
        options.feed_endpoint = "tcp://127.0.0.1:*";
        m_server.emplace(m_io, m_zmq, m_store, std::move(options));
        m_server->start();
        m_thread = std::thread([this] { m_io.run(); });
    }
    ~RunningServer() {
        boost::asio::post(m_io, [this] { m_server->stop(0); });
        m_thread.join();
    }
    client::ClientOptions client_options() const {
        return {m_server->command_endpoint(), m_server->feed_endpoint(), 10s};
    }

private:
    boost::asio::io_context m_io;
    zmq::context_t m_zmq;
    store::SqliteStore m_store{{":memory:", store::Durability::full}};
    std::optional<bus::Server> m_server;
    std::thread m_thread;
};

std::vector<std::string> topics_of(const std::vector<testing::FeedEvent>& events) {
    std::vector<std::string> topics;
    for (const auto& event : events) topics.push_back(event.topic);
    return topics;
}

TEST(FeedGate, WithoutAHookEverySubscriptionIsApplied) {
    RunningServer server(bus::ServerOptions{});
    zmq::context_t context;
    client::Client alice(context, server.client_options());
    alice.hello("alice");
    testing::Feed feed(context, alice, {bus::channel_topic("open"), bus::channel_topic("secret")});

    alice.publish("secret", bus::pack_as_value("1"));
    alice.publish("open", bus::pack_as_value("2"));

    EXPECT_EQ(topics_of(feed.sync(alice)),
              (std::vector<std::string>{bus::channel_topic("secret"), bus::channel_topic("open")}));
}

TEST(FeedGate, ARefusingHookStopsDeliveryOfThatTopicOnly) {
    bus::ServerOptions options;
    std::vector<std::string> asked;  // written on the server's thread, read after it stops
    options.may_subscribe = [&asked](const std::optional<std::string>& user, std::string_view prefix) {
        asked.emplace_back(prefix);
        return !user && prefix != bus::channel_topic("secret");
    };
    std::vector<std::string> received;
    {
        RunningServer server(options);
        zmq::context_t context;
        client::Client alice(context, server.client_options());
        alice.hello("alice");
        testing::Feed feed(context, alice, {bus::channel_topic("secret"), bus::channel_topic("open")});

        alice.publish("secret", bus::pack_as_value("1"));
        alice.publish("open", bus::pack_as_value("2"));
        received = topics_of(feed.sync(alice));
    }
    EXPECT_EQ(received, (std::vector<std::string>{bus::channel_topic("open")}));
    EXPECT_NE(std::find(asked.begin(), asked.end(), bus::channel_topic("secret")), asked.end());
}

}  // namespace
}  // namespace botbus
