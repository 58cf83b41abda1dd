// BacklogGauges: a pass in steps of a few rows finds what one big step finds,
// and figures change only when a pass completes.
#include <gtest/gtest.h>

#include <string>

#include "bus/core/handler.hpp"
#include "bus/server/backlog_gauges.hpp"
#include "handler_support.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace bus = botbus::bus;
namespace store = botbus::store;
using botbus::testing::as;
using botbus::testing::call_in_batch;

namespace {

class BacklogGaugesTest : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};
    bus::ServerCounters m_counters;
    bus::CommandHandler m_handler{m_store, m_counters};

    bus::Reply ok(const std::string& bot, bus::Request request) {
        auto reply = call_in_batch(m_handler, m_store, as(bot), std::move(request));
        EXPECT_TRUE(reply.ok) << reply.error_name << ": " << reply.message;
        return reply;
    }
    std::uint64_t send(const std::string& to) {
        const auto reply = ok("alice", bus::SendRequest{to, std::nullopt, bus::pack_as_value("m"), std::nullopt,
                                                        std::nullopt, std::nullopt});
        return reply.find("seq")->via.u64;
    }
    // Runs passes of `rows` per step until one completes (bounded).
    bus::BacklogFigures pass(std::size_t rows, std::size_t* steps = nullptr) {
        bus::BacklogGauges gauges(m_store, rows);
        for (std::size_t i = 1; i <= 1000; ++i) {
            if (gauges.step(42)) {
                if (steps) *steps = i;
                return gauges.figures();
            }
            EXPECT_EQ(gauges.figures().completed_at_us, 0) << "figures published before the pass ended";
        }
        ADD_FAILURE() << "no pass completed in 1000 steps";
        return {};
    }
};

TEST_F(BacklogGaugesTest, StepsOfTwoRowsFindWhatOneStepFinds) {
    // Seven mailboxes holding 1..7 messages; b3 acknowledges all of its 4.
    std::uint64_t last_of_b3 = 0;
    for (int bot = 0; bot < 7; ++bot) {
        for (int i = 0; i <= bot; ++i) {
            const auto seq = send("b" + std::to_string(bot));
            if (bot == 3) last_of_b3 = seq;
        }
    }
    bus::AckRequest ack;
    ack.upto = last_of_b3;
    ok("b3", ack);
    // Five durable subscriptions to "news", which then gets 3 messages; s0
    // acknowledges 2 of them.
    for (int s = 0; s < 5; ++s) {
        bus::SubscribeRequest subscribe{"news", std::nullopt};
        subscribe.durable = true;
        subscribe.deliver = "pull";
        ok("s" + std::to_string(s), subscribe);
    }
    std::uint64_t second = 0;
    for (int i = 0; i < 3; ++i) {
        const auto reply = ok("alice", bus::PublishRequest{"news", std::nullopt, bus::pack_as_value("n"), std::nullopt,
                                                           std::nullopt});
        if (i == 1) second = reply.find("seq")->via.u64;
    }
    bus::AckRequest news_ack;
    news_ack.channel = "news";
    news_ack.upto = second;
    ok("s0", news_ack);

    std::size_t steps = 0;
    const auto small = pass(2, &steps);
    EXPECT_GE(steps, 6U) << "7 mailboxes and 5 subscriptions in steps of 2";
    const auto big = pass(1000);
    for (const auto& figures : {small, big}) {
        EXPECT_EQ(figures.mailboxes, 6U);
        EXPECT_EQ(figures.mailbox_messages, 1U + 2 + 3 + 5 + 6 + 7);
        EXPECT_EQ(figures.mailbox_max, 7U);
        EXPECT_EQ(figures.subscriptions, 5U);
        EXPECT_EQ(figures.subscription_lag, 4U * 3 + 1);
        EXPECT_EQ(figures.subscription_max_lag, 3U);
        EXPECT_EQ(figures.completed_at_us, 42);
        EXPECT_TRUE(figures.oldest_unacked_us.has_value());
    }
}

TEST_F(BacklogGaugesTest, AnEmptyBusCompletesAPassAtOnceWithNothing) {
    std::size_t steps = 0;
    const auto figures = pass(2, &steps);
    EXPECT_EQ(steps, 1U);
    EXPECT_EQ(figures.mailbox_messages, 0U);
    EXPECT_FALSE(figures.oldest_unacked_us.has_value());
    EXPECT_EQ(figures.subscriptions, 0U);
}

}  // namespace
