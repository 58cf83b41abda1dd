// Unit tests of ParkedFetches (bus/server/parked_fetches.hpp): a
// subscription's fetches come out oldest first; deadlines, a closed
// connection and a watched redelivery take out exactly theirs; fetches
// leaving from the middle of a FIFO do not keep its memory growing.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bus/server/parked_fetches.hpp"

using namespace botbus::bus;

namespace {

const Reader k_jobs{"jobs", "bob", ""};
const Reader k_news{"news", "bob", ""};
const Reader k_carols_jobs{"jobs", "carol", ""};

WaitingFetch fetch(const std::string& connection, const Reader& reader, std::int64_t deadline, std::uint64_t id) {
    return WaitingFetch{connection, false, pack_as_value(id), FetchWait{reader, 1, deadline}};
}

std::uint64_t id_of(const WaitingFetch& f) {
    return msgpack::unpack(f.id->bytes.data(), f.id->bytes.size())->as<std::uint64_t>();
}

std::vector<std::uint64_t> ids(const std::vector<WaitingFetch>& fetches) {
    std::vector<std::uint64_t> out;
    for (const auto& f : fetches) out.push_back(id_of(f));
    return out;
}

}  // namespace

TEST(ParkedFetches, ASubscriptionsFetchesComeOutOldestFirst) {
    ParkedFetches parked;
    parked.park(fetch("c1", k_jobs, 100, 1));
    parked.park(fetch("c2", k_news, 100, 2));
    parked.park(fetch("c2", k_jobs, 50, 3));
    parked.park(fetch("c1", k_carols_jobs, 100, 4));
    EXPECT_EQ(parked.size(), 4U);
    EXPECT_EQ(parked.readers_of("jobs"), (std::vector<Reader>{k_jobs, k_carols_jobs}));
    ASSERT_NE(parked.front(k_jobs), nullptr);
    EXPECT_EQ(id_of(*parked.front(k_jobs)), 1U) << "the oldest, not the soonest deadline";
    EXPECT_EQ(id_of(*parked.take_front(k_jobs)), 1U);
    EXPECT_EQ(ids(parked.take_all(k_jobs)), (std::vector<std::uint64_t>{3}));
    EXPECT_FALSE(parked.waiting(k_jobs));
    EXPECT_FALSE(parked.take_front(k_jobs).has_value());
    EXPECT_EQ(parked.size(), 2U);
}

TEST(ParkedFetches, DeadlinesAndAClosedConnectionTakeOutTheirsOnly) {
    ParkedFetches parked;
    parked.park(fetch("c1", k_jobs, 300, 1));
    parked.park(fetch("c2", k_jobs, 100, 2));
    parked.park(fetch("c1", k_news, 200, 3));
    parked.park(fetch("c2", k_jobs, 400, 4));
    EXPECT_EQ(parked.next_wakeup(), 100);
    EXPECT_EQ(ids(parked.take_due(250)), (std::vector<std::uint64_t>{2, 3})) << "soonest first";
    EXPECT_EQ(parked.next_wakeup(), 300);
    EXPECT_EQ(ids(parked.take_connection("c1")), (std::vector<std::uint64_t>{1}));
    EXPECT_EQ(id_of(*parked.front(k_jobs)), 4U);
    EXPECT_TRUE(parked.take_connection("c1").empty());
    EXPECT_EQ(parked.size(), 1U);
}

TEST(ParkedFetches, AWatchedRedeliveryWakesItsSubscriptionOnce) {
    ParkedFetches parked;
    parked.park(fetch("c1", k_jobs, 1000, 1));
    parked.park(fetch("c1", k_news, 1000, 2));
    parked.watch(k_jobs, 100);
    parked.watch(k_news, 500);
    parked.watch(k_carols_jobs, 50);  // nothing waits on it: not watched
    EXPECT_EQ(parked.next_wakeup(), 100);
    parked.watch(k_jobs, 80);  // moved: the old time no longer counts
    EXPECT_EQ(parked.take_redeliverable(99), (std::vector<Reader>{k_jobs}));
    EXPECT_TRUE(parked.take_redeliverable(99).empty());
    EXPECT_EQ(parked.next_wakeup(), 500);
    parked.take_all(k_news);  // its watch goes with its last fetch
    EXPECT_EQ(parked.next_wakeup(), 1000);
}

TEST(ParkedFetches, FetchesLeavingFromTheMiddleDoNotPileUp) {
    ParkedFetches parked;
    parked.park(fetch("c1", k_jobs, 1'000'000, 0));  // stays at the front all along
    for (std::uint64_t i = 1; i <= 100'000; ++i) {
        parked.park(fetch("c1", k_jobs, static_cast<std::int64_t>(i), i));
        ASSERT_EQ(parked.take_due(static_cast<std::int64_t>(i)).size(), 1U);
    }
    EXPECT_EQ(parked.size(), 1U);
    EXPECT_EQ(id_of(*parked.front(k_jobs)), 0U);
    EXPECT_LE(parked.queued_ids(k_jobs), 2U * 1 + 64U) << "stale ids are dropped as they pile up";
}
