// Unit tests of the consumers op's paging on a :memory: store: pages of
// `limit` in (channel, bot) order, each from the cursor (after, after_bot)
// the last page ended on, add up to every durable subscription exactly once,
// with and without the bot and channel filters; `more` says whether a page
// was the last; bad limits and half a cursor are refused; and each entry's
// lag is what is above its floor less what was settled one by one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bus/core/handler.hpp"
#include "bus/protocol/codec.hpp"
#include "handler_support.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace botbus::bus;
namespace store = botbus::store;
using botbus::testing::as;
using botbus::testing::call_in_batch;

namespace {

class ConsumersPaging : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};
    ServerCounters m_counters;
    CommandHandler m_handler{m_store, m_counters};

    Reply call(const std::string& bot, Request request) {
        return call_in_batch(m_handler, m_store, as(bot), std::move(request));
    }
    void subscribe(const std::string& bot, const std::string& channel) {
        SubscribeRequest r{channel, std::nullopt};
        r.durable = true;
        r.deliver = "pull";
        ASSERT_TRUE(call(bot, r).ok);
    }
    // Every page, following `more`; the (channel, bot) of each entry in order.
    std::vector<std::pair<std::string, std::string>> all_pages(ConsumersRequest request, std::size_t& pages) {
        std::vector<std::pair<std::string, std::string>> listed;
        pages = 0;
        for (;;) {
            const auto reply = call("viewer", request);
            EXPECT_TRUE(reply.ok) << reply.message;
            const auto page = decode_reply_as<ConsumersReply>(reply);
            if (!page) {
                ADD_FAILURE() << "the reply is no consumers page";
                return listed;
            }
            ++pages;
            EXPECT_LE(page->consumers.size(), request.limit.value_or(100));
            for (const auto& c : page->consumers) listed.emplace_back(c.channel, c.bot);
            if (!page->more) return listed;
            EXPECT_FALSE(page->consumers.empty()) << "more, but an empty page";
            if (page->consumers.empty() || pages > 100) return listed;
            request.after = page->consumers.back().channel;
            request.after_bot = page->consumers.back().bot;
        }
    }
};

TEST_F(ConsumersPaging, PagesAddUpToEverySubscriptionOnceInChannelThenBotOrder) {
    std::vector<std::pair<std::string, std::string>> expected;
    for (const auto* channel : {"alpha", "beta", "gamma", "delta"}) {
        for (const auto* bot : {"bot1", "bot2", "bot3", "bot4", "bot5"}) {
            if (std::string(channel) == "gamma" && std::string(bot) == "bot3") continue;
            subscribe(bot, channel);
            expected.emplace_back(channel, bot);
        }
    }
    std::sort(expected.begin(), expected.end());

    std::size_t pages = 0;
    ConsumersRequest request;
    request.limit = 4;
    EXPECT_EQ(all_pages(request, pages), expected);
    EXPECT_EQ(pages, 5U) << "19 subscriptions, 4 a page";

    request.limit = 19;
    EXPECT_EQ(all_pages(request, pages), expected);
    EXPECT_EQ(pages, 1U) << "a page that holds them all says no more";

    ConsumersRequest of_bot;
    of_bot.bot = "bot3";
    of_bot.limit = 2;
    std::vector<std::pair<std::string, std::string>> bot3;
    for (const auto& e : expected) {
        if (e.second == "bot3") bot3.push_back(e);
    }
    EXPECT_EQ(all_pages(of_bot, pages), bot3);

    ConsumersRequest of_channel;
    of_channel.channel = "beta";
    of_channel.limit = 2;
    std::vector<std::pair<std::string, std::string>> beta;
    for (const auto& e : expected) {
        if (e.first == "beta") beta.push_back(e);
    }
    EXPECT_EQ(all_pages(of_channel, pages), beta);
    EXPECT_EQ(pages, 3U);

    std::size_t default_pages = 0;
    EXPECT_EQ(all_pages(ConsumersRequest{}, default_pages), expected);
    EXPECT_EQ(default_pages, 1U);
}

TEST_F(ConsumersPaging, RefusesABadLimitAndHalfACursor) {
    subscribe("bob", "jobs");
    for (const std::uint64_t limit : {0ULL, 1001ULL}) {
        ConsumersRequest r;
        r.limit = limit;
        const auto reply = call("viewer", r);
        EXPECT_FALSE(reply.ok);
        EXPECT_EQ(reply.error, Errc::invalid_field) << limit;
    }
    ConsumersRequest half;
    half.after = "jobs";
    EXPECT_EQ(call("viewer", half).error, Errc::invalid_field);
    ConsumersRequest other_half;
    other_half.after_bot = "bob";
    EXPECT_EQ(call("viewer", other_half).error, Errc::invalid_field);
}

TEST_F(ConsumersPaging, LagIsWhatIsAboveTheFloorLessWhatWasSettledOneByOne) {
    subscribe("bob", "jobs");
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 10; ++i) {
        const auto reply = call("alice", PublishRequest{"jobs", std::nullopt, pack_as_value(i), std::nullopt, std::nullopt});
        ASSERT_TRUE(reply.ok);
        seqs.push_back(reply.find("seq")->via.u64);
    }
    AckRequest ack;
    ack.channel = "jobs";
    ack.upto = seqs[1];
    ack.seqs = std::vector<std::uint64_t>{seqs[4], seqs[7], seqs[9]};
    ASSERT_TRUE(call("bob", ack).ok);
    ConsumersRequest r;
    r.channel = "jobs";
    const auto page = decode_reply_as<ConsumersReply>(call("viewer", r));
    ASSERT_TRUE(page && page->consumers.size() == 1U);
    EXPECT_EQ(page->consumers[0].acked, seqs[1]);
    EXPECT_EQ(page->consumers[0].lag, 10 - 2 - 3);
}

}  // namespace
