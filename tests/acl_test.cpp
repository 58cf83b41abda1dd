// Permissions (issue 12), as units: the patterns, the decision (admins, the
// default policy, a grant closing a channel to the bots it does not name),
// the feed's topic-prefix gate, and the ops on a :memory: store: acl.*
// admins only, every channel permission refused as forbidden with nothing
// appended, another bot's things, workflow definitions, runs held by their
// lease, approvers, and a rebuild that reproduces the rules.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "bus/core/acl.hpp"
#include "bus/core/handler.hpp"
#include "bus/protocol/codec.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "handler_support.hpp"

using namespace botbus::bus;
namespace store = botbus::store;
using nlohmann::json;

namespace {

using botbus::testing::as;
using botbus::testing::k_anonymous;

store::AclRule rule(std::string bot, std::string permission, std::string channel) {
    return store::AclRule{std::move(bot), std::move(permission), std::move(channel)};
}

const std::string k_alice = "alice";
const std::string k_bob = "bob";
const std::string k_root = "root";

TEST(AclPatterns, MatchExactNamesPrefixesAndEverything) {
    EXPECT_TRUE(pattern_matches("ops", "ops"));
    EXPECT_FALSE(pattern_matches("ops", "ops.x"));
    EXPECT_TRUE(pattern_matches("ops.*", "ops.x"));
    EXPECT_TRUE(pattern_matches("ops.*", "ops."));
    EXPECT_FALSE(pattern_matches("ops.*", "ops"));
    EXPECT_TRUE(pattern_matches("*", "anything"));
    EXPECT_TRUE(is_valid_pattern("*"));
    EXPECT_TRUE(is_valid_pattern("ops.*"));
    EXPECT_TRUE(is_valid_pattern("ops"));
    EXPECT_FALSE(is_valid_pattern(""));
    EXPECT_FALSE(is_valid_pattern("**"));
    EXPECT_FALSE(is_valid_pattern("o*s"));
    EXPECT_FALSE(is_valid_pattern("a/b"));
}

TEST(AclDecision, NoRuleFollowsTheDefaultPolicy) {
    AclIndex allow;
    EXPECT_TRUE(allow.allows(&k_alice, Permission::read, "news"));
    EXPECT_TRUE(allow.allows(nullptr, Permission::publish, "news"));
    AclIndex deny(AclPolicy{{}, false});
    EXPECT_FALSE(deny.allows(&k_alice, Permission::read, "news"));
    const auto refused = deny.check(&k_alice, Permission::read, "news");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, Errc::forbidden);
    EXPECT_EQ(refused->message, "bot 'alice' may not read channel 'news' (the default policy denies it)");
}

TEST(AclDecision, AGrantClosesTheChannelToEveryBotItDoesNotName) {
    AclIndex acl;
    acl.add(rule("alice", "read", "secret"));
    EXPECT_TRUE(acl.allows(&k_alice, Permission::read, "secret"));
    EXPECT_FALSE(acl.allows(&k_bob, Permission::read, "secret"));
    EXPECT_FALSE(acl.allows(nullptr, Permission::read, "secret"));
    EXPECT_TRUE(acl.allows(&k_bob, Permission::publish, "secret")) << "other permissions stay open";
    EXPECT_TRUE(acl.allows(&k_bob, Permission::read, "news")) << "other channels stay open";
    const auto refused = acl.check(&k_bob, Permission::read, "secret");
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->message, "bot 'bob' may not read channel 'secret' (no rule grants it)");
}

TEST(AclDecision, PatternsOnBothSidesAnonymousOnlyMatchesStarAndAdminsMayEverything) {
    AclIndex acl(AclPolicy{{"root"}, false});
    acl.add(rule("ops.*", "publish", "alerts.*"));
    acl.add(rule("*", "read", "public"));
    const std::string ops = "ops.pager";
    EXPECT_TRUE(acl.allows(&ops, Permission::publish, "alerts.disk"));
    EXPECT_FALSE(acl.allows(&k_alice, Permission::publish, "alerts.disk"));
    EXPECT_TRUE(acl.allows(nullptr, Permission::read, "public"));
    EXPECT_FALSE(acl.allows(nullptr, Permission::read, "other"));
    EXPECT_TRUE(acl.allows(&k_root, Permission::admin, "anything"));
    EXPECT_TRUE(acl.is_admin(&k_root));
    EXPECT_FALSE(acl.is_admin(nullptr));
    EXPECT_FALSE(acl.check_admin(&k_root, "x"));
    ASSERT_TRUE(acl.check_admin(nullptr, "grant permissions"));
    EXPECT_EQ(acl.check_admin(nullptr, "grant permissions")->message,
              "an anonymous connection may not grant permissions (admins only)");
}

TEST(AclTopics, AChannelTopicAsksForThatChannel) {
    AclIndex acl;
    acl.add(rule("alice", "read", "secret"));
    EXPECT_TRUE(acl.may_subscribe_topic(k_alice, "ch/secret/"));
    EXPECT_FALSE(acl.may_subscribe_topic(k_bob, "ch/secret/"));
    EXPECT_FALSE(acl.may_subscribe_topic(std::nullopt, "ch/secret/"));
    EXPECT_TRUE(acl.may_subscribe_topic(k_bob, "ch/news/"));
}

TEST(AclTopics, AShorterPrefixNeedsEveryChannelItCovers) {
    AclIndex acl;
    acl.add(rule("alice", "read", "secret"));
    for (const auto* prefix : {"", "c", "ch", "ch/", "ch/s", "ch/secret"}) {
        EXPECT_FALSE(acl.may_subscribe_topic(k_bob, prefix)) << prefix;
        EXPECT_TRUE(acl.may_subscribe_topic(k_alice, prefix)) << prefix;
    }
    EXPECT_TRUE(acl.may_subscribe_topic(k_bob, "ch/ops")) << "no rule overlaps ch/ops...";
    EXPECT_TRUE(acl.may_subscribe_topic(k_bob, "ch/secretx/")) << "another channel";

    AclIndex deny(AclPolicy{{"root"}, false});
    deny.add(rule("bob", "read", "ops.*"));
    EXPECT_TRUE(deny.may_subscribe_topic(k_bob, "ch/ops.")) << "one rule naming bob covers every ops. channel";
    EXPECT_TRUE(deny.may_subscribe_topic(k_bob, "ch/ops.x/"));
    EXPECT_FALSE(deny.may_subscribe_topic(k_bob, "ch/ops")) << "also covers 'opsx', which no rule grants";
    EXPECT_FALSE(deny.may_subscribe_topic(k_bob, "ch/"));
    EXPECT_FALSE(deny.may_subscribe_topic(k_alice, "ch/ops."));
    EXPECT_TRUE(deny.may_subscribe_topic(k_root, "")) << "an admin reads everything";
}

TEST(AclTopics, WorkflowSyncAndSystemTopicsAreOpen) {
    AclIndex deny(AclPolicy{{}, false});
    for (const auto* prefix : {"wf/", "wf/x/", "run/r1/", "sync/t/", "sys/channels/", "sys/dead_letters/", "s"}) {
        EXPECT_TRUE(deny.may_subscribe_topic(std::nullopt, prefix)) << prefix;
    }
    EXPECT_FALSE(deny.may_subscribe_topic(std::nullopt, "")) << "the empty prefix covers channels too";
}

// ---- the ops, on a :memory: store

class AclOps : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};
    ServerCounters m_counters;
    std::int64_t m_now = 1'700'000'000'000'000;
    std::unique_ptr<CommandHandler> m_handler = make_handler(true);

    std::unique_ptr<CommandHandler> make_handler(bool default_allow) {
        MessagingOptions messaging;
        messaging.acl = AclPolicy{{"root"}, default_allow, !default_allow};
        messaging.clock = [this] { return m_now; };
        return std::make_unique<CommandHandler>(m_store, m_counters, WorkflowOptions{10'000'000, [this] { return m_now; }},
                                                std::move(messaging));
    }

    Reply call(const Session& session, Request request) {
        return botbus::testing::call_in_batch(*m_handler, m_store, session, std::move(request));
    }
    json ok(const Session& session, Request request) {
        const auto op = op_of(request);
        const auto reply = call(session, std::move(request));
        EXPECT_TRUE(reply.ok) << op_name(op) << " failed: " << reply.error_name << ": " << reply.message;
        msgpack::sbuffer buffer;
        msgpack::pack(buffer, reply.handle.get());
        return json::from_msgpack(std::string(buffer.data(), buffer.size()));
    }
    // Fails with `code`, mentions `part`, and appends nothing (the log's last seq unchanged).
    void refused(const Session& session, Request request, Errc code, const std::string& part = {}) {
        const auto op = op_of(request);
        const auto before = m_store.last_seq();
        const auto reply = call(session, std::move(request));
        EXPECT_FALSE(reply.ok) << op_name(op) << " should have been refused";
        EXPECT_EQ(reply.error_name, errc_name(code)) << op_name(op) << ": " << reply.message;
        EXPECT_NE(reply.message.find(part), std::string::npos) << reply.message << " should say " << part;
        EXPECT_EQ(m_store.last_seq(), before) << op_name(op) << " appended although refused";
    }
    void grant(const std::string& bot, const std::string& permission, const std::string& channel) {
        ok(as("root"), AclGrantRequest{bot, permission, channel});
    }
    PublishRequest publish(const std::string& channel) {
        return PublishRequest{channel, std::nullopt, pack_as_value(std::string("hi")), std::nullopt, std::nullopt};
    }
};

TEST_F(AclOps, OnlyAdminsGrantRevokeAndList) {
    refused(as("alice"), AclGrantRequest{"alice", "read", "x"}, Errc::forbidden, "bot 'alice' may not grant");
    refused(k_anonymous, AclListRequest{}, Errc::not_identified);
    refused(as("alice"), AclListRequest{}, Errc::forbidden, "admins only");
    refused(as("alice"), AclRevokeRequest{"alice", "read", "x"}, Errc::forbidden);
    const auto granted = ok(as("root"), AclGrantRequest{"alice", "read", "x"});
    EXPECT_EQ(granted["changed"], true);
    EXPECT_EQ(granted["rule"], (json{{"bot", "alice"}, {"permission", "read"}, {"channel", "x"}}));
    const auto before = m_store.last_seq();
    EXPECT_EQ(ok(as("root"), AclGrantRequest{"alice", "read", "x"})["changed"], false);
    EXPECT_EQ(m_store.last_seq(), before) << "a rule granted again appends nothing";
    refused(as("root"), AclRevokeRequest{"bob", "read", "x"}, Errc::not_found, "no rule");
    refused(as("root"), AclGrantRequest{"bob", "write", "x"}, Errc::invalid_field, "permission");
    refused(as("root"), AclGrantRequest{"b*b", "read", "x"}, Errc::invalid_name, "bot");
    EXPECT_EQ(ok(as("root"), AclRevokeRequest{"alice", "read", "x"})["changed"], true);
    EXPECT_TRUE(m_handler->acl().rules().empty());
}

TEST_F(AclOps, ListPagesInRuleOrder) {
    for (int i = 0; i < 5; ++i) grant("bot" + std::to_string(i), "read", "c");
    AclListRequest request;
    request.limit = 2;
    auto page = ok(as("root"), request);
    ASSERT_EQ(page["rules"].size(), 2u);
    EXPECT_EQ(page["more"], true);
    std::vector<std::string> bots;
    for (;;) {
        for (const auto& r : page["rules"]) bots.push_back(r["bot"]);
        if (page["more"] == false) break;
        request.after_bot = page["rules"].back()["bot"];
        request.after_permission = page["rules"].back()["permission"];
        request.after_channel = page["rules"].back()["channel"];
        page = ok(as("root"), request);
    }
    EXPECT_EQ(bots, (std::vector<std::string>{"bot0", "bot1", "bot2", "bot3", "bot4"}));
    request.after_channel.reset();
    refused(as("root"), request, Errc::invalid_field, "go together");
}

TEST_F(AclOps, EveryChannelPermissionIsCheckedBothWays) {
    ok(as("alice"), ChannelCreateRequest{"secret", std::nullopt});
    grant("alice", "read", "secret");
    grant("alice", "publish", "secret");
    grant("alice", "admin", "secret");
    // publish
    ok(as("alice"), publish("secret"));
    refused(as("bob"), publish("secret"), Errc::forbidden, "bot 'bob' may not publish channel 'secret'");
    // read: history, subscribe in every form, fetch
    HistoryRequest history;
    history.channel = "secret";
    ok(as("alice"), history);
    refused(as("bob"), history, Errc::forbidden, "may not read channel 'secret'");
    refused(k_anonymous, history, Errc::forbidden, "an anonymous connection may not read");
    SubscribeRequest member;
    member.channel = "secret";
    refused(as("bob"), member, Errc::forbidden, "read");
    SubscribeRequest pulled;
    pulled.channel = "secret";
    pulled.durable = true;
    pulled.deliver = "pull";
    pulled.from_seq = 1;
    ok(as("alice"), pulled);
    refused(as("bob"), pulled, Errc::forbidden, "read");
    FetchRequest fetch;
    fetch.channel = "secret";
    ok(as("alice"), fetch);
    refused(as("bob"), fetch, Errc::forbidden, "read");
    // admin
    ChannelRetentionRequest retention{"secret", std::uint64_t{1000}, std::nullopt};
    refused(as("bob"), retention, Errc::forbidden, "may not admin channel 'secret'");
    ok(as("alice"), retention);
    refused(as("bob"), ChannelDeleteRequest{"secret"}, Errc::forbidden, "admin");
    refused(as("bob"), ChannelCreateRequest{"secret", std::nullopt}, Errc::forbidden, "admin");
    ok(as("root"), ChannelDeleteRequest{"secret"});
}

TEST_F(AclOps, ChannelsNoRuleCoversFollowTheDefaultPolicy) {
    ok(as("bob"), publish("open"));
    m_handler = make_handler(false);
    refused(as("bob"), publish("open"), Errc::forbidden, "the default policy denies it");
    ok(as("root"), publish("open"));
    grant("bob", "publish", "open");
    ok(as("bob"), publish("open"));
}

TEST_F(AclOps, AnotherBotsThingsAreOpenUnderAllowAndItsOwnOrAnAdminsUnderDeny) {
    MailboxRequest mailbox;
    mailbox.bot = "alice";
    ok(as("bob"), mailbox);  // the default policy allow: as before permissions
    m_handler = make_handler(false);
    ok(as("alice"), MailboxRequest{});
    ok(as("alice"), mailbox);
    ok(as("root"), mailbox);
    refused(as("bob"), mailbox, Errc::forbidden, "bot 'bob' may not read the mailbox of bot 'alice'");
    refused(k_anonymous, mailbox, Errc::forbidden, "anonymous");
    DlqListRequest dlq;
    dlq.bot = "alice";
    refused(as("bob"), dlq, Errc::forbidden, "dead letters");
    ok(as("alice"), dlq);
    SubscriptionsRequest subscriptions;
    subscriptions.bot = "alice";
    refused(as("bob"), subscriptions, Errc::forbidden, "subscriptions");
    ConsumersRequest consumers;
    consumers.bot = "alice";
    refused(as("bob"), consumers, Errc::forbidden, "durable subscriptions");
    ok(as("root"), consumers);
    HistoryRequest inbox;
    inbox.inbox = true;
    inbox.bot = "alice";
    refused(as("bob"), inbox, Errc::forbidden, "inbox");
    HistoryRequest conversation;
    conversation.peer = "bob";
    conversation.bot = "alice";
    ok(as("bob"), conversation);  // one of the two
    refused(as("carol"), conversation, Errc::forbidden, "conversations");
    // send, channel.list and subscribers stay open
    ok(as("bob"), SendRequest{"alice", std::nullopt, pack_as_value(std::string("hi")), std::nullopt, std::nullopt});
    ok(k_anonymous, ChannelListRequest{});
}

TEST_F(AclOps, ARebuildReproducesTheRulesAndARestartLoadsThem) {
    grant("alice", "read", "a");
    grant("ops.*", "publish", "alerts.*");
    grant("bob", "admin", "*");
    ok(as("root"), AclRevokeRequest{"bob", "admin", "*"});
    const auto check = m_store.verify_projections();
    EXPECT_TRUE(check.differences.empty()) << check.differences.front();
    const auto restarted = make_handler(true);
    EXPECT_EQ(restarted->acl().rules(), m_handler->acl().rules());
    EXPECT_EQ(restarted->acl().rules().size(), 2u);
}

}  // namespace
