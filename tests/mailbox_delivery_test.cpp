// Unit tests of bus::Deliveries (mailbox readers) on a :memory: store (what is pushed to
// a bot, what is redelivered, expired or given up on) and of the flood
// guard's bus::RateLimiter. Time is passed in explicitly; nothing sleeps.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bus/core/deliveries.hpp"
#include "bus/core/rate_limiter.hpp"
#include "store/payloads.hpp"
#include "store/sqlite/sqlite_store.hpp"

using namespace botbus::bus;
namespace store = botbus::store;

namespace {

constexpr std::int64_t k_t0 = 1'700'000'000'000'000;
constexpr std::int64_t k_timeout = 1'000'000;  // 1 s

std::string packed_body(const std::string& text) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, text);
    return std::string(buffer.data(), buffer.size());
}

std::vector<store::Seq> seqs_of(const std::vector<Delivery>& pushes) {
    std::vector<store::Seq> seqs;
    for (const auto& d : pushes) seqs.push_back(d.message.seq);
    return seqs;
}

std::vector<std::uint32_t> counts_of(const std::vector<Delivery>& pushes) {
    std::vector<std::uint32_t> counts;
    for (const auto& d : pushes) counts.push_back(d.deliveries);
    return counts;
}

std::vector<store::Seq> seqs_of(const std::vector<InFlight>& flights) {
    std::vector<store::Seq> seqs;
    for (const auto& f : flights) seqs.push_back(f.seq);
    return seqs;
}

DeliveryOptions options(std::size_t window = 100, std::uint32_t max_deliveries = 3) {
    DeliveryOptions o;
    o.ack_timeout_us = k_timeout;
    o.max_deliveries = max_deliveries;
    o.window = window;
    return o;
}

class MailboxDeliveryTest : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};

    // Appends one event in a batch of its own; returns it as logged.
    store::Event append(store::EventDraft draft) {
        auto batch = m_store.begin();
        batch.append(std::move(draft));
        auto events = batch.take_events();
        batch.commit();
        return events.back();
    }

    store::Seq send(const std::string& from, const std::string& to, const std::string& text,
                    std::optional<std::int64_t> expires_at = std::nullopt) {
        const auto body = packed_body(text);
        store::MessagePayload p;
        p.to = to;
        p.type = "text";
        p.body = body;
        p.expires_at = expires_at;
        return append({store::stream::mailbox(to), store::EventType::message_sent, from, std::nullopt,
                       store::encode_message_payload(p)})
            .seq;
    }

    std::vector<store::Seq> send_many(const std::string& to, int count) {
        std::vector<store::Seq> seqs;
        for (int i = 0; i < count; ++i) seqs.push_back(send("alice", to, std::to_string(i)));
        return seqs;
    }

    // Settlement events, filled in field by field as the server does.
    store::Event ack(const std::string& bot, std::optional<std::uint64_t> upto,
                     std::optional<std::vector<std::uint64_t>> seqs = std::nullopt) {
        store::MailboxAcked p;
        p.upto = upto;
        p.seqs = std::move(seqs);
        return append({std::string(store::stream::k_mailboxes), store::EventType::mailbox_acked, bot,
                       std::nullopt, store::encode_payload(p)});
    }
    store::Event expired(const std::string& bot, std::vector<std::uint64_t> seqs) {
        store::MessagesExpired p;
        p.bot = bot;
        p.seqs = std::move(seqs);
        return append({std::string(store::stream::k_mailboxes), store::EventType::message_expired,
                       "botbusd", std::nullopt, store::encode_payload(p)});
    }
    store::Event dead_lettered(const std::string& bot, store::Seq seq, std::uint32_t deliveries) {
        store::MessageDeadLettered p;
        p.bot = bot;
        p.message_seq = seq;
        p.reason = "max_deliveries";
        p.deliveries = deliveries;
        return append({std::string(store::stream::k_dead_letters),
                       store::EventType::message_dead_lettered, "botbusd", std::nullopt,
                       store::encode_payload(p)});
    }

    store::Seq visible() { return m_store.last_seq(); }
};

// ---- pumping

TEST_F(MailboxDeliveryTest, PumpPushesUnsettledMessagesInSeqOrderAsFirstDeliveries) {
    Deliveries d(m_store, options());
    const auto b1 = send("alice", "bob", "one");
    send("alice", "carol", "not bob's");
    const auto b2 = send("carol", "bob", "two");
    const auto b3 = send("alice", "bob", "three");

    const auto plan = d.pump(Reader{"", "bob", ""}, visible(), k_t0);
    EXPECT_EQ(plan.reader.bot, "bob");
    EXPECT_EQ(seqs_of(plan.deliveries), (std::vector<store::Seq>{b1, b2, b3}));
    EXPECT_EQ(counts_of(plan.deliveries), (std::vector<std::uint32_t>{1, 1, 1}));
    EXPECT_TRUE(plan.expired.empty());
    EXPECT_TRUE(plan.dead.empty());
    ASSERT_EQ(plan.deliveries.size(), 3U);
    EXPECT_EQ(plan.deliveries[1].message.from, "carol");
    EXPECT_EQ(plan.deliveries[1].message.to, std::optional<std::string>("bob"));
    EXPECT_EQ(plan.deliveries[1].message.body, packed_body("two"));

    const auto flights = d.in_flight(Reader{"", "bob", ""});
    EXPECT_EQ(seqs_of(flights), (std::vector<store::Seq>{b1, b2, b3}));
    for (const auto& f : flights) {
        EXPECT_EQ(f.deliveries, 1U);
        EXPECT_EQ(f.deadline_us, k_t0 + k_timeout);
    }
    EXPECT_TRUE(d.in_flight(Reader{"", "carol", ""}).empty()) << "carol has not been pumped";

    EXPECT_TRUE(d.pump(Reader{"", "bob", ""}, visible(), k_t0 + 10).empty()) << "in flight: not pushed twice";
}

TEST_F(MailboxDeliveryTest, PumpNeverReadsPastTheVisibleSeq) {
    Deliveries d(m_store, options());
    const auto m = send_many("bob", 3);
    EXPECT_EQ(seqs_of(d.pump(Reader{"", "bob", ""}, m[1], k_t0).deliveries), (std::vector<store::Seq>{m[0], m[1]}));
    EXPECT_TRUE(d.pump(Reader{"", "bob", ""}, m[1], k_t0).empty());
    EXPECT_EQ(seqs_of(d.pump(Reader{"", "bob", ""}, m[2], k_t0).deliveries), (std::vector<store::Seq>{m[2]}));
    EXPECT_TRUE(d.pump(Reader{"", "bob", ""}, 0, k_t0).empty());
}

TEST_F(MailboxDeliveryTest, PumpKeepsAtMostTheWindowInFlightAndAcksMakeRoom) {
    Deliveries d(m_store, options(2));
    const auto m = send_many("bob", 5);

    EXPECT_EQ(seqs_of(d.pump(Reader{"", "bob", ""}, visible(), k_t0).deliveries), (std::vector<store::Seq>{m[0], m[1]}));
    EXPECT_TRUE(d.pump(Reader{"", "bob", ""}, visible(), k_t0).empty()) << "the window is full";

    d.on_settled(ack("bob", std::nullopt, std::vector<std::uint64_t>{m[0]}), 0);
    EXPECT_EQ(seqs_of(d.in_flight(Reader{"", "bob", ""})), (std::vector<store::Seq>{m[1]}));
    EXPECT_EQ(seqs_of(d.pump(Reader{"", "bob", ""}, visible(), k_t0).deliveries), (std::vector<store::Seq>{m[2]}));

    d.on_settled(ack("bob", m[2]), 0);
    EXPECT_TRUE(d.in_flight(Reader{"", "bob", ""}).empty()) << "upto settles everything in flight below it";
    EXPECT_EQ(seqs_of(d.pump(Reader{"", "bob", ""}, visible(), k_t0).deliveries), (std::vector<store::Seq>{m[3], m[4]}));
    EXPECT_EQ(d.in_flight(Reader{"", "bob", ""}).size(), 2U);
}

TEST_F(MailboxDeliveryTest, AcksOfAnotherBotDoNotMakeRoom) {
    Deliveries d(m_store, options(1));
    const auto b = send_many("bob", 2);
    const auto c = send_many("carol", 2);
    EXPECT_EQ(seqs_of(d.pump(Reader{"", "bob", ""}, visible(), k_t0).deliveries), (std::vector<store::Seq>{b[0]}));
    EXPECT_EQ(seqs_of(d.pump(Reader{"", "carol", ""}, visible(), k_t0).deliveries), (std::vector<store::Seq>{c[0]}));
    d.on_settled(ack("carol", std::nullopt, std::vector<std::uint64_t>{c[0]}), 0);
    EXPECT_TRUE(d.in_flight(Reader{"", "carol", ""}).empty());
    EXPECT_EQ(seqs_of(d.in_flight(Reader{"", "bob", ""})), (std::vector<store::Seq>{b[0]}));
    EXPECT_TRUE(d.pump(Reader{"", "bob", ""}, visible(), k_t0).empty()) << "bob's window is still full";
    EXPECT_EQ(seqs_of(d.pump(Reader{"", "carol", ""}, visible(), k_t0).deliveries), (std::vector<store::Seq>{c[1]}));
}

TEST_F(MailboxDeliveryTest, SettledMessagesAreNotPushed) {
    Deliveries d(m_store, options());
    const auto m = send_many("bob", 5);
    ack("bob", m[0]);
    ack("bob", std::nullopt, std::vector<std::uint64_t>{m[2]});
    expired("bob", {m[3]});
    EXPECT_EQ(seqs_of(d.pump(Reader{"", "bob", ""}, visible(), k_t0).deliveries), (std::vector<store::Seq>{m[1], m[4]}));
}

TEST_F(MailboxDeliveryTest, WindowAndMaxDeliveriesAreAtLeastOne) {
    Deliveries d(m_store, options(0, 0));
    EXPECT_EQ(d.options().window, 1U);
    EXPECT_EQ(d.options().max_deliveries, 1U);
    const auto m = send_many("bob", 2);
    EXPECT_EQ(seqs_of(d.pump(Reader{"", "bob", ""}, visible(), k_t0).deliveries), (std::vector<store::Seq>{m[0]}));
    const auto plans = d.expire(k_t0 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    ASSERT_EQ(plans[0].dead.size(), 1U);
    EXPECT_EQ(plans[0].dead[0].seq, m[0]);
    EXPECT_EQ(plans[0].dead[0].deliveries, 1U);
    EXPECT_TRUE(plans[0].deliveries.empty());
}

// ---- redelivery, dead letters, expiry

TEST_F(MailboxDeliveryTest, ExpireRedeliversDuePushesWithTheCountUpAndANewDeadline) {
    Deliveries d(m_store, options());
    const auto m = send_many("bob", 2);
    d.pump(Reader{"", "bob", ""}, m[0], k_t0);
    d.pump(Reader{"", "bob", ""}, m[1], k_t0 + 500);
    EXPECT_EQ(d.next_deadline(), std::optional<std::int64_t>(k_t0 + k_timeout));

    EXPECT_TRUE(d.expire(k_t0 + k_timeout - 1).empty()) << "not due yet";

    auto plans = d.expire(k_t0 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_EQ(plans[0].reader.bot, "bob");
    EXPECT_EQ(seqs_of(plans[0].deliveries), (std::vector<store::Seq>{m[0]})) << "only the due one";
    EXPECT_EQ(counts_of(plans[0].deliveries), (std::vector<std::uint32_t>{2}));
    EXPECT_TRUE(plans[0].dead.empty());
    EXPECT_TRUE(plans[0].expired.empty());

    const auto flights = d.in_flight(Reader{"", "bob", ""});
    ASSERT_EQ(flights.size(), 2U);
    EXPECT_EQ(flights[0].deliveries, 2U);
    EXPECT_EQ(flights[0].deadline_us, k_t0 + 2 * k_timeout);
    EXPECT_EQ(flights[1].deliveries, 1U);
    EXPECT_EQ(flights[1].deadline_us, k_t0 + 500 + k_timeout);
    EXPECT_EQ(d.next_deadline(), std::optional<std::int64_t>(k_t0 + 500 + k_timeout));

    plans = d.expire(k_t0 + 500 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_EQ(seqs_of(plans[0].deliveries), (std::vector<store::Seq>{m[1]}));
    EXPECT_EQ(counts_of(plans[0].deliveries), (std::vector<std::uint32_t>{2}));
}

TEST_F(MailboxDeliveryTest, AtMaxDeliveriesTheNextExpiryGivesUp) {
    Deliveries d(m_store, options(100, 3));
    const auto m = send("alice", "bob", "never acked");
    EXPECT_EQ(counts_of(d.pump(Reader{"", "bob", ""}, visible(), k_t0).deliveries), (std::vector<std::uint32_t>{1}));
    auto now = k_t0;
    for (std::uint32_t expected = 2; expected <= 3; ++expected) {
        now += k_timeout;
        const auto plans = d.expire(now);
        ASSERT_EQ(plans.size(), 1U);
        EXPECT_EQ(counts_of(plans[0].deliveries), (std::vector<std::uint32_t>{expected}));
    }
    now += k_timeout;
    const auto plans = d.expire(now);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_TRUE(plans[0].deliveries.empty()) << "not pushed a fourth time";
    ASSERT_EQ(plans[0].dead.size(), 1U);
    EXPECT_EQ(plans[0].dead[0].seq, m);
    EXPECT_EQ(plans[0].dead[0].deliveries, 3U);
    EXPECT_TRUE(d.in_flight(Reader{"", "bob", ""}).empty());
    EXPECT_FALSE(d.next_deadline().has_value());

    // While the dead letter is being logged it is neither redelivered nor
    // handed back again.
    EXPECT_TRUE(d.expire(now + 10 * k_timeout).empty());
    EXPECT_TRUE(d.pump(Reader{"", "bob", ""}, visible(), now).empty());
    // A restart decides again (and hands it back again: the server's logging
    // skips a message settled meanwhile, so it is dead-lettered once).
    d.restart_mailbox("bob", 0);
    const auto again = d.pump(Reader{"", "bob", ""}, visible(), now);
    EXPECT_TRUE(again.deliveries.empty());
    ASSERT_EQ(again.dead.size(), 1U);
    EXPECT_EQ(again.dead[0].seq, m);

    // Logged: settled for good.
    d.on_settled(dead_lettered("bob", m, 3), 0);
    d.restart_mailbox("bob", 0);
    EXPECT_TRUE(d.pump(Reader{"", "bob", ""}, visible(), now).empty());
}

TEST_F(MailboxDeliveryTest, MessagesPastTheirTtlAreHandedBackAsExpiredNotPushed) {
    Deliveries d(m_store, options(100, 10));
    const auto stale = send("alice", "bob", "stale", k_t0);  // expires_at == now counts as expired
    const auto fresh = send("alice", "bob", "fresh", k_t0 + 1);
    const auto keep = send("alice", "bob", "no ttl");

    auto plan = d.pump(Reader{"", "bob", ""}, visible(), k_t0);
    EXPECT_EQ(plan.expired, (std::vector<store::Seq>{stale}));
    EXPECT_EQ(seqs_of(plan.deliveries), (std::vector<store::Seq>{fresh, keep}));
    EXPECT_TRUE(plan.dead.empty());
    EXPECT_EQ(seqs_of(d.in_flight(Reader{"", "bob", ""})), (std::vector<store::Seq>{fresh, keep}));

    // `fresh` expires while in flight: at its ack deadline it is handed
    // back as expired, not redelivered; `keep` is redelivered.
    const auto plans = d.expire(k_t0 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_EQ(plans[0].expired, (std::vector<store::Seq>{fresh}));
    EXPECT_EQ(seqs_of(plans[0].deliveries), (std::vector<store::Seq>{keep}));
    EXPECT_EQ(seqs_of(d.in_flight(Reader{"", "bob", ""})), (std::vector<store::Seq>{keep}));

    // Not handed back twice while the expiry is logged...
    plan = d.pump(Reader{"", "bob", ""}, visible(), k_t0 + k_timeout);
    EXPECT_TRUE(plan.expired.empty());
    // ...but a restart decides again (the server's logging skips what was
    // settled meanwhile, so nothing is logged twice).
    d.restart_mailbox("bob", 0);
    plan = d.pump(Reader{"", "bob", ""}, visible(), k_t0 + k_timeout);
    EXPECT_EQ(plan.expired, (std::vector<store::Seq>{stale, fresh}));
    EXPECT_EQ(seqs_of(plan.deliveries), (std::vector<store::Seq>{keep}));

    d.on_settled(expired("bob", {stale, fresh}), 0);
    d.restart_mailbox("bob", 0);
    plan = d.pump(Reader{"", "bob", ""}, visible(), k_t0 + k_timeout);
    EXPECT_TRUE(plan.expired.empty());
    EXPECT_EQ(seqs_of(plan.deliveries), (std::vector<store::Seq>{keep}));
}

TEST_F(MailboxDeliveryTest, ExpireDropsPushesSettledInTheStoreBeforeTheirRelease) {
    Deliveries d(m_store, options());
    const auto m = send_many("bob", 2);
    d.pump(Reader{"", "bob", ""}, visible(), k_t0);
    ack("bob", std::nullopt, std::vector<std::uint64_t>{m[0]});  // logged, on_settled not called yet
    const auto plans = d.expire(k_t0 + k_timeout);
    ASSERT_EQ(plans.size(), 1U);
    EXPECT_EQ(seqs_of(plans[0].deliveries), (std::vector<store::Seq>{m[1]}));
    EXPECT_EQ(seqs_of(d.in_flight(Reader{"", "bob", ""})), (std::vector<store::Seq>{m[1]}));
}

// ---- connections coming and going

TEST_F(MailboxDeliveryTest, RestartPushesEverythingUnsettledAgainWithTheCountsContinuing) {
    Deliveries d(m_store, options());
    const auto m = send_many("bob", 4);
    EXPECT_EQ(d.pump(Reader{"", "bob", ""}, visible(), k_t0).deliveries.size(), 4U);
    d.on_settled(ack("bob", m[0]), 0);
    d.on_settled(ack("bob", std::nullopt, std::vector<std::uint64_t>{m[2]}), 0);

    // Restarted after the deadlines passed: each push is another delivery.
    d.restart_mailbox("bob", k_t0 + k_timeout + 1);
    EXPECT_TRUE(d.in_flight(Reader{"", "bob", ""}).empty());
    EXPECT_FALSE(d.next_deadline().has_value());
    const auto plan = d.pump(Reader{"", "bob", ""}, visible(), k_t0 + 5);
    EXPECT_EQ(seqs_of(plan.deliveries), (std::vector<store::Seq>{m[1], m[3]})) << "from the floor, settled ones skipped";
    EXPECT_EQ(counts_of(plan.deliveries), (std::vector<std::uint32_t>{2, 2}));
    for (const auto& delivery : plan.deliveries) EXPECT_TRUE(delivery.redelivered);
    EXPECT_EQ(d.next_deadline(), std::optional<std::int64_t>(k_t0 + 5 + k_timeout));
}

TEST_F(MailboxDeliveryTest, ARestartBeforeTheDeadlinesPushesAgainWithoutCountingADelivery) {
    Deliveries d(m_store, options(100, 2));
    const auto m = send_many("bob", 2);
    d.pump(Reader{"", "bob", ""}, visible(), k_t0);
    // A reconnect storm (a pool of connections saying hello) is no failure
    // to acknowledge: nothing reaches the dead-letter limit.
    for (int i = 0; i < 5; ++i) {
        d.restart_mailbox("bob", k_t0 + 1);
        const auto plan = d.pump(Reader{"", "bob", ""}, visible(), k_t0 + 1);
        EXPECT_EQ(seqs_of(plan.deliveries), (std::vector<store::Seq>{m[0], m[1]}));
        EXPECT_EQ(counts_of(plan.deliveries), (std::vector<std::uint32_t>{1, 1}));
        for (const auto& delivery : plan.deliveries) EXPECT_TRUE(delivery.redelivered);
        EXPECT_TRUE(plan.dead.empty());
    }
}

TEST_F(MailboxDeliveryTest, OfflineClearsWhatIsInFlight) {
    Deliveries d(m_store, options());
    const auto m = send_many("bob", 2);
    d.pump(Reader{"", "bob", ""}, visible(), k_t0);
    d.offline(Reader{"", "bob", ""});
    EXPECT_TRUE(d.in_flight(Reader{"", "bob", ""}).empty());
    EXPECT_FALSE(d.next_deadline().has_value());
    EXPECT_TRUE(d.expire(k_t0 + 100 * k_timeout).empty()) << "nothing is redelivered to a bot that is gone";

    // Back after the ack timeout: the counts kept going.
    d.restart_mailbox("bob", k_t0 + k_timeout);
    const auto plan = d.pump(Reader{"", "bob", ""}, visible(), k_t0 + k_timeout);
    EXPECT_EQ(seqs_of(plan.deliveries), (std::vector<store::Seq>{m[0], m[1]}));
    EXPECT_EQ(counts_of(plan.deliveries), (std::vector<std::uint32_t>{2, 2}));

    d.offline(Reader{"", "nobody", ""});  // unknown bot: nothing to do
    EXPECT_EQ(d.in_flight(Reader{"", "bob", ""}).size(), 2U);
}

TEST_F(MailboxDeliveryTest, BackWithinTheAckTimeoutAfterItsConnectionClosedIsNoFailure) {
    Deliveries d(m_store, options());
    const auto m = send_many("bob", 2);
    d.pump(Reader{"", "bob", ""}, visible(), k_t0);
    d.offline(Reader{"", "bob", ""});  // the connection closed
    d.restart_mailbox("bob", k_t0 + k_timeout - 1);
    const auto plan = d.pump(Reader{"", "bob", ""}, visible(), k_t0 + k_timeout - 1);
    EXPECT_EQ(seqs_of(plan.deliveries), (std::vector<store::Seq>{m[0], m[1]}));
    EXPECT_EQ(counts_of(plan.deliveries), (std::vector<std::uint32_t>{1, 1})) << "a reconnect is no failure";
    for (const auto& push : plan.deliveries) EXPECT_TRUE(push.redelivered);
}

TEST_F(MailboxDeliveryTest, NextDeadlineIsTheEarliestAcrossBots) {
    Deliveries d(m_store, options());
    EXPECT_FALSE(d.next_deadline().has_value());
    send("alice", "bob", "b");
    send("alice", "carol", "c");
    d.pump(Reader{"", "bob", ""}, visible(), k_t0 + 300);
    d.pump(Reader{"", "carol", ""}, visible(), k_t0 + 100);
    EXPECT_EQ(d.next_deadline(), std::optional<std::int64_t>(k_t0 + 100 + k_timeout));
    d.offline(Reader{"", "carol", ""});
    EXPECT_EQ(d.next_deadline(), std::optional<std::int64_t>(k_t0 + 300 + k_timeout));

    // Due for both: one plan per bot.
    d.restart_mailbox("carol", 0);
    d.pump(Reader{"", "carol", ""}, visible(), k_t0 + 100);
    const auto plans = d.expire(k_t0 + 300 + k_timeout);
    ASSERT_EQ(plans.size(), 2U);
    EXPECT_NE(plans[0].reader.bot, plans[1].reader.bot);
}

TEST_F(MailboxDeliveryTest, SettlementsOfOtherKindsAndUnknownBotsAreIgnored) {
    Deliveries d(m_store, options());
    const auto m = send_many("bob", 1);
    d.pump(Reader{"", "bob", ""}, visible(), k_t0);
    d.on_settled(append({"s", store::EventType::message_published, "bob", std::nullopt, std::string("\x80", 1)}), 0);
    d.on_settled(expired("carol", {m[0]}), 0);
    d.on_settled(dead_lettered("carol", m[0], 1), 0);
    d.on_settled(ack("dave", m[0]), 0);
    EXPECT_EQ(seqs_of(d.in_flight(Reader{"", "bob", ""})), (std::vector<store::Seq>{m[0]}));
    d.on_settled(expired("bob", {m[0]}), 0);
    EXPECT_TRUE(d.in_flight(Reader{"", "bob", ""}).empty());
}

// ---- the rate limiter

TEST(MailboxRateLimiter, BurstThenOneTokenPerIntervalWithTheWaitToTheNext) {
    RateLimiter limiter(RateLimit{2, 3});
    EXPECT_TRUE(limiter.enabled());
    const std::int64_t t = 1'000'000;
    for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.take("alice", "ch/general", t), std::nullopt) << i;
    EXPECT_EQ(limiter.take("alice", "ch/general", t), std::optional<std::int64_t>(500'000));
    EXPECT_EQ(limiter.take("alice", "ch/general", t + 250'000), std::optional<std::int64_t>(250'000));
    EXPECT_EQ(limiter.take("alice", "ch/general", t + 500'000), std::nullopt);
    EXPECT_EQ(limiter.take("alice", "ch/general", t + 500'000), std::optional<std::int64_t>(500'000));
}

TEST(MailboxRateLimiter, RefillStopsAtTheBurst) {
    RateLimiter limiter(RateLimit{1, 2});
    EXPECT_EQ(limiter.take("a", "x", 0), std::nullopt);
    EXPECT_EQ(limiter.take("a", "x", 0), std::nullopt);
    EXPECT_TRUE(limiter.take("a", "x", 0).has_value());
    const std::int64_t later = 100'000'000;  // 100 s idle
    EXPECT_EQ(limiter.take("a", "x", later), std::nullopt);
    EXPECT_EQ(limiter.take("a", "x", later), std::nullopt);
    EXPECT_EQ(limiter.take("a", "x", later), std::optional<std::int64_t>(1'000'000));
}

TEST(MailboxRateLimiter, BucketsArePerSenderAndTarget) {
    RateLimiter limiter(RateLimit{1, 1});
    EXPECT_EQ(limiter.take("a", "x", 0), std::nullopt);
    EXPECT_TRUE(limiter.take("a", "x", 0).has_value());
    EXPECT_EQ(limiter.take("a", "y", 0), std::nullopt);
    EXPECT_EQ(limiter.take("b", "x", 0), std::nullopt);
    EXPECT_EQ(limiter.take("x", "a", 0), std::nullopt);
    EXPECT_TRUE(limiter.take("a", "y", 0).has_value());
}

TEST(MailboxRateLimiter, BurstDefaultsToOneSecondsWorthAndAtLeastOne) {
    RateLimiter five(RateLimit{5, 0});
    for (int i = 0; i < 5; ++i) EXPECT_EQ(five.take("a", "x", 0), std::nullopt) << i;
    EXPECT_EQ(five.take("a", "x", 0), std::optional<std::int64_t>(200'000));

    RateLimiter slow(RateLimit{0.5, 0});
    EXPECT_EQ(slow.take("a", "x", 0), std::nullopt);
    EXPECT_EQ(slow.take("a", "x", 0), std::optional<std::int64_t>(2'000'000));
    EXPECT_EQ(slow.take("a", "x", 2'000'000), std::nullopt);
}

TEST(MailboxRateLimiter, RefilledBucketsAreDroppedOnceTheTableGrowsAndBusyOnesKept) {
    RateLimiter limiter(RateLimit{1, 2});
    // A busy pair: its burst used up just before the table is pruned.
    EXPECT_EQ(limiter.take("busy", "x", 9'000'000), std::nullopt);
    EXPECT_EQ(limiter.take("busy", "x", 9'000'000), std::nullopt);
    // 100,000 pairs active once, long ago.
    for (int i = 0; i < 100'000; ++i) ASSERT_EQ(limiter.take("old-" + std::to_string(i), "x", 0), std::nullopt);
    EXPECT_EQ(limiter.bucket_count(), 100'001U);
    // A new pair past 100,000 buckets prunes every full one (the old pairs
    // have refilled by now); the busy pair keeps its empty bucket.
    EXPECT_EQ(limiter.take("new", "x", 9'000'001), std::nullopt);
    EXPECT_EQ(limiter.bucket_count(), 2U);
    EXPECT_EQ(limiter.take("busy", "x", 9'000'001), std::optional<std::int64_t>(999'999));
    // A pruned pair starts again with a full bucket.
    EXPECT_EQ(limiter.take("old-7", "x", 9'000'001), std::nullopt);
    EXPECT_EQ(limiter.take("old-7", "x", 9'000'001), std::nullopt);
    EXPECT_TRUE(limiter.take("old-7", "x", 9'000'001).has_value());
}

TEST(MailboxRateLimiter, DisabledWhenPerSecondIsZero) {
    RateLimiter off(RateLimit{0, 5});
    EXPECT_FALSE(off.enabled());
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(off.take("a", "x", 0), std::nullopt) << i;
    RateLimiter defaulted{RateLimit{}};
    EXPECT_FALSE(defaulted.enabled());
    EXPECT_EQ(defaulted.take("a", "x", 0), std::nullopt);
}

TEST(MailboxRateLimiter, AClockGoingBackwardsRefillsNothing) {
    RateLimiter limiter(RateLimit{1, 1});
    EXPECT_EQ(limiter.take("a", "x", 10'000'000), std::nullopt);
    EXPECT_EQ(limiter.take("a", "x", 5'000'000), std::optional<std::int64_t>(1'000'000));
}

}  // namespace
