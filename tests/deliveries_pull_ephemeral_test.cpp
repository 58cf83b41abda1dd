// Unit tests of bus::Deliveries for channel readers on a :memory: store: a
// bot's durable subscription that it fetches (pull), and one connection's
// ephemeral subscription. Pushed durable subscriptions are in
// deliveries_test.cpp. What each test asserts is what deliveries.hpp
// promises.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bus/core/deliveries.hpp"
#include "deliveries_support.hpp"

using namespace botbus::bus;
using namespace botbus::testing;
namespace store = botbus::store;

namespace {

// ---- pull readers

TEST_F(ChannelDeliveryTest, PullReturnsUpToMaxOldestFirstAndAtHeadOnceItReadToTheHead) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 5);
    d.restart(k_bob_news, pull_settings(), k_t0);

    auto plan = d.pull(k_bob_news, 2, visible(), k_t0);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[0], m[1]}));
    EXPECT_EQ(counts_of(plan.deliveries), (Counts{1, 1}));
    EXPECT_FALSE(plan.at_head);
    EXPECT_FALSE(plan.gone);
    EXPECT_EQ(plan.position, m[1]);

    plan = d.pull(k_bob_news, 2, m[2], k_t0);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[2]})) << "never past the visible seq";
    EXPECT_TRUE(plan.at_head);
    EXPECT_TRUE(plan.caught_up);

    plan = d.pull(k_bob_news, 2, visible(), k_t0);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[3], m[4]}));
    EXPECT_TRUE(plan.at_head) << "the fetch ended exactly on the newest message";
    EXPECT_FALSE(plan.caught_up) << "reported once";
    plan = d.pull(k_bob_news, 2, visible(), k_t0);
    EXPECT_TRUE(plan.empty());
    EXPECT_TRUE(plan.at_head);
    EXPECT_FALSE(plan.caught_up) << "reported once";
    EXPECT_EQ(plan.position, m[4]);
    EXPECT_EQ(seqs_of(d.in_flight(k_bob_news)), (Seqs{m[0], m[1], m[2], m[3], m[4]}));
}

TEST_F(ChannelDeliveryTest, PullKeepsAtMostTheWindowUnacknowledged) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 4);
    d.restart(k_bob_news, pull_settings(2), k_t0);
    EXPECT_EQ(seqs_of(d.pull(k_bob_news, 10, visible(), k_t0).deliveries), (Seqs{m[0], m[1]}));
    auto plan = d.pull(k_bob_news, 10, visible(), k_t0);
    EXPECT_TRUE(plan.empty());
    EXPECT_FALSE(plan.at_head);
    EXPECT_EQ(plan.position, m[1]);
    d.on_settled(consumer_ack("bob", "news", m[0]), k_t0);
    EXPECT_EQ(seqs_of(d.pull(k_bob_news, 10, visible(), k_t0).deliveries), (Seqs{m[2]}));
}

TEST_F(ChannelDeliveryTest, PullRedeliversUnacknowledgedMessagesFirstOnceTheirAckTimeoutPassed) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 3);
    d.restart(k_bob_news, pull_settings(), k_t0);
    EXPECT_EQ(seqs_of(d.pull(k_bob_news, 2, visible(), k_t0).deliveries), (Seqs{m[0], m[1]}));
    d.on_settled(ack_one("bob", "news", m[0]), k_t0 + 1);

    // Pulled messages have no timer: the next fetch takes them.
    EXPECT_FALSE(d.next_deadline().has_value());
    EXPECT_EQ(d.next_deadline(k_bob_news), std::optional<std::int64_t>(k_t0 + k_timeout));
    EXPECT_TRUE(d.expire(k_t0 + 10 * k_timeout).empty());

    auto plan = d.pull(k_bob_news, 10, visible(), k_t0 + k_timeout - 1);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[2]})) << "m[1] is not due yet";
    plan = d.pull(k_bob_news, 10, visible(), k_t0 + k_timeout);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[1]}));
    EXPECT_EQ(counts_of(plan.deliveries), (Counts{2}));
    EXPECT_EQ(redelivered_of(plan.deliveries), (Flags{true}));

    // Due ones come first, then new ones, up to max in all.
    const auto m3 = publish("news", "new");
    plan = d.pull(k_bob_news, 2, visible(), k_t0 + 3 * k_timeout);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[1], m[2]}));
    EXPECT_EQ(counts_of(plan.deliveries), (Counts{3, 2}));
    plan = d.pull(k_bob_news, 2, visible(), k_t0 + 3 * k_timeout);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m3}));
    EXPECT_EQ(counts_of(plan.deliveries), (Counts{1}));
}

TEST_F(ChannelDeliveryTest, PullDeadLettersAfterMaxDeliveries) {
    Deliveries d(m_store, delivery_options(k_wide, 2));
    subscribe_durable("bob", "news");
    const auto m = publish("news", "poison");
    d.restart(k_bob_news, pull_settings(), k_t0);
    EXPECT_EQ(counts_of(d.pull(k_bob_news, 10, visible(), k_t0).deliveries), (Counts{1}));
    EXPECT_EQ(counts_of(d.pull(k_bob_news, 10, visible(), k_t0 + k_timeout).deliveries), (Counts{2}));
    auto plan = d.pull(k_bob_news, 10, visible(), k_t0 + 2 * k_timeout);
    EXPECT_TRUE(plan.deliveries.empty());
    ASSERT_EQ(plan.dead.size(), 1U);
    EXPECT_EQ(plan.dead[0].seq, m);
    EXPECT_EQ(plan.dead[0].deliveries, 2U);
    EXPECT_TRUE(d.in_flight(k_bob_news).empty());
    EXPECT_TRUE(d.pull(k_bob_news, 10, visible(), k_t0 + 9 * k_timeout).empty()) << "not handed back twice";
}

TEST_F(ChannelDeliveryTest, PullIsGoneOnceTheDurableSubscriptionIsDeleted) {
    Deliveries d(m_store, delivery_options());
    const Reader never{"news", "carol", ""};
    auto plan = d.pull(never, 10, visible(), k_t0);
    EXPECT_TRUE(plan.gone) << "never subscribed";
    EXPECT_FALSE(d.knows(never));

    subscribe_durable("bob", "news");
    publish_many("news", 2);
    // A first fetch without a subscribe of this connection starts the reader.
    EXPECT_EQ(d.pull(k_bob_news, 10, visible(), k_t0).deliveries.size(), 2U);
    const auto status = d.status(k_bob_news);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->pull);
    EXPECT_FALSE(status->online);
    EXPECT_EQ(status->last_ack_us, k_t0);

    unsubscribe_durable("bob", "news");
    plan = d.pull(k_bob_news, 10, visible(), k_t0 + k_timeout);
    EXPECT_TRUE(plan.gone);
    EXPECT_TRUE(plan.deliveries.empty()) << "the due redeliveries are not handed out";
    EXPECT_FALSE(d.knows(k_bob_news));
}

// ---- ephemeral readers

TEST_F(ChannelDeliveryTest, EphemeralReaderMovesForwardWithoutAcksAndRedeliversNothing) {
    Deliveries d(m_store, delivery_options());
    const auto m = publish_many("news", 3);
    const Reader conn{"news", "bob", "conn-1"};
    d.restart(conn, ephemeral_settings(m[0], 2), k_t0);

    auto plan = d.pump(conn, visible(), k_t0);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[1], m[2]}));
    EXPECT_EQ(counts_of(plan.deliveries), (Counts{1, 1}));
    EXPECT_EQ(redelivered_of(plan.deliveries), (Flags{false, false}));
    EXPECT_TRUE(plan.caught_up) << "the pass ended exactly on the newest message";
    EXPECT_TRUE(d.in_flight(conn).empty()) << "nothing waits for an ack";
    EXPECT_FALSE(d.next_deadline().has_value());
    EXPECT_FALSE(d.next_deadline(conn).has_value());
    EXPECT_TRUE(d.expire(k_t0 + 100 * k_timeout).empty());

    // No ack needed for more: the window bounds one pass only.
    plan = d.pump(conn, visible(), k_t0);
    EXPECT_TRUE(plan.deliveries.empty());
    EXPECT_FALSE(plan.caught_up) << "reported once";
    EXPECT_TRUE(plan.at_head);
    const auto m3 = publish("news", "new");
    plan = d.pump(conn, visible(), k_t0);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m3}));
    EXPECT_FALSE(plan.caught_up);
    EXPECT_TRUE(d.pump(conn, visible(), k_t0 + 100 * k_timeout).empty()) << "nothing goes out twice";

    const auto status = d.status(conn);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->position, m3);
    EXPECT_EQ(status->in_flight, 0U);
    EXPECT_TRUE(status->online);
}

TEST_F(ChannelDeliveryTest, EphemeralReaderIgnoresTheBotsDurableSettlements) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 2);
    consumer_ack("bob", "news", m[1]);
    const Reader conn{"news", "bob", "conn-1"};
    d.restart(conn, ephemeral_settings(0), k_t0);
    EXPECT_EQ(seqs_of(d.pump(conn, visible(), k_t0).deliveries), (Seqs{m[0], m[1]}));
    const auto settled = d.on_settled(consumer_ack("bob", "news", m[1]), k_t0);
    EXPECT_EQ(settled, std::optional<Reader>(k_bob_news)) << "the durable reader, not the connection";
}

TEST_F(ChannelDeliveryTest, TwoConnectionsOfOneBotAreIndependentReaders) {
    Deliveries d(m_store, delivery_options());
    const auto m = publish_many("news", 3);
    const Reader first{"news", "bob", "conn-1"};
    const Reader second{"news", "bob", "conn-2"};
    d.restart(first, ephemeral_settings(m[0]), k_t0);
    d.restart(second, ephemeral_settings(m[1]), k_t0);
    EXPECT_EQ(seqs_of(d.pump(first, visible(), k_t0).deliveries), (Seqs{m[1], m[2]}));
    EXPECT_EQ(seqs_of(d.pump(second, visible(), k_t0).deliveries), (Seqs{m[2]}));

    // Going offline forgets an ephemeral reader; the other one reads on.
    d.offline(first);
    EXPECT_FALSE(d.knows(first));
    ASSERT_TRUE(d.knows(second));
    const auto m3 = publish("news", "new");
    EXPECT_EQ(seqs_of(d.pump(second, visible(), k_t0).deliveries), (Seqs{m3}));
}

TEST_F(ChannelDeliveryTest, ReadersOfAChannelAreItsPushedReaders) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    subscribe_durable("carol", "news");
    subscribe_durable("dave", "sports");
    const Reader bob_conn{"news", "bob", "conn-1"};
    const Reader carol_pull{"news", "carol", ""};
    d.restart(k_bob_news, push_settings(), k_t0);
    d.restart(bob_conn, ephemeral_settings(0), k_t0);
    d.restart(carol_pull, pull_settings(), k_t0);
    d.restart(Reader{"sports", "dave", ""}, push_settings(), k_t0);
    d.restart_mailbox("bob", k_t0);
    EXPECT_EQ(d.readers_of("news"), (std::vector<Reader>{k_bob_news, bob_conn})) << "fetched readers are not pushed";
    EXPECT_EQ(d.readers_of("sports"), (std::vector<Reader>{Reader{"sports", "dave", ""}}));
    EXPECT_TRUE(d.readers_of("weather").empty());
    d.forget(k_bob_news);
    EXPECT_EQ(d.readers_of("news"), (std::vector<Reader>{bob_conn}));
}

}  // namespace
