// Unit tests of bus::Deliveries for channel readers on a :memory: store: a
// bot's durable subscription that is pushed to it, what every reader reports
// (status, in flight, deadlines), and a failed settlement batch. Pulled and
// ephemeral subscriptions are in deliveries_pull_ephemeral_test.cpp, mailbox
// readers in mailbox_delivery_test.cpp. What each test asserts is what
// deliveries.hpp promises.
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

// ---- durable push readers

TEST_F(ChannelDeliveryTest, DurablePushStartsAfterItsFloorInSeqOrderAndNeverPastTheVisibleSeq) {
    Deliveries d(m_store, delivery_options());
    const auto before = publish("news", "before the subscription");
    subscribe_durable("bob", "news", before);
    const auto m1 = publish("news", "one");
    publish("sports", "another channel");
    const auto m2 = publish("news", "two", "carol");
    const auto m3 = publish("news", "three");

    d.restart(k_bob_news, push_settings(), k_t0);
    auto plan = d.pump(k_bob_news, m2, k_t0);
    EXPECT_EQ(plan.reader, k_bob_news);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m1, m2}));
    EXPECT_EQ(counts_of(plan.deliveries), (Counts{1, 1}));
    EXPECT_EQ(redelivered_of(plan.deliveries), (Flags{false, false}));
    ASSERT_EQ(plan.deliveries.size(), 2U);
    EXPECT_EQ(plan.deliveries[1].message.channel, std::optional<std::string>("news"));
    EXPECT_EQ(plan.deliveries[1].message.from, "carol");
    EXPECT_EQ(plan.position, m2);
    EXPECT_TRUE(plan.expired.empty());
    EXPECT_TRUE(plan.dead.empty());

    EXPECT_TRUE(d.pump(k_bob_news, m2, k_t0).empty()) << "in flight: not pushed twice; m3 is not visible yet";
    plan = d.pump(k_bob_news, m3, k_t0 + 7);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m3}));
    EXPECT_EQ(plan.position, m3);

    const auto flights = d.in_flight(k_bob_news);
    EXPECT_EQ(seqs_of(flights), (Seqs{m1, m2, m3}));
    ASSERT_EQ(flights.size(), 3U);
    EXPECT_EQ(flights[0].deliveries, 1U);
    EXPECT_EQ(flights[0].deadline_us, k_t0 + k_timeout);
    EXPECT_EQ(flights[2].deadline_us, k_t0 + 7 + k_timeout);
}

// The marker needs no credit (issue 11: a consumer that waited for it before
// acknowledging stalled until redelivery): when the credit runs out inside
// the history, it comes with the first messages and names where the history ends.
TEST_F(ChannelDeliveryTest, DurablePushCaughtUpIsReportedOnceAndNeedsNoCredit) {
    Deliveries d(m_store, delivery_options(2));
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 5);
    d.restart(k_bob_news, push_settings(2), k_t0);

    auto plan = d.pump(k_bob_news, visible(), k_t0);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[0], m[1]}));
    EXPECT_TRUE(plan.caught_up) << "the credit ran out inside the history";
    EXPECT_EQ(plan.caught_up_seq, m[4]) << "where the history ends";
    EXPECT_FALSE(plan.at_head);

    d.on_settled(consumer_ack("bob", "news", m[1]), k_t0);
    plan = d.pump(k_bob_news, visible(), k_t0);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[2], m[3]}));
    EXPECT_FALSE(plan.caught_up) << "reported once";

    d.on_settled(consumer_ack("bob", "news", m[3]), k_t0);
    plan = d.pump(k_bob_news, visible(), k_t0);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[4]}));
    EXPECT_FALSE(plan.caught_up) << "reported once";
    EXPECT_TRUE(plan.at_head);
    EXPECT_EQ(plan.position, m[4]);

    d.on_settled(consumer_ack("bob", "news", m[4]), k_t0);
    const auto later = publish("news", "later");
    plan = d.pump(k_bob_news, visible(), k_t0);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{later}));
    EXPECT_FALSE(plan.caught_up) << "reported once";
    EXPECT_TRUE(plan.at_head);

    // A restart (a new subscribe) reads the history again, and reports again.
    d.restart(k_bob_news, push_settings(2), k_t0 + 1);
    plan = d.pump(k_bob_news, visible(), k_t0 + 1);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{later}));
    EXPECT_TRUE(plan.caught_up);
    EXPECT_EQ(plan.caught_up_seq, later);
}

TEST_F(ChannelDeliveryTest, DurablePushCaughtUpComesWithTheLastMessageWhenTheWindowFitsTheBacklogExactly) {
    Deliveries d(m_store, delivery_options(2));
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 2);
    d.restart(k_bob_news, push_settings(2), k_t0);
    const auto plan = d.pump(k_bob_news, visible(), k_t0);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[0], m[1]}));
    EXPECT_EQ(plan.position, m[1]);
    EXPECT_TRUE(plan.at_head) << "this pass read up to the newest durable message";
    EXPECT_TRUE(plan.caught_up) << "the reader reached the newest durable message for the first time";
}

TEST_F(ChannelDeliveryTest, DurablePushWindowLimitsUnacknowledgedDeliveriesAndAcksMakeRoom) {
    Deliveries d(m_store, delivery_options(k_wide));
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 6);
    d.restart(k_bob_news, push_settings(2), k_t0);  // the subscription's credit, not the daemon's window

    EXPECT_EQ(seqs_of(d.pump(k_bob_news, visible(), k_t0).deliveries), (Seqs{m[0], m[1]}));
    auto plan = d.pump(k_bob_news, visible(), k_t0);
    EXPECT_TRUE(plan.empty()) << "the window is full";
    EXPECT_EQ(plan.position, m[1]);

    // An ack of one message makes room for one.
    EXPECT_EQ(d.on_settled(ack_one("bob", "news", m[1]), k_t0 + 5), std::optional<Reader>(k_bob_news));
    EXPECT_EQ(seqs_of(d.in_flight(k_bob_news)), (Seqs{m[0]}));
    EXPECT_EQ(seqs_of(d.pump(k_bob_news, visible(), k_t0).deliveries), (Seqs{m[2]}));
    EXPECT_TRUE(d.pump(k_bob_news, visible(), k_t0).empty());

    // An ack up to a seq settles everything in flight at or below it.
    d.on_settled(consumer_ack("bob", "news", m[2]), k_t0 + 6);
    EXPECT_TRUE(d.in_flight(k_bob_news).empty());
    EXPECT_EQ(seqs_of(d.pump(k_bob_news, visible(), k_t0).deliveries), (Seqs{m[3], m[4]}));

    // Acks of carol's subscription to the channel, or of bob's to another
    // channel, make no room here.
    subscribe_durable("carol", "news");
    d.on_settled(consumer_ack("carol", "news", m[5]), k_t0 + 7);
    subscribe_durable("bob", "sports");
    d.on_settled(consumer_ack("bob", "sports", m[5]), k_t0 + 7);
    EXPECT_EQ(seqs_of(d.in_flight(k_bob_news)), (Seqs{m[3], m[4]}));
    EXPECT_TRUE(d.pump(k_bob_news, visible(), k_t0).empty());
}

TEST_F(ChannelDeliveryTest, DurablePushRedeliversAfterTheAckTimeoutWithTheCountUp) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 3);
    d.restart(k_bob_news, push_settings(), k_t0);
    d.pump(k_bob_news, m[1], k_t0);
    d.pump(k_bob_news, m[2], k_t0 + 500);
    d.on_settled(ack_one("bob", "news", m[1]), k_t0 + 10);
    EXPECT_EQ(d.next_deadline(), std::optional<std::int64_t>(k_t0 + k_timeout));

    EXPECT_TRUE(d.expire(k_t0 + k_timeout - 1).empty()) << "not due yet";
    auto plans = d.expire(k_t0 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_EQ(plans[0].reader, k_bob_news);
    EXPECT_EQ(seqs_of(plans[0].deliveries), (Seqs{m[0]})) << "only the due one; the acked one is gone";
    EXPECT_EQ(counts_of(plans[0].deliveries), (Counts{2}));
    EXPECT_EQ(redelivered_of(plans[0].deliveries), (Flags{true}));
    EXPECT_TRUE(plans[0].dead.empty());

    const auto flights = d.in_flight(k_bob_news);
    ASSERT_EQ(seqs_of(flights), (Seqs{m[0], m[2]}));
    EXPECT_EQ(flights[0].deliveries, 2U);
    EXPECT_EQ(flights[0].deadline_us, k_t0 + 2 * k_timeout);
    EXPECT_EQ(flights[1].deliveries, 1U);
    EXPECT_EQ(d.next_deadline(), std::optional<std::int64_t>(k_t0 + 500 + k_timeout));

    plans = d.expire(k_t0 + 2 * k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_EQ(seqs_of(plans[0].deliveries), (Seqs{m[0], m[2]})) << "due ones go out in seq order";
    EXPECT_EQ(counts_of(plans[0].deliveries), (Counts{3, 2}));
}

TEST_F(ChannelDeliveryTest, DurablePushExpireSkipsWhatTheStoreSettledBeforeItsRelease) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 2);
    d.restart(k_bob_news, push_settings(), k_t0);
    d.pump(k_bob_news, visible(), k_t0);
    ack_one("bob", "news", m[0]);  // logged; on_settled not called yet
    const auto plans = d.expire(k_t0 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_EQ(seqs_of(plans[0].deliveries), (Seqs{m[1]}));
    EXPECT_EQ(seqs_of(d.in_flight(k_bob_news)), (Seqs{m[1]}));
}

TEST_F(ChannelDeliveryTest, DurablePushDeadLettersAfterMaxDeliveriesAndNeverRedeliversIt) {
    Deliveries d(m_store, delivery_options(k_wide, 2));
    subscribe_durable("bob", "news");
    const auto poison = publish("news", "never acked");
    const auto fine = publish("news", "acked");
    d.restart(k_bob_news, push_settings(), k_t0);
    EXPECT_EQ(seqs_of(d.pump(k_bob_news, visible(), k_t0).deliveries), (Seqs{poison, fine}));
    d.on_settled(ack_one("bob", "news", fine), k_t0);

    auto plans = d.expire(k_t0 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_EQ(counts_of(plans[0].deliveries), (Counts{2}));

    plans = d.expire(k_t0 + 2 * k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_TRUE(plans[0].deliveries.empty()) << "not pushed a third time";
    ASSERT_EQ(plans[0].dead.size(), 1U);
    EXPECT_EQ(plans[0].dead[0].seq, poison);
    EXPECT_EQ(plans[0].dead[0].deliveries, 2U);
    EXPECT_TRUE(d.in_flight(k_bob_news).empty());
    EXPECT_FALSE(d.next_deadline().has_value());

    // While the dead letter is logged it is neither pushed nor handed back again.
    EXPECT_TRUE(d.expire(k_t0 + 10 * k_timeout).empty());
    EXPECT_TRUE(d.pump(k_bob_news, visible(), k_t0 + 10 * k_timeout).empty());

    // A dead letter of bob's mailbox is not this subscription's.
    d.on_settled(dead_lettered("bob", std::nullopt, poison, 2), k_t0);
    d.restart(k_bob_news, push_settings(), k_t0 + 11 * k_timeout);
    auto plan = d.pump(k_bob_news, visible(), k_t0 + 11 * k_timeout);
    EXPECT_TRUE(plan.deliveries.empty());
    EXPECT_EQ(seqs_of(plan.dead), (Seqs{poison})) << "a restart decides it again, and gives up again";

    // Logged for the subscription: settled for good.
    EXPECT_EQ(d.on_settled(dead_lettered("bob", "news", poison, 2), k_t0), std::optional<Reader>(k_bob_news));
    d.restart(k_bob_news, push_settings(), k_t0 + 12 * k_timeout);
    plan = d.pump(k_bob_news, visible(), k_t0 + 12 * k_timeout);
    EXPECT_TRUE(plan.empty());
    EXPECT_TRUE(plan.caught_up);
}

TEST_F(ChannelDeliveryTest, OfflineStopsPushingAndARestartStartsOverFromTheFloor) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 4);
    d.restart(k_bob_news, push_settings(), k_t0);
    d.pump(k_bob_news, visible(), k_t0);
    d.on_settled(consumer_ack("bob", "news", m[0]), k_t0 + 1);
    d.on_settled(ack_one("bob", "news", m[2]), k_t0 + 2);

    d.offline(k_bob_news);
    ASSERT_TRUE(d.knows(k_bob_news)) << "the delivery counts of m[1] and m[3] are kept";
    EXPECT_TRUE(d.in_flight(k_bob_news).empty());
    EXPECT_FALSE(d.next_deadline().has_value());
    EXPECT_FALSE(d.next_deadline(k_bob_news).has_value());
    EXPECT_TRUE(d.expire(k_t0 + 100 * k_timeout).empty()) << "nothing is redelivered to a reader that is gone";
    const auto status = d.status(k_bob_news);
    ASSERT_TRUE(status.has_value());
    EXPECT_FALSE(status->online);
    EXPECT_EQ(status->in_flight, 0U);

    // Back after the ack timeout: from the floor, settled ones skipped, the
    // counts going on. (Back within it, a reconnect is no failure.)
    d.restart(k_bob_news, push_settings(), k_t0 + k_timeout);
    EXPECT_TRUE(d.status(k_bob_news)->online);
    const auto plan = d.pump(k_bob_news, visible(), k_t0 + k_timeout);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[1], m[3]}));
    EXPECT_EQ(counts_of(plan.deliveries), (Counts{2, 2}));
    EXPECT_EQ(redelivered_of(plan.deliveries), (Flags{true, true}));
    EXPECT_TRUE(plan.caught_up);
}

TEST_F(ChannelDeliveryTest, OfflineWithNothingUnsettledForgetsTheReader) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 2);
    d.restart(k_bob_news, push_settings(), k_t0);
    d.pump(k_bob_news, visible(), k_t0);
    d.on_settled(consumer_ack("bob", "news", m[1]), k_t0);
    d.offline(k_bob_news);
    EXPECT_FALSE(d.knows(k_bob_news));
    EXPECT_FALSE(d.status(k_bob_news).has_value());
    d.offline(Reader{"news", "nobody", ""});  // unknown: nothing to do
}

TEST_F(ChannelDeliveryTest, ARestartBeforeTheDeadlinesPushesAgainWithoutCountingADelivery) {
    Deliveries d(m_store, delivery_options(k_wide, 2));
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 2);
    d.restart(k_bob_news, push_settings(), k_t0);
    d.pump(k_bob_news, visible(), k_t0);
    for (int i = 1; i <= 3; ++i) {
        d.restart(k_bob_news, push_settings(), k_t0 + i);
        const auto plan = d.pump(k_bob_news, visible(), k_t0 + i);
        EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[0], m[1]}));
        EXPECT_EQ(counts_of(plan.deliveries), (Counts{1, 1})) << "a resubscribe is no failure to acknowledge";
        EXPECT_EQ(redelivered_of(plan.deliveries), (Flags{true, true}));
        EXPECT_TRUE(plan.dead.empty());
    }
    // After its deadline passed, a restart counts another delivery.
    d.restart(k_bob_news, push_settings(), k_t0 + 3 + k_timeout);
    EXPECT_EQ(counts_of(d.pump(k_bob_news, visible(), k_t0 + 3 + k_timeout).deliveries), (Counts{2, 2}));
}

TEST_F(ChannelDeliveryTest, TwoRestartsBeforeAPumpStillCountNoDelivery) {
    Deliveries d(m_store, delivery_options(k_wide, 2));
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 1);
    d.restart(k_bob_news, push_settings(), k_t0);
    d.pump(k_bob_news, visible(), k_t0);
    d.restart(k_bob_news, push_settings(), k_t0 + 1);
    d.restart(k_bob_news, push_settings(), k_t0 + 2);
    const auto plan = d.pump(k_bob_news, visible(), k_t0 + 2);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[0]}));
    EXPECT_EQ(counts_of(plan.deliveries), (Counts{1}));
}

// ---- bookkeeping

TEST_F(ChannelDeliveryTest, ForgetDropsTheReaderAndItsCounts) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 1);
    d.restart(k_bob_news, push_settings(), k_t0);
    d.pump(k_bob_news, visible(), k_t0);
    d.forget(k_bob_news);
    EXPECT_FALSE(d.knows(k_bob_news));
    EXPECT_FALSE(d.status(k_bob_news).has_value());
    EXPECT_TRUE(d.in_flight(k_bob_news).empty());
    EXPECT_FALSE(d.next_deadline().has_value());
    EXPECT_TRUE(d.expire(k_t0 + 10 * k_timeout).empty());
    d.restart(k_bob_news, push_settings(), k_t0 + 10 * k_timeout);
    const auto plan = d.pump(k_bob_news, visible(), k_t0 + 10 * k_timeout);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[0]}));
    EXPECT_EQ(counts_of(plan.deliveries), (Counts{1})) << "unlike offline(), the count starts over";
}

TEST_F(ChannelDeliveryTest, NextDeadlineIsTheEarliestPushDeadlineOverallAndPerReader) {
    Deliveries d(m_store, delivery_options());
    EXPECT_FALSE(d.next_deadline().has_value());
    subscribe_durable("bob", "news");
    subscribe_durable("carol", "news");
    subscribe_durable("dave", "news");
    publish_many("news", 2);
    const Reader carol{"news", "carol", ""};
    const Reader dave{"news", "dave", ""};
    d.restart(k_bob_news, push_settings(), k_t0);
    d.restart(carol, push_settings(), k_t0);
    d.restart(dave, pull_settings(), k_t0);
    d.pump(k_bob_news, visible(), k_t0 + 300);
    d.pump(carol, visible(), k_t0 + 100);
    d.pull(dave, 10, visible(), k_t0 + 50);
    EXPECT_EQ(d.next_deadline(), std::optional<std::int64_t>(k_t0 + 100 + k_timeout)) << "pulled ones have no timer";
    EXPECT_EQ(d.next_deadline(k_bob_news), std::optional<std::int64_t>(k_t0 + 300 + k_timeout));
    EXPECT_EQ(d.next_deadline(dave), std::optional<std::int64_t>(k_t0 + 50 + k_timeout));
    EXPECT_FALSE(d.next_deadline(Reader{"news", "erin", ""}).has_value());

    // The earliest of one reader's deliveries, as they are redelivered.
    d.offline(carol);
    EXPECT_EQ(d.next_deadline(), std::optional<std::int64_t>(k_t0 + 300 + k_timeout));
    const auto plans = d.expire(k_t0 + 300 + k_timeout);
    ASSERT_EQ(plans.size(), 1U) << "only bob's: carol is offline, dave pulls";
    EXPECT_EQ(plans[0].reader, k_bob_news);
    EXPECT_EQ(d.next_deadline(k_bob_news), std::optional<std::int64_t>(k_t0 + 300 + 2 * k_timeout));
}

TEST_F(ChannelDeliveryTest, StatusAndInFlightReportThePositionTheAcksAndTheDeadlines) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 3);
    EXPECT_FALSE(d.status(k_bob_news).has_value());
    d.restart(k_bob_news, push_settings(), k_t0);
    auto status = d.status(k_bob_news);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->last_ack_us, k_t0) << "the start counts as the last ack";
    EXPECT_TRUE(status->online);
    EXPECT_FALSE(status->pull);
    EXPECT_EQ(status->in_flight, 0U);

    d.pump(k_bob_news, m[1], k_t0 + 10);
    d.on_settled(ack_one("bob", "news", m[0]), k_t0 + 20);
    d.pump(k_bob_news, m[2], k_t0 + 30);
    status = d.status(k_bob_news);
    EXPECT_EQ(status->position, m[2]);
    EXPECT_EQ(status->in_flight, 2U);
    EXPECT_EQ(status->last_ack_us, k_t0 + 20);

    const auto flights = d.in_flight(k_bob_news);
    ASSERT_EQ(flights.size(), 2U);
    EXPECT_EQ(flights[0].seq, m[1]);
    EXPECT_EQ(flights[0].deliveries, 1U);
    EXPECT_EQ(flights[0].deadline_us, k_t0 + 10 + k_timeout);
    EXPECT_EQ(flights[1].seq, m[2]);
    EXPECT_EQ(flights[1].deadline_us, k_t0 + 30 + k_timeout);
    EXPECT_TRUE(d.in_flight(Reader{"news", "carol", ""}).empty());
}

// ---- a settlement batch that failed

TEST_F(ChannelDeliveryTest, AbandonedDeadLettersAreDecidedAgainByTheNextRead) {
    Deliveries d(m_store, delivery_options(k_wide, 1));
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 4);
    d.restart(k_bob_news, push_settings(), k_t0);
    d.pump(k_bob_news, visible(), k_t0);
    d.on_settled(ack_one("bob", "news", m[1]), k_t0);
    d.on_settled(ack_one("bob", "news", m[3]), k_t0);
    auto plans = d.expire(k_t0 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_EQ(seqs_of(plans[0].dead), (Seqs{m[0], m[2]}));
    const auto given_up = plans[0];
    const auto later = publish("news", "later");
    auto plan = d.pump(k_bob_news, visible(), k_t0 + k_timeout);
    EXPECT_TRUE(plan.dead.empty()) << "being logged";
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{later}));

    // Logging them failed: the next read goes back to them, skipping what is
    // settled or in flight.
    d.abandon(given_up);
    plan = d.pump(k_bob_news, visible(), k_t0 + k_timeout);
    EXPECT_EQ(seqs_of(plan.dead), (Seqs{m[0], m[2]}));
    EXPECT_TRUE(plan.deliveries.empty()) << "m[1] and m[3] are settled, `later` is in flight";
    EXPECT_EQ(plan.position, later);
    EXPECT_TRUE(d.pump(k_bob_news, visible(), k_t0 + k_timeout).empty()) << "decided once per read";

    d.abandon(DeliveryPlan{Reader{"news", "nobody", ""}, {}, {}, {{m[0], 1}}});  // unknown reader: nothing to do
}

TEST_F(ChannelDeliveryTest, AbandonedDeadLettersOfAPullReaderComeBackWithTheNextFetch) {
    Deliveries d(m_store, delivery_options(k_wide, 1));
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 2);
    d.restart(k_bob_news, pull_settings(), k_t0);
    EXPECT_EQ(seqs_of(d.pull(k_bob_news, 1, visible(), k_t0).deliveries), (Seqs{m[0]}));
    const auto plan = d.pull(k_bob_news, 1, visible(), k_t0 + k_timeout);
    EXPECT_EQ(seqs_of(plan.dead), (Seqs{m[0]}));
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[1]}));
    d.abandon(plan);
    const auto again = d.pull(k_bob_news, 1, visible(), k_t0 + k_timeout);
    EXPECT_EQ(seqs_of(again.dead), (Seqs{m[0]}));
    EXPECT_TRUE(again.deliveries.empty()) << "m[1] is in flight";
}

}  // namespace
