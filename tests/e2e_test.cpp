#include <gtest/gtest.h>

#include "client/client.hpp"
#include "daemon_process.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;

TEST(EndToEnd, PublishReachesSubscriberWithItsSeq) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, {daemon.command_endpoint(), daemon.feed_endpoint(), 5000ms});
    client::Client bob(context, {daemon.command_endpoint(), daemon.feed_endpoint(), 5000ms});
    alice.hello("alice");
    bob.hello("bob");
    client::Subscription sub(bob, "news");
    const auto ack = alice.publish("news", bus::pack_as_value(std::string("hi")));
    const auto message = sub.next(5s);
    ASSERT_TRUE(message);
    EXPECT_EQ(message->seq, ack.seq);
    EXPECT_EQ(message->stream_seq, ack.stream_seq);
    EXPECT_EQ(message->from, "alice");
    EXPECT_EQ(message->body, bus::pack_as_value(std::string("hi")));
}

}  // namespace
}  // namespace botbus
