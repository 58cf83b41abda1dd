// CURVE authentication against the real botbusd with real keys (issue 12):
// a listed key works on both sockets as its own bot, an unknown key and a
// plaintext client get nothing, a key cannot hello as another bot, and an
// unauthenticated daemon refuses a non-loopback endpoint unless --insecure.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "bus/protocol/codec.hpp"
#include "client/client.hpp"
#include "client/curve_keys.hpp"
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

// How long a refused client is given to get an answer it must not get.
constexpr auto k_refusal_window = 1500ms;

// Whether a ping is answered within `within`: the refusal window when an
// answer is not expected, the suite's usual 10 s when it is (a CURVE
// handshake on a loaded machine can take longer than the window).
bool answers(client::ClientOptions options, zmq::context_t& context,
             std::chrono::milliseconds within = k_refusal_window) {
    options.timeout = std::chrono::duration_cast<client::Millis>(within);
    client::Client probe(context, options);
    try {
        probe.call(bus::PingRequest{});
        return true;
    } catch (const client::TimeoutError&) {
        return false;
    }
}

TEST(CurveAuth, AListedKeyPublishesAsItsBotAndReadsTheFeedAndHistory) {
    testing::TempDir dir;
    CurveKeys keys(dir.path(), {"alice", "bob"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    zmq::context_t context;
    client::Client alice(context, keys.options_for(daemon, "alice"));
    alice.hello("alice");
    client::Client bob(context, keys.options_for(daemon, "bob"));
    bob.hello("bob");
    testing::Feed feed(context, bob, {bus::channel_topic("news")});
    client::Subscription follow(bob, "news", 0);

    const auto ack = alice.publish("news", bus::pack_as_value("signed"));

    auto live = feed.wait_for("message", 10s);
    ASSERT_TRUE(live) << daemon.stderr_text();
    EXPECT_EQ(live->event["from"], "alice");
    auto followed = follow.next(10s);
    ASSERT_TRUE(followed);
    EXPECT_EQ(followed->seq, ack.seq);
    EXPECT_EQ(followed->from, "alice");
    const auto history = testing::full_history(bob, "news");
    ASSERT_EQ(history.size(), 1U);
    EXPECT_EQ(history[0].from, "alice");
    EXPECT_EQ(stat(alice, "auth_refusals"), 0U);
}

TEST(CurveAuth, AnUnknownKeyGetsNoAnswerAndIsCountedAsARefusal) {
    testing::TempDir dir;
    CurveKeys keys(dir.path(), {"alice"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    zmq::context_t context;
    const auto stranger = client::make_key_pair();

    EXPECT_FALSE(answers(keys.options_for(daemon, stranger), context));

    client::Client alice(context, keys.options_for(daemon, "alice"));
    alice.hello("alice");
    EXPECT_TRUE(eventually([&] { return stat(alice, "auth_refusals") >= 1; })) << daemon.stderr_text();
    EXPECT_NE(daemon.stderr_text().find("is not on the allowlist"), std::string::npos);
}

TEST(CurveAuth, AnUnknownKeyReceivesNothingFromTheFeed) {
    testing::TempDir dir;
    CurveKeys keys(dir.path(), {"alice"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    zmq::context_t context;
    client::Client alice(context, keys.options_for(daemon, "alice"));
    alice.hello("alice");
    const auto before = stat(alice, "auth_refusals");
    zmq::socket_t stranger(context, zmq::socket_type::sub);
    stranger.set(zmq::sockopt::linger, 0);
    client::use_curve(stranger, {client::make_key_pair(), keys.server().public_key});
    stranger.set(zmq::sockopt::subscribe, "");
    stranger.connect(daemon.feed_endpoint());

    // Its handshake is refused (counted) before anything is published.
    ASSERT_TRUE(eventually([&] { return stat(alice, "auth_refusals") > before; })) << daemon.stderr_text();
    alice.publish("news", bus::pack_as_value("not for strangers"));
    zmq::pollitem_t item{stranger.handle(), 0, ZMQ_POLLIN, 0};
    EXPECT_EQ(zmq::poll(&item, 1, std::chrono::duration_cast<std::chrono::milliseconds>(k_refusal_window)), 0);
}

TEST(CurveAuth, AKeyCannotSayHelloAsAnotherBot) {
    testing::TempDir dir;
    CurveKeys keys(dir.path(), {"alice", "bob"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    zmq::context_t context;
    client::Client alice(context, keys.options_for(daemon, "alice"));

    try {
        alice.hello("bob");
        FAIL() << "hello as another bot was accepted";
    } catch (const client::ReplyError& e) {
        EXPECT_EQ(e.code(), bus::Errc::forbidden);
        EXPECT_NE(std::string(e.what()).find("belongs to bot alice"), std::string::npos) << e.what();
    }
    // Nothing was bound: publishing still needs a hello, and the right one works.
    EXPECT_THROW(alice.publish("news", bus::pack_as_value("x")), client::ReplyError);
    alice.hello("alice");
    EXPECT_EQ(alice.publish("news", bus::pack_as_value("x")).stream_seq, 1U);
}

TEST(CurveAuth, APlaintextClientCannotTalkToAnAuthenticatedDaemon) {
    testing::TempDir dir;
    CurveKeys keys(dir.path(), {"alice"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    zmq::context_t context;

    EXPECT_FALSE(answers(testing::options_for(daemon), context));
    // The same daemon answers its listed key.
    EXPECT_TRUE(answers(keys.options_for(daemon, "alice"), context, 10000ms)) << daemon.stderr_text();
}

TEST(CurveAuth, TheCliTalksToAnAuthenticatedDaemonWithItsKeyFiles) {
    testing::TempDir dir;
    CurveKeys keys(dir.path(), {"alice"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    const std::vector<std::string> endpoints{"--command-endpoint", daemon.command_endpoint(), "--feed-endpoint",
                                             daemon.feed_endpoint(), "--timeout", "10000"};
    auto args = endpoints;
    args.insert(args.end(), {"--curve-key", keys.key_file("alice").string(), "--server-key",
                             keys.server_key_file().string() + ".pub", "--as", "alice", "publish", "news", "hi"});
    const auto published = testing::run_program(BOTBUS_CLI_PATH, args);
    EXPECT_EQ(published.exit_code, 0) << published.stderr_text << daemon.stderr_text();
    EXPECT_NE(published.stdout_text.find("channel_seq=1"), std::string::npos) << published.stdout_text;

    // The same from the environment, the server key as its 40 characters.
    auto env_args = endpoints;
    env_args.insert(env_args.end(), {"--as", "alice", "publish", "news", "again"});
    const auto from_env = testing::run_program(
        BOTBUS_CLI_PATH, env_args, 20s,
        {"BOTBUS_KEY=" + keys.key_file("alice").string(), "BOTBUS_SERVER_KEY=" + keys.server().public_key});
    EXPECT_EQ(from_env.exit_code, 0) << from_env.stderr_text;

    // Saying hello as another bot is refused by name.
    auto other = endpoints;
    other.insert(other.end(), {"--curve-key", keys.key_file("alice").string(), "--server-key",
                               keys.server().public_key, "--as", "mallory", "publish", "news", "x"});
    const auto refused = testing::run_program(BOTBUS_CLI_PATH, other);
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.stderr_text.find("forbidden"), std::string::npos) << refused.stderr_text;
}

TEST(CurveAuth, WithoutAuthANonLoopbackEndpointIsRefusedUnlessInsecure) {
    testing::TempDir dir;
    const auto refused = testing::run_botbusd(
        {"--data-dir", (dir.path() / "data").string(), "--command-endpoint", "tcp://0.0.0.0:0", "--feed-endpoint",
         "tcp://127.0.0.1:0"});
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.stderr_text.find("--auth curve"), std::string::npos) << refused.stderr_text;
    EXPECT_NE(refused.stderr_text.find("--insecure"), std::string::npos) << refused.stderr_text;

    testing::DaemonProcess daemon(dir.path() / "data", {"--command-endpoint", "tcp://0.0.0.0:*", "--insecure"});
    EXPECT_NE(daemon.stderr_text().find("--insecure"), std::string::npos) << daemon.stderr_text();
    zmq::context_t context;
    auto options = testing::options_for(daemon);
    options.command_endpoint = "tcp://127.0.0.1:" + daemon.command_endpoint().substr(
                                                         daemon.command_endpoint().rfind(':') + 1);
    client::Client anyone(context, options);
    EXPECT_EQ(anyone.call_ok(bus::PingRequest{}).find("pong") != nullptr, true);
}

// With authentication a bot is who its key says, so its mailbox is its own
// even under the default policy allow (owner rules: PROTOCOL.md Permissions).
TEST(CurveAuth, AnotherBotsMailboxIsClosedUnderTheDefaultPolicyAllow) {
    testing::TempDir dir;
    CurveKeys keys(dir.path(), {"alice", "bob"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    zmq::context_t context;
    client::Client alice(context, keys.options_for(daemon, "alice"));
    alice.hello("alice");
    client::Client bob(context, keys.options_for(daemon, "bob"));
    bob.hello("bob");
    bus::MailboxRequest alices;
    alices.bot = "alice";

    try {
        bob.call_ok(alices);
        FAIL() << "bob read alice's mailbox";
    } catch (const client::ReplyError& e) {
        EXPECT_EQ(e.code(), bus::Errc::forbidden) << e.what();
    }
    EXPECT_NO_THROW(alice.call_ok(alices));
}

}  // namespace
}  // namespace botbus
