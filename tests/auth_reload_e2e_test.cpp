// SIGHUP re-reads the CURVE allowlist (issue 12): a removed key's command
// and feed connections are closed while the others stay served, and a
// broken file keeps the list in force.
#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <string>

#include "bus/protocol/codec.hpp"
#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "feed_support.hpp"
#include "temp_dir.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using testing::CurveKeys;
using testing::eventually;
using testing::stat;

bool answers_within(client::Client& client, client::Millis timeout) {
    const auto id = client.send_request(bus::PingRequest{});
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto reply = client.receive_reply(testing::until(deadline));
        if (reply && reply->id == id) return true;
    }
    return false;
}

TEST(CurveReload, ARemovedKeyLosesItsConnectionsWhileTheOthersStayServed) {
    testing::TempDir dir;
    CurveKeys keys(dir.path(), {"alice", "bob"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    zmq::context_t context;
    client::Client alice(context, keys.options_for(daemon, "alice"));
    alice.hello("alice");
    client::Client bob(context, keys.options_for(daemon, "bob"));
    bob.hello("bob");
    testing::Feed alice_feed(context, alice, {bus::channel_topic("news")});
    testing::Feed bob_feed(context, bob, {bus::channel_topic("news")});
    ASSERT_EQ(stat(alice, "auth_disconnects"), 0U);

    keys.write_allowlist({"alice"});
    ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);

    // Bob's command and feed connections are shut, counted and logged.
    EXPECT_TRUE(eventually([&] { return stat(alice, "auth_disconnects") >= 2; })) << daemon.stderr_text();
    EXPECT_NE(daemon.stderr_text().find("allowlist reloaded"), std::string::npos) << daemon.stderr_text();
    // Bob's client reconnects by itself, and is refused: no answer.
    EXPECT_FALSE(answers_within(bob, 1500ms));
    EXPECT_TRUE(eventually([&] { return stat(alice, "auth_refusals") >= 1; }));
    // Alice is served as before, on both sockets.
    alice.publish("news", bus::pack_as_value("still here"));
    EXPECT_TRUE(alice_feed.wait_for("message", 10s));
}

TEST(CurveReload, AKeyThatNowNamesAnotherBotLosesItsConnection) {
    testing::TempDir dir;
    CurveKeys keys(dir.path(), {"alice", "bob"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    zmq::context_t context;
    client::Client alice(context, keys.options_for(daemon, "alice"));
    alice.hello("alice");
    client::Client bob(context, keys.options_for(daemon, "bob"));
    bob.hello("bob");

    keys.write_allowlist({"alice", "bob"}, {{"bob", "robert"}});
    ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);

    EXPECT_TRUE(eventually([&] { return stat(alice, "auth_disconnects") >= 1; })) << daemon.stderr_text();
    // Reconnected under its new name, the key may say hello only as robert.
    client::Client robert(context, keys.options_for(daemon, "bob"));
    EXPECT_THROW(robert.hello("bob"), client::ReplyError);
    robert.hello("robert");
    EXPECT_EQ(robert.publish("news", bus::pack_as_value("renamed")).stream_seq, 1U);
}

TEST(CurveReload, ABrokenAllowlistKeepsTheOldOneInForce) {
    testing::TempDir dir;
    CurveKeys keys(dir.path(), {"alice", "bob"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    zmq::context_t context;
    client::Client alice(context, keys.options_for(daemon, "alice"));
    alice.hello("alice");

    {
        std::ofstream out(keys.allowlist_file(), std::ios::trunc);
        out << "alice = " << keys.pair("alice").public_key << "\nbob = not-a-key\n";
    }
    ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);

    ASSERT_TRUE(eventually([&] { return daemon.stderr_text().find("keeping the allowlist") != std::string::npos; }));
    const auto log = daemon.stderr_text();
    EXPECT_NE(log.find(keys.allowlist_file().string() + ":2"), std::string::npos) << log;
    // Bob, on the old list only, still connects and is served.
    client::Client bob(context, keys.options_for(daemon, "bob"));
    bob.hello("bob");
    EXPECT_EQ(stat(bob, "auth_disconnects"), 0U);
}

}  // namespace
}  // namespace botbus
