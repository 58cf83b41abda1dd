// Permissions (issue 12) against the real botbusd, over the wire: each
// channel permission both ways (publish; read as history, live delivery,
// durable push, pull/fetch, catch-up from a seq; admin), another bot's
// mailbox and dead letters, acl ops by a non-admin, a revoke that stops
// live delivery to a connected subscriber without a restart, a refused op
// that appends nothing, `botbusd rebuild` after grants and revokes, and a
// second bot that cannot complete or step a run it does not hold.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "feed_support.hpp"
#include "temp_dir.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::options_for;

using Json = nlohmann::json;

bus::PackedValue text(const std::string& s) { return bus::pack_as_value(s); }

bus::PackedValue packed(const Json& value) {
    const auto bytes = Json::to_msgpack(value);
    return bus::PackedValue{std::string(bytes.begin(), bytes.end())};
}

class Permissions : public ::testing::Test {
protected:
    void SetUp() override { start(); }
    void start(std::vector<std::string> args = {"--admin", "root"}) {
        m_daemon = std::make_unique<testing::DaemonProcess>(m_dir.path() / "data", std::move(args));
        m_root = bot("root");
        m_alice = bot("alice");
        m_bob = bot("bob");
    }
    void restart(std::vector<std::string> args) {
        ASSERT_EQ(m_daemon->terminate(), 0) << m_daemon->stderr_text();
        m_daemon.reset();
        start(std::move(args));
    }
    std::unique_ptr<client::Client> bot(const std::string& name) {
        auto client = std::make_unique<client::Client>(m_context, options_for(*m_daemon));
        client->hello(name);
        return client;
    }
    void grant(const std::string& bot, const std::string& permission, const std::string& channel) {
        m_root->call_ok(bus::AclGrantRequest{bot, permission, channel});
    }
    std::uint64_t last_seq() { return testing::u64_field(m_root->call_ok(bus::StatsRequest{}), "last_seq"); }
    // The request is refused `forbidden` (or `code`), naming `part`, and the log does not move.
    void refused(client::Client& client, const bus::Request& request, const std::string& part,
                 const std::string& code = "forbidden") {
        const auto before = last_seq();
        const auto reply = client.call(request);
        EXPECT_FALSE(reply.ok) << bus::op_name(bus::op_of(request)) << " should have been refused";
        EXPECT_EQ(reply.error_name, code) << reply.message;
        EXPECT_NE(reply.message.find(part), std::string::npos) << reply.message;
        EXPECT_EQ(last_seq(), before) << "a refused op appended";
    }
    // No push is waiting for the client: a ping's reply comes after any
    // push the daemon released before it.
    static bool nothing_pushed(client::Client& client) {
        client.call_ok(bus::PingRequest{});
        return !client.next_push(client::Millis{0});
    }
    static bus::Message next_message(client::Client& client) {
        const auto deadline = Clock::now() + 10s;
        while (Clock::now() < deadline) {
            auto push = client.next_push(testing::until(deadline));
            if (push && push->event == "message") return *push;
        }
        ADD_FAILURE() << "no message pushed";
        return {};
    }
    static void wait_caught_up(client::Client& client) {
        const auto deadline = Clock::now() + 10s;
        while (Clock::now() < deadline) {
            auto push = client.next_push(testing::until(deadline));
            if (push && push->event == "caught_up") return;
        }
        ADD_FAILURE() << "no caught_up marker";
    }
    static bus::SubscribeRequest subscribe(const std::string& channel, bool durable = false,
                                           const std::string& deliver = "push") {
        bus::SubscribeRequest request;
        request.channel = channel;
        request.deliver = deliver;
        if (durable) request.durable = true;
        return request;
    }

    testing::TempDir m_dir;
    zmq::context_t m_context;
    std::unique_ptr<testing::DaemonProcess> m_daemon;
    std::unique_ptr<client::Client> m_root, m_alice, m_bob;
};

TEST_F(Permissions, PublishAndChannelAdminAreCheckedBothWays) {
    grant("alice", "publish", "secret");
    grant("alice", "admin", "secret");
    m_alice->publish("secret", text("one"));
    refused(*m_bob, bus::PublishRequest{"secret", std::nullopt, text("x"), std::nullopt, std::nullopt},
            "bot 'bob' may not publish channel 'secret' (no rule grants it)");
    refused(*m_bob, bus::ChannelRetentionRequest{"secret", std::uint64_t{10}, std::nullopt},
            "bot 'bob' may not admin channel 'secret'");
    refused(*m_bob, bus::ChannelDeleteRequest{"secret"}, "may not admin");
    m_alice->call_ok(bus::ChannelRetentionRequest{"secret", std::uint64_t{10}, std::nullopt});
    m_alice->call_ok(bus::ChannelDeleteRequest{"secret"});
    m_bob->publish("open", text("anyone may, under the default policy allow"));
}

TEST_F(Permissions, ReadIsCheckedOnHistoryLiveDeliveryDurableSubscriptionsAndCatchUp) {
    grant("alice", "read", "secret");
    const auto first = m_root->publish("secret", text("one"));
    bus::HistoryRequest history;
    history.channel = "secret";
    EXPECT_EQ(m_alice->history(history).messages.size(), 1u);
    refused(*m_bob, history, "bot 'bob' may not read channel 'secret'");
    // live delivery
    m_alice->call_ok(subscribe("secret"));
    refused(*m_bob, subscribe("secret"), "may not read");
    // durable push and pull, and catch-up from a seq
    auto catch_up = subscribe("secret", true, "pull");
    catch_up.from_seq = first.seq;
    refused(*m_bob, catch_up, "may not read");
    refused(*m_bob, subscribe("secret", true), "may not read");
    bus::FetchRequest fetch;
    fetch.channel = "secret";
    refused(*m_bob, fetch, "may not read");
    auto puller = bot("alice");
    puller->call_ok(catch_up);
    const auto fetched = puller->fetch("secret", 10);
    ASSERT_EQ(fetched.messages.size(), 1u);
    EXPECT_EQ(fetched.messages[0].seq, first.seq);
    // the subscription delivers live
    m_root->publish("secret", text("two"));
    EXPECT_EQ(next_message(*m_alice).channel, "secret");
    // anonymous connections match only '*'
    client::Client anonymous(m_context, options_for(*m_daemon));
    refused(anonymous, history, "an anonymous connection may not read");
}

TEST_F(Permissions, ARevokeStopsLiveDeliveryToAConnectedSubscriber) {
    grant("alice", "read", "live");
    grant("bob", "read", "live");
    m_alice->call_ok(subscribe("live"));
    m_bob->call_ok(subscribe("live", true));  // durable push
    m_root->publish("live", text("before"));
    EXPECT_EQ(next_message(*m_alice).seq, next_message(*m_bob).seq);

    m_root->call_ok(bus::AclRevokeRequest{"bob", "read", "live"});
    const auto after = m_root->publish("live", text("after"));
    EXPECT_EQ(next_message(*m_alice).seq, after.seq) << "a reader still allowed gets it";
    EXPECT_TRUE(nothing_pushed(*m_bob)) << "the revoked reader is pushed nothing more";
    refused(*m_bob, subscribe("live", true), "may not read");

    // A grant that closes a channel ends the subscriptions of the bots it does not name.
    auto carol = bot("carol");
    carol->call_ok(subscribe("news"));
    wait_caught_up(*carol);
    grant("alice", "read", "news");
    m_root->publish("news", text("closed now"));
    EXPECT_TRUE(nothing_pushed(*carol));
}

TEST_F(Permissions, UnderDenyAnotherBotsMailboxAndDeadLettersAreItsOwnOrAnAdmins) {
    bus::MailboxRequest mailbox;
    mailbox.bot = "alice";
    m_bob->call_ok(mailbox);  // the default policy allow: as before permissions
    restart({"--admin", "root", "--default-policy", "deny"});
    refused(*m_bob, mailbox, "bot 'bob' may not read the mailbox of bot 'alice'");
    m_alice->call_ok(mailbox);
    m_root->call_ok(mailbox);
    bus::DlqListRequest dlq;
    dlq.bot = "alice";
    refused(*m_bob, dlq, "dead letters");
    m_root->call_ok(dlq);
    m_bob->send("alice", text("send stays open"));
    refused(*m_bob, bus::PublishRequest{"open", std::nullopt, text("x"), std::nullopt, std::nullopt},
            "the default policy denies it");
}

TEST_F(Permissions, AclOpsAreForAdminsAndARebuildReproducesTheRules) {
    refused(*m_alice, bus::AclGrantRequest{"alice", "admin", "*"}, "bot 'alice' may not grant permissions");
    refused(*m_alice, bus::AclListRequest{}, "admins only");
    grant("alice", "read", "a");
    grant("ops.*", "publish", "alerts.*");
    m_root->call_ok(bus::AclRevokeRequest{"alice", "read", "a"});
    refused(*m_root, bus::AclRevokeRequest{"alice", "read", "a"}, "no rule", "not_found");
    const auto listed = m_root->call_ok(bus::AclListRequest{});
    ASSERT_EQ(listed.find("rules")->via.array.size, 1u);

    ASSERT_EQ(m_daemon->terminate(), 0) << m_daemon->stderr_text();
    m_daemon.reset();
    auto args = testing::store_args(m_dir.path() / "data");
    args.insert(args.begin(), "rebuild");
    args.insert(args.end(), {"--log-level", "warn"});
    const auto rebuild = testing::run_botbusd(args);
    EXPECT_EQ(rebuild.exit_code, 0) << rebuild.stdout_text << rebuild.stderr_text;
    EXPECT_NE(rebuild.stdout_text.find("match"), std::string::npos) << rebuild.stdout_text;

    start();  // the rules survive a restart
    refused(*m_alice, bus::PublishRequest{"alerts.disk", std::nullopt, text("x"), std::nullopt, std::nullopt},
            "no rule grants it");
}

TEST_F(Permissions, ABotWithoutTheLeaseCannotCompleteFailPauseOrStepAnotherBotsRun) {
    const Json definition{{"name", "deploy"}, {"approvers", {"carol"}}, {"steps", {{{"id", "build"}}}}};
    const auto put = m_alice->call_ok(bus::WorkflowPutRequest{packed(definition), std::nullopt, std::nullopt, std::nullopt});
    bus::RunStartRequest start;
    start.workflow_id = Json::from_msgpack(bus::pack_value(*put.find("workflow_id")).bytes).get<std::string>();
    const auto started = m_alice->call_ok(start);
    const auto run_id = Json::from_msgpack(bus::pack_value(*started.find("run_id")).bytes).get<std::string>();
    refused(*m_bob, bus::RunCompleteRequest{run_id, std::nullopt}, "held by 'alice'", "not_lease_owner");
    refused(*m_bob, bus::RunFailRequest{run_id, "no"}, "held by 'alice'", "not_lease_owner");
    refused(*m_bob, bus::RunPauseRequest{run_id}, "held by 'alice'", "not_lease_owner");
    bus::StepStartRequest step;
    step.run_id = run_id;
    step.step_id = "build";
    refused(*m_bob, step, "held by 'alice'", "not_lease_owner");
    refused(*m_bob, bus::RunCancelRequest{run_id}, "approvers");
    m_alice->call_ok(step);
    m_alice->call_ok(bus::StepWaitApprovalRequest{run_id, "build"});
    refused(*m_bob, bus::StepApproveRequest{run_id, "build"}, "approvers");
    bot("carol")->call_ok(bus::StepApproveRequest{run_id, "build"});
    m_alice->call_ok(bus::RunCompleteRequest{run_id, std::nullopt});
}

}  // namespace
}  // namespace botbus
