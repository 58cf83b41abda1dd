// bus::Deliveries when a store read fails: pump, pull and expire never throw
// (the server calls them outside any request, where an exception would end
// the daemon); the plan carries read_error, what was decided before the
// failure, and nothing more, so the next pass picks up exactly where the
// failed one stopped. A table is renamed away to make its reads fail.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>

#include <string>

#include "bus/core/deliveries.hpp"
#include "deliveries_support.hpp"

using namespace botbus::bus;
using namespace botbus::testing;

namespace {

class DeliveryReadErrors : public ChannelDeliveryTest {
protected:
    // Reads of `table` fail until restore().
    void hide(const std::string& table) {
        m_hidden = table;
        m_store.database().exec("ALTER TABLE " + table + " RENAME TO hidden_for_test");
    }
    void restore() { m_store.database().exec("ALTER TABLE hidden_for_test RENAME TO " + m_hidden); }

    std::string m_hidden;
};

TEST_F(DeliveryReadErrors, APumpWhoseReadFailsReportsItAndTheNextPumpDeliversEverything) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 3);
    d.restart(k_bob_news, push_settings(), k_t0);

    hide("consumer_settled");  // the floor reads; each message's settled check fails
    const auto failed = d.pump(k_bob_news, visible(), k_t0);
    ASSERT_TRUE(failed.read_error);
    EXPECT_TRUE(failed.deliveries.empty());
    EXPECT_FALSE(failed.caught_up);
    EXPECT_TRUE(d.in_flight(k_bob_news).empty());
    restore();

    const auto plan = d.pump(k_bob_news, visible(), k_t0 + 1);
    EXPECT_FALSE(plan.read_error);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[0], m[1], m[2]})) << "a message the failed read reached was skipped";
    EXPECT_EQ(counts_of(plan.deliveries), (Counts{1, 1, 1}));
    EXPECT_TRUE(plan.caught_up);
}

TEST_F(DeliveryReadErrors, AFailedRedeliveryPassLeavesItsMessagesDueAndUncounted) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 2);
    d.restart(k_bob_news, push_settings(), k_t0);
    ASSERT_EQ(d.pump(k_bob_news, visible(), k_t0).deliveries.size(), 2U);

    hide("events");
    auto plans = d.expire(k_t0 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_TRUE(plans[0].read_error);
    EXPECT_TRUE(plans[0].deliveries.empty());
    restore();

    plans = d.expire(k_t0 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_FALSE(plans[0].read_error);
    EXPECT_EQ(seqs_of(plans[0].deliveries), (Seqs{m[0], m[1]}));
    EXPECT_EQ(counts_of(plans[0].deliveries), (Counts{2, 2})) << "the failed pass counted as a delivery";
}

TEST_F(DeliveryReadErrors, APullWhoseReadFailsIsNotTakenForAGoneSubscription) {
    Deliveries d(m_store, delivery_options());
    subscribe_durable("bob", "news");
    const auto m = publish_many("news", 2);
    d.restart(k_bob_news, pull_settings(), k_t0);

    hide("channel_consumers");
    const auto failed = d.pull(k_bob_news, 10, visible(), k_t0);
    EXPECT_TRUE(failed.read_error);
    EXPECT_FALSE(failed.gone);
    EXPECT_TRUE(failed.deliveries.empty());
    restore();

    const auto plan = d.pull(k_bob_news, 10, visible(), k_t0);
    EXPECT_FALSE(plan.read_error);
    EXPECT_EQ(seqs_of(plan.deliveries), (Seqs{m[0], m[1]}));
}

}  // namespace
