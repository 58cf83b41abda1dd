// What feed subscribers may cost the daemon: the events held for a
// subscriber that stops reading are bounded in bytes (it is disconnected,
// the others keep every event), and connections past
// --max-feed-connections are turned away.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "bus/protocol/codec.hpp"
#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "feed_support.hpp"
#include "temp_dir.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::options_for;
using testing::stat;

TEST(FeedLimits, ASubscriberThatStopsReadingIsDisconnectedOnceTheHeldBytesPassTheBound) {
    testing::TempDir dir;
    constexpr std::uint64_t k_bound = 1024 * 1024;
    testing::DaemonProcess daemon(dir.path() / "data", {"--max-feed-bytes", std::to_string(k_bound)});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    testing::Feed reader(context, alice, {"ch/news/"});
    testing::Feed stalled(context, alice, {"ch/news/"}, true);

    // 8 MiB published; the stalled subscriber takes almost none of it.
    constexpr int k_messages = 512;
    const std::string padding(16 * 1024, 'p');
    std::vector<std::uint64_t> channel_seqs;
    for (int i = 0; i < k_messages; ++i) {
        alice.publish("news", bus::pack_as_value(std::to_string(i) + padding));
        while (auto event = reader.next(0ms)) channel_seqs.push_back(event->event["channel_seq"].get<std::uint64_t>());
    }
    while (channel_seqs.size() < k_messages) {
        auto event = reader.next(5s);
        if (!event) break;
        channel_seqs.push_back(event->event["channel_seq"].get<std::uint64_t>());
    }

    EXPECT_GE(stat(alice, "feed_disconnects"), 1U) << daemon.stderr_text();
    EXPECT_NE(daemon.stderr_text().find("stopped reading"), std::string::npos) << daemon.stderr_text();
    // Cut loose, the stalled subscriber's queue is freed; it reconnects and
    // stalls again, so what is held goes up and down, past the bound by at
    // most what is published between two checks (without the bound: 8 MiB).
    EXPECT_LT(stat(alice, "feed_bytes"), 3 * k_bound);
    // The subscriber that reads lost nothing.
    ASSERT_EQ(channel_seqs.size(), static_cast<std::size_t>(k_messages));
    for (std::size_t i = 0; i < channel_seqs.size(); ++i) ASSERT_EQ(channel_seqs[i], i + 1);
}

TEST(FeedLimits, ASubscriberBehindButUnderTheBoundIsKept) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    testing::Feed stalled(context, alice, {"ch/news/"}, true);
    // 16 MiB: more than the kernel's socket buffers take, so the daemon
    // holds some of it, and well under the 64 MiB default bound.
    const std::string padding(16 * 1024, 'p');
    for (int i = 0; i < 1024; ++i) alice.publish("news", bus::pack_as_value(padding));
    EXPECT_TRUE(eventually([&] { return stat(alice, "feed_bytes") > 0; }));
    EXPECT_EQ(stat(alice, "feed_disconnects"), 0U);
    EXPECT_EQ(stat(alice, "feed_connections"), 1U);
}

TEST(FeedLimits, FeedConnectionsPastTheLimitAreRefused) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--max-feed-connections", "1"});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    testing::Feed first(context, alice, {"ch/"});
    zmq::socket_t second(context, zmq::socket_type::sub);
    second.set(zmq::sockopt::linger, 0);
    second.connect(daemon.feed_endpoint());
    EXPECT_TRUE(eventually([&] { return daemon.stderr_text().find("--max-feed-connections") != std::string::npos; }))
        << daemon.stderr_text();
    EXPECT_EQ(stat(alice, "feed_connections"), 1U);
    // The one let in is still served.
    alice.publish("news", bus::pack_as_value("still here"));
    EXPECT_TRUE(first.next(5s).has_value());
}

}  // namespace
}  // namespace botbus
