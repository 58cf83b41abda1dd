// The feed gated by the permission rules (issue 12), against the real
// botbusd with real CURVE keys: the feed is an XPUB that applies a
// subscription only when the subscriber's bot (its key's User-Id) may read
// what it covers, and a rule change shuts the connections holding a
// subscription the rules now refuse, so their resubscription is asked again.
// Negative checks need no waiting window: the feed keeps order per
// subscriber, so an event that is not in front of a later one never came.
#include <gtest/gtest.h>

#include <algorithm>
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
using testing::CurveKeys;
using testing::FeedEvent;

bool any_on(const std::vector<FeedEvent>& events, const std::string& topic) {
    for (const auto& event : events) {
        if (event.topic == topic) return true;
    }
    return false;
}

class FeedPermissions : public ::testing::Test {
protected:
    FeedPermissions()
        : m_keys(m_dir.path(), {"root", "alice", "bob", "carol"}),
          m_daemon(m_dir.path() / "data", args()),
          m_root(client("root")),
          m_alice(client("alice")),
          m_bob(client("bob")) {}

    std::vector<std::string> args() const {
        auto args = m_keys.daemon_args();
        args.insert(args.end(), {"--admin", "root"});
        return args;
    }
    client::Client client(const std::string& bot) {
        client::Client c(m_context, m_keys.options_for(m_daemon, bot));
        c.hello(bot);
        return c;
    }
    void publish(const std::string& channel, const std::string& text) {
        m_root.publish(channel, bus::pack_as_value(text));
    }

    testing::TempDir m_dir;
    CurveKeys m_keys;
    testing::DaemonProcess m_daemon;
    zmq::context_t m_context;
    client::Client m_root;
    client::Client m_alice;
    client::Client m_bob;
    const std::string m_secret = bus::channel_topic("secret");
    const std::string m_news = bus::channel_topic("news");
};

TEST_F(FeedPermissions, ARestrictedChannelReachesOnlyTheBotsAllowedToReadIt) {
    m_root.call_ok(bus::AclGrantRequest{"alice", "read", "secret"});
    testing::Feed alice(m_context, m_alice, {m_secret, m_news});
    testing::Feed bob(m_context, m_bob, {m_secret, m_news});
    testing::Feed bob_everything(m_context, m_bob, {""});

    publish("secret", "for alice");
    publish("news", "for all");

    ASSERT_TRUE(alice.wait_for("message", 10s, m_secret)) << m_daemon.stderr_text();
    ASSERT_TRUE(alice.wait_for("message", 10s, m_news));
    ASSERT_TRUE(bob.wait_for("message", 10s, m_news)) << m_daemon.stderr_text();
    EXPECT_FALSE(any_on(bob.skipped(), m_secret)) << "bob's subscription to a channel he may not read was applied";
    // "" covers `secret` too, so it is refused whole: nothing at all arrives.
    const auto before_marker = bob_everything.sync(m_bob);
    EXPECT_TRUE(before_marker.empty()) << before_marker.size() << " events reached a refused subscription";
}

TEST_F(FeedPermissions, ARevokeShutsTheSubscribersConnectionAndItsResubscriptionIsRefused) {
    m_root.call_ok(bus::AclGrantRequest{"alice", "read", "secret"});
    m_root.call_ok(bus::AclGrantRequest{"carol", "read", "secret"});
    testing::Feed alice(m_context, m_alice, {m_secret, m_news});
    publish("secret", "before");
    ASSERT_TRUE(alice.wait_for("message", 10s, m_secret)) << m_daemon.stderr_text();

    m_root.call_ok(bus::AclRevokeRequest{"alice", "read", "secret"});

    // The old connection is shut; libzmq reconnects and subscribes again.
    // A feed.sync marker through the new connection says it is live.
    alice.sync(m_alice);
    ASSERT_TRUE(testing::eventually([&] {
        publish("news", "probe");
        return alice.wait_for("message", 200ms, m_news).has_value();
    })) << m_daemon.stderr_text();
    publish("secret", "after the revoke");
    publish("news", "after the revoke");
    ASSERT_TRUE(alice.wait_for("message", 10s, m_news));
    // Only probes may come before it, never the secret published first.
    EXPECT_FALSE(any_on(alice.skipped(), m_secret)) << "a revoked subscription still delivered";
}

}  // namespace
}  // namespace botbus
