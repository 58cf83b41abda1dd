// Unit tests of bus::Deliveries with several consumers on one reader (a
// bot's replicas sharing a durable subscription; a mailbox shares the same
// way): who gets each message, what a consumer that leaves hands over, what
// one that joins does not take, and fetchers that go away. Time is passed
// in; nothing sleeps.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "deliveries_support.hpp"

using namespace botbus::bus;
using namespace botbus::testing;
namespace store = botbus::store;

namespace {

// Seqs by the consumer each was given to.
std::map<Holder, Seqs> by_holder(const std::vector<Delivery>& deliveries) {
    std::map<Holder, Seqs> out;
    for (const auto& d : deliveries) out[d.holder].push_back(d.message.seq);
    return out;
}

TEST_F(ChannelDeliveryTest, NewMessagesGoToTheConsumerWithTheMostFreeCreditEachInSeqOrder) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    d.attach(k_bob_news, "a", push_settings(2), k_t0);
    d.attach(k_bob_news, "b", push_settings(3), k_t0);
    const auto m = publish_many("news", 7);

    const auto plan = d.pump(k_bob_news, visible(), k_t0);
    const auto shares = by_holder(plan.deliveries);
    ASSERT_EQ(shares.size(), 2U);
    EXPECT_EQ(shares.at("a").size(), 2U) << "a's credit";
    EXPECT_EQ(shares.at("b").size(), 3U) << "b's credit";
    for (const auto& [holder, seqs] : shares) {
        EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end())) << holder;
    }
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[0], m[1], m[2], m[3], m[4]})) << "one each, the oldest first";
    EXPECT_TRUE(d.pump(k_bob_news, visible(), k_t0).empty()) << "every window is full";

    // An acknowledgement makes room where it lands.
    d.on_settled(ack_one("bob", "news", shares.at("a").front()), k_t0);
    const auto next = d.pump(k_bob_news, visible(), k_t0);
    EXPECT_EQ(by_holder(next.deliveries), (std::map<Holder, Seqs>{{"a", {m[5]}}}));
}

TEST_F(ChannelDeliveryTest, AConsumerThatLeavesHandsWhatItHeldToTheOthersAsTheSameDelivery) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    d.attach(k_bob_news, "a", push_settings(), k_t0);
    d.attach(k_bob_news, "b", push_settings(), k_t0);
    publish_many("news", 4);
    const auto shares = by_holder(d.pump(k_bob_news, visible(), k_t0).deliveries);
    ASSERT_EQ(shares.at("a").size(), 2U);

    d.detach(k_bob_news, "a", k_t0 + 10);
    const auto handed = d.pump(k_bob_news, visible(), k_t0 + 10);
    EXPECT_EQ(by_holder(handed.deliveries), (std::map<Holder, Seqs>{{"b", shares.at("a")}}));
    EXPECT_EQ(counts_of(handed.deliveries), (Counts{1, 1})) << "leaving is not failing";
    EXPECT_EQ(redelivered_of(handed.deliveries), (Flags{true, true}));
    EXPECT_EQ(d.in_flight(k_bob_news).size(), 4U);
    const auto status = d.status(k_bob_news);
    ASSERT_TRUE(status);
    ASSERT_EQ(status->consumers.size(), 1U);
    EXPECT_EQ(status->consumers[0].holder, "b");
    EXPECT_EQ(status->consumers[0].in_flight, 4U);
}

TEST_F(ChannelDeliveryTest, AConsumerThatJoinsTakesNothingAnotherHolds) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    d.attach(k_bob_news, "a", push_settings(), k_t0);
    const auto m = publish_many("news", 3);
    EXPECT_EQ(seqs_of(d.pump(k_bob_news, visible(), k_t0).deliveries), (Seqs{m[0], m[1], m[2]}));

    d.attach(k_bob_news, "b", push_settings(), k_t0 + 1);
    const auto joined = d.pump(k_bob_news, visible(), k_t0 + 1);
    EXPECT_TRUE(joined.deliveries.empty()) << "a joining consumer was pushed what another holds";
    EXPECT_EQ(joined.caught_up_holders, (std::vector<Holder>{"b"})) << "told once where the history ends";
    const auto later = publish("news", "later");
    EXPECT_EQ(by_holder(d.pump(k_bob_news, visible(), k_t0 + 2).deliveries),
              (std::map<Holder, Seqs>{{"b", {later}}}));
}

TEST_F(ChannelDeliveryTest, TheLastConsumerLeavingAndTheNextJoiningGetsEverythingUnsettledWithinItsGrace) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    d.attach(k_bob_news, "a", push_settings(), k_t0);
    const auto m = publish_many("news", 2);
    d.pump(k_bob_news, visible(), k_t0);
    d.detach(k_bob_news, "a", k_t0 + 1);
    EXPECT_FALSE(d.has_consumers(k_bob_news));

    d.attach(k_bob_news, "b", push_settings(), k_t0 + 2);
    const auto again = d.pump(k_bob_news, visible(), k_t0 + 2);
    EXPECT_EQ(by_holder(again.deliveries), (std::map<Holder, Seqs>{{"b", {m[0], m[1]}}}));
    EXPECT_EQ(counts_of(again.deliveries), (Counts{1, 1})) << "back within the ack timeout: no failure";
}

TEST_F(ChannelDeliveryTest, ARedeliveryGoesToTheConsumerWithTheMostFreeCreditAndCounts) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    d.attach(k_bob_news, "a", push_settings(1), k_t0);
    const auto m = publish_many("news", 1);
    EXPECT_EQ(by_holder(d.pump(k_bob_news, visible(), k_t0).deliveries), (std::map<Holder, Seqs>{{"a", {m[0]}}}));
    d.attach(k_bob_news, "b", push_settings(5), k_t0 + 1);

    const auto plans = d.expire(k_t0 + k_timeout + 1);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_EQ(by_holder(plans[0].deliveries), (std::map<Holder, Seqs>{{"b", {m[0]}}}));
    EXPECT_EQ(counts_of(plans[0].deliveries), (Counts{2})) << "a timeout is a failed delivery";
}

TEST_F(ChannelDeliveryTest, WhatAGoneFetcherHeldIsFetchedFirstByTheNextFetchAsTheSameDelivery) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    d.attach(k_bob_news, "a", pull_settings(), k_t0);
    d.attach(k_bob_news, "b", pull_settings(), k_t0);
    const auto m = publish_many("news", 4);
    EXPECT_EQ(seqs_of(d.pull(k_bob_news, 2, visible(), k_t0, "a").deliveries), (Seqs{m[0], m[1]}));
    EXPECT_EQ(seqs_of(d.pull(k_bob_news, 1, visible(), k_t0, "b").deliveries), (Seqs{m[2]}));

    EXPECT_EQ(d.connection_gone("a", k_t0 + 5), (std::vector<Reader>{k_bob_news}));
    const auto next = d.pull(k_bob_news, 10, visible(), k_t0 + 5, "b");
    EXPECT_EQ(seqs_of(next.deliveries), (Seqs{m[0], m[1], m[3]}));
    EXPECT_EQ(counts_of(next.deliveries), (Counts{1, 1, 1}));
    EXPECT_EQ(redelivered_of(next.deliveries), (Flags{true, true, false}));
    EXPECT_TRUE(d.connection_gone("a", k_t0 + 6).empty()) << "gone once";
}

TEST_F(ChannelDeliveryTest, AConnectionGoneEndsItsEphemeralReadersAndDetachesItEverywhere) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const Reader live{"news", "bob", "conn"};
    d.attach(live, "conn", ephemeral_settings(0), k_t0);
    d.attach(k_bob_news, "conn", push_settings(), k_t0);
    d.attach(k_bob_news, "other", push_settings(), k_t0);
    publish_many("news", 2);
    d.pump(k_bob_news, visible(), k_t0);

    const auto handing = d.connection_gone("conn", k_t0 + 1);
    EXPECT_FALSE(d.knows(live));
    EXPECT_EQ(handing, (std::vector<Reader>{k_bob_news})) << "it held one of the two";
    EXPECT_FALSE(d.has_consumer(k_bob_news, "conn"));
    EXPECT_TRUE(d.has_consumer(k_bob_news, "other"));
}

}  // namespace
