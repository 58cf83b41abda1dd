// Direct-message delivery guarantees against the real botbusd: acks by seq,
// redelivery after the ack timeout with its count, the delivery window,
// dead letters and their replay, time to live, send-and-wait, the loop and
// flood guards, and acknowledgements surviving kill -9.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "feed_support.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::eventually;
using testing::options_for;
using testing::u64_field;

bus::PackedValue text_body(const std::string& text) { return bus::pack_as_value(text); }

// The mailbox op's view of a bot: its floor, unsettled count and what is in flight.
struct MailboxState {
    std::uint64_t acked = 0;
    std::uint64_t unsettled = 0;
    std::map<std::uint64_t, std::uint64_t> in_flight;  // seq -> deliveries
};

MailboxState mailbox_of(client::Client& client, const std::string& bot) {
    bus::MailboxRequest request;
    request.bot = bot;
    const auto reply = client.call_ok(request);
    MailboxState state{u64_field(reply, "acked"), u64_field(reply, "unsettled"), {}};
    const auto* list = reply.find("in_flight");
    if (!list || list->type != msgpack::type::ARRAY) {
        ADD_FAILURE() << "mailbox reply has no in_flight array";
        return state;
    }
    for (std::uint32_t i = 0; i < list->via.array.size; ++i) {
        const auto item = nlohmann::json::from_msgpack(bus::pack_value(list->via.array.ptr[i]).bytes);
        state.in_flight[item.at("seq").get<std::uint64_t>()] = item.at("deliveries").get<std::uint64_t>();
    }
    return state;
}

std::uint64_t ack_seqs(client::Client& client, std::vector<std::uint64_t> seqs) {
    return client.ack(std::nullopt, std::move(seqs));
}

TEST(MailboxDelivery, AnUnacknowledgedPushIsDeliveredAgainAfterTheAckTimeoutWithItsCount) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--ack-timeout-ms", "200"});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    client::Client bob(context, options_for(daemon));
    bob.hello("bob");

    const auto sent = alice.send("bob", text_body("ping?"));
    const auto first = bob.next_push(5s);
    ASSERT_TRUE(first);
    EXPECT_EQ(first->seq, sent.seq);
    EXPECT_EQ(first->deliveries, 1U);
    EXPECT_FALSE(first->redelivered);
    EXPECT_EQ(mailbox_of(alice, "bob").in_flight, (std::map<std::uint64_t, std::uint64_t>{{sent.seq, 1}}));

    const auto again = bob.next_push(5s);
    ASSERT_TRUE(again) << "not delivered again after the ack timeout";
    EXPECT_EQ(again->seq, sent.seq);
    EXPECT_EQ(again->deliveries, 2U);
    EXPECT_TRUE(again->redelivered);
    EXPECT_EQ(again->body, text_body("ping?"));

    EXPECT_EQ(ack_seqs(bob, {sent.seq}), sent.seq);
    const auto after = mailbox_of(bob, "bob");
    EXPECT_TRUE(after.in_flight.empty()) << "an acknowledged message is still waiting for redelivery";
    EXPECT_EQ(after.unsettled, 0U);
}

TEST(MailboxDelivery, AcksBySeqSettleOutOfOrderAndAReconnectGetsOnlyWhatIsLeft) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 4; ++i) seqs.push_back(alice.send("bob", text_body("m" + std::to_string(i))).seq);

    {
        client::Client bob(context, options_for(daemon));
        bob.hello("bob");
        bob.call_ok(bus::PingRequest{});  // the hello's pushes precede this reply
        for (const auto seq : seqs) {
            const auto push = bob.next_push(0ms);
            ASSERT_TRUE(push);
            EXPECT_EQ(push->seq, seq);
        }
        // The third and the first: the floor moves to the first only.
        EXPECT_EQ(ack_seqs(bob, {seqs[2]}), 0U);
        EXPECT_EQ(ack_seqs(bob, {seqs[0]}), seqs[0]);
        const auto state = mailbox_of(bob, "bob");
        EXPECT_EQ(state.acked, seqs[0]);
        EXPECT_EQ(state.unsettled, 2U);
    }
    // The daemon sees the first connection close a moment later: until then
    // a new one would join beside it and get its two only as it leaves.
    ASSERT_TRUE(eventually([&] { return mailbox_of(alice, "bob").in_flight.empty(); }))
        << "the daemon did not see bob's first connection close";

    client::Client bob(context, options_for(daemon));
    bob.hello("bob");
    bob.call_ok(bus::PingRequest{});
    std::vector<std::uint64_t> again;
    while (auto push = bob.next_push(0ms)) {
        again.push_back(push->seq);
        // Reconnected within the ack timeout: pushed again, flagged, but not
        // counted as another delivery towards the dead-letter limit.
        EXPECT_EQ(push->deliveries, 1U) << "seq " << push->seq;
        EXPECT_TRUE(push->redelivered);
    }
    EXPECT_EQ(again, (std::vector<std::uint64_t>{seqs[1], seqs[3]}));
    // Settling the rest moves the floor over everything.
    EXPECT_EQ(ack_seqs(bob, {seqs[3], seqs[1]}), seqs[3]);
}

TEST(MailboxDelivery, AtMostTheWindowIsInFlightAndEachAckLetsMoreThrough) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--mailbox-window", "10"});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    std::vector<std::uint64_t> seqs;
    for (int i = 0; i < 25; ++i) seqs.push_back(alice.send("carol", bus::pack_as_value(i)).seq);

    client::Client carol(context, options_for(daemon));
    carol.hello("carol");
    carol.call_ok(bus::PingRequest{});
    std::vector<std::uint64_t> pushed;
    while (auto push = carol.next_push(0ms)) pushed.push_back(push->seq);
    EXPECT_EQ(pushed, std::vector<std::uint64_t>(seqs.begin(), seqs.begin() + 10));

    // One ack by seq makes room for one more; an ack up to a seq for as many.
    ack_seqs(carol, {seqs[4]});
    carol.call_ok(bus::PingRequest{});
    auto next = carol.next_push(0ms);
    ASSERT_TRUE(next);
    EXPECT_EQ(next->seq, seqs[10]);
    EXPECT_FALSE(carol.next_push(0ms));

    carol.ack(seqs[10]);
    carol.call_ok(bus::PingRequest{});
    pushed.clear();
    while (auto push = carol.next_push(0ms)) pushed.push_back(push->seq);
    EXPECT_EQ(pushed, std::vector<std::uint64_t>(seqs.begin() + 11, seqs.begin() + 21));
}

TEST(MailboxDelivery, AfterMaxDeliveriesAMessageIsDeadLetteredWithItsReasonAndCanBeReplayed) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--ack-timeout-ms", "100", "--max-deliveries", "2"});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    client::Client ops(context, options_for(daemon));
    ops.hello("ops");
    testing::Feed dead_letters(context, ops, {std::string(bus::k_dead_letters_topic)});
    client::Client bob(context, options_for(daemon));
    bob.hello("bob");

    const auto poison = alice.send("bob", text_body("poison"), "job");
    for (std::uint32_t delivery = 1; delivery <= 2; ++delivery) {
        const auto push = bob.next_push(5s);
        ASSERT_TRUE(push) << "delivery " << delivery;
        EXPECT_EQ(push->seq, poison.seq);
        EXPECT_EQ(push->deliveries, delivery);
    }
    const auto event = dead_letters.wait_for("message.dead_lettered", 5000ms);
    ASSERT_TRUE(event) << "no dead-letter event on " << bus::k_dead_letters_topic;
    EXPECT_EQ(event->event.at("bot"), "bob");
    EXPECT_EQ(event->event.at("message_seq"), poison.seq);
    EXPECT_EQ(event->event.at("deliveries"), 2);
    EXPECT_NE(event->event.at("reason").get<std::string>().find("max_deliveries"), std::string::npos);

    // Settled: not delivered a third time, not pending.
    const auto state = mailbox_of(ops, "bob");
    EXPECT_TRUE(state.in_flight.empty());
    EXPECT_EQ(state.unsettled, 0U);
    EXPECT_EQ(state.acked, poison.seq);

    bus::DlqListRequest list;
    list.bot = "bob";
    const auto listed = nlohmann::json::from_msgpack(
        bus::pack_value(*ops.call_ok(list).find("dead_letters")).bytes);
    ASSERT_EQ(listed.size(), 1U);
    EXPECT_EQ(listed[0].at("seq"), event->event.at("seq"));
    EXPECT_EQ(listed[0].at("deliveries"), 2);
    EXPECT_EQ(listed[0].at("message").at("seq"), poison.seq);
    EXPECT_EQ(listed[0].at("message").at("from"), "alice");
    EXPECT_EQ(listed[0].at("message").at("type"), "job");
    EXPECT_FALSE(listed[0].contains("replayed_seq"));

    // Replayed: a copy at the end of bob's mailbox, from alice, delivered afresh.
    const auto replayed = ops.call_ok(bus::DlqReplayRequest{poison.seq});
    const auto copy_seq = u64_field(replayed, "seq");
    EXPECT_GT(copy_seq, poison.seq);
    const auto copy = bob.next_push(5s);
    ASSERT_TRUE(copy);
    EXPECT_EQ(copy->seq, copy_seq);
    EXPECT_EQ(copy->from, "alice");
    EXPECT_EQ(copy->body, text_body("poison"));
    EXPECT_EQ(copy->replay_of, poison.seq);
    EXPECT_EQ(copy->deliveries, 1U);
    ack_seqs(bob, {copy_seq});

    const auto second = ops.call(bus::DlqReplayRequest{poison.seq});
    EXPECT_FALSE(second.ok);
    EXPECT_EQ(second.error_name, "conflict");
    const auto relisted = nlohmann::json::from_msgpack(
        bus::pack_value(*ops.call_ok(list).find("dead_letters")).bytes);
    EXPECT_EQ(relisted.at(0).at("replayed_seq"), copy_seq);
}

TEST(MailboxDelivery, AnExpiredMessageIsNotDeliveredAndItsExpiryIsRecorded) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    const auto short_lived = alice.send("bob", text_body("stale soon"), "text", std::nullopt, std::nullopt, 50);
    const auto long_lived = alice.send("bob", text_body("still good"), "text", std::nullopt, std::nullopt, 600000);

    bus::HistoryRequest inbox;
    inbox.inbox = true;
    inbox.bot = "bob";
    const auto stored = alice.history(inbox);
    ASSERT_EQ(stored.messages.size(), 2U);
    ASSERT_TRUE(stored.messages[0].expires_at);
    // Stamped when the send was handled, just before the append stamped ts.
    EXPECT_LE(*stored.messages[0].expires_at, short_lived.ts_us + 50'000);
    EXPECT_GT(*stored.messages[0].expires_at, short_lived.ts_us + 50'000 - 100'000);
    // The time to live is the condition: wait for it to pass on the daemon's clock.
    std::this_thread::sleep_until(std::chrono::system_clock::time_point(
        std::chrono::microseconds(*stored.messages[0].expires_at + 1000)));

    client::Client bob(context, options_for(daemon));
    bob.hello("bob");
    bob.call_ok(bus::PingRequest{});
    const auto push = bob.next_push(0ms);
    ASSERT_TRUE(push);
    EXPECT_EQ(push->seq, long_lived.seq) << "an expired message was delivered";
    EXPECT_FALSE(bob.next_push(0ms));

    // The expiry is logged: the message is settled, the floor moves over it.
    ASSERT_TRUE(eventually([&] { return mailbox_of(bob, "bob").acked == short_lived.seq; }))
        << "the expiry was never recorded";
    ack_seqs(bob, {long_lived.seq});
    EXPECT_EQ(mailbox_of(bob, "bob").unsettled, 0U);
}

TEST(MailboxDelivery, SendAndWaitReturnsTheAnswerCorrelatedByReplyTo) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    std::atomic<bool> stop{false};
    std::thread responder([&] {
        client::Client bob(context, options_for(daemon));
        bob.hello("bob");
        const auto deadline = Clock::now() + 20s;
        while (!stop && Clock::now() < deadline) {
            const auto question = bob.next_push(20ms);
            if (!question) continue;
            // An unrelated message first, then the answer.
            bob.send(question->from, text_body("noise"));
            bob.send(question->from, text_body("answer to " + std::to_string(question->seq)), "text", std::nullopt,
                     question->seq);
            bob.ack(std::nullopt, {question->seq});
        }
    });

    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    const auto answer = alice.send_and_wait("bob", text_body("what time is it?"), 10000ms);
    EXPECT_EQ(answer.from, "bob");
    ASSERT_TRUE(answer.reply_to);
    EXPECT_EQ(answer.body, text_body("answer to " + std::to_string(*answer.reply_to)));
    EXPECT_EQ(answer.hop, 1U);
    EXPECT_EQ(answer.conversation, *answer.reply_to);
    // The unrelated push was kept for next_push.
    const auto noise = alice.next_push(5s);
    ASSERT_TRUE(noise);
    EXPECT_EQ(noise->body, text_body("noise"));
    stop = true;
    responder.join();

    // Nobody answers carol: the wait ends at its timeout.
    EXPECT_THROW(alice.send_and_wait("carol", text_body("anyone?"), 300ms), client::TimeoutError);
}

TEST(LoopGuards, AnAnswerDeeperThanTheHopLimitIsRefused) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--max-hops", "3"});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    client::Client bob(context, options_for(daemon));
    bob.hello("bob");

    const auto root = alice.publish("lobby", text_body("start"));
    std::uint64_t last = root.seq;
    for (int hop = 1; hop <= 3; ++hop) {
        auto& speaker = hop % 2 == 1 ? bob : alice;
        last = speaker.send(hop % 2 == 1 ? "alice" : "bob", text_body("hop " + std::to_string(hop)), "text",
                            std::nullopt, last)
                   .seq;
    }
    const auto refused = bob.call(bus::SendRequest{"alice", std::nullopt, text_body("hop 4"), std::nullopt, last,
                                                   std::nullopt});
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.error_name, "depth_exceeded");
    EXPECT_NE(refused.message.find("limit is 3"), std::string::npos) << refused.message;
    // A fresh message starts a new conversation.
    EXPECT_NO_THROW(bob.send("alice", text_body("new topic")));

    bus::HistoryRequest talk;
    talk.peer = "bob";
    const auto messages = alice.history(talk).messages;
    ASSERT_EQ(messages.size(), 4U);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(messages[i].conversation, root.seq);
        EXPECT_EQ(messages[i].hop, i + 1);
    }
    EXPECT_EQ(messages[3].conversation, messages[3].seq);
    EXPECT_EQ(messages[3].hop, 0U);
}

TEST(FloodGuards, ASenderOverItsRateIsToldWhenToRetry) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--rate-limit", "2", "--rate-burst", "3"});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    for (int i = 0; i < 3; ++i) alice.publish("lobby", bus::pack_as_value(i));
    // Taken before the refused request is sent, so the daemon refused it
    // at this time or later, however long the machine takes to answer.
    const auto before_refusal = Clock::now();
    const auto refused = alice.call(bus::PublishRequest{"lobby", std::nullopt, text_body("one too many"),
                                                        std::nullopt, std::nullopt});
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.error_name, "rate_limited");
    const auto retry_after = u64_field(refused, "retry_after_ms");
    EXPECT_GT(retry_after, 0U);
    EXPECT_LE(retry_after, 500U);
    // Other channels and recipients have buckets of their own.
    EXPECT_NO_THROW(alice.publish("other", text_body("fine")));
    EXPECT_NO_THROW(alice.send("bob", text_body("fine")));
    // Refused until the time it names (a refusal takes no token), then the
    // channel takes messages again. The retry that succeeds was answered
    // no sooner than retry_after_ms after the refusal; the 1 ms is the
    // rounding of the daemon's microsecond wait up to milliseconds.
    std::vector<std::string> retry_errors;
    ASSERT_TRUE(eventually([&] {
        const auto retry = alice.call(bus::PublishRequest{"lobby", std::nullopt, text_body("retried"),
                                                          std::nullopt, std::nullopt});
        if (!retry.ok) retry_errors.push_back(retry.error_name);
        return retry.ok;
    }));
    EXPECT_GE(Clock::now() - before_refusal, std::chrono::milliseconds(retry_after) - 1ms);
    for (const auto& error : retry_errors) EXPECT_EQ(error, "rate_limited");
}

// kill -9 while a bot acknowledges its mailbox: after the restart, every
// message whose ack was not confirmed comes again and none whose ack was does.
TEST(MailboxCrash, AcknowledgementsSurviveKill9AndEverythingElseIsRedelivered) {
    constexpr std::uint64_t k_messages = 1500;
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    zmq::context_t context;
    std::set<std::uint64_t> all;
    std::set<std::uint64_t> confirmed;   // ack replied ok
    std::set<std::uint64_t> attempted;   // ack sent, reply perhaps lost with the daemon
    {
        testing::DaemonProcess daemon(data);
        client::Client alice(context, options_for(daemon));
        alice.hello("alice");
        std::vector<std::uint64_t> ids;
        for (std::uint64_t i = 0; i < k_messages; ++i) {
            ids.push_back(alice.send_request(bus::SendRequest{"bob", std::nullopt, bus::pack_as_value(i),
                                                              std::nullopt, std::nullopt, std::nullopt}));
        }
        for (std::size_t i = 0; i < ids.size(); ++i) {
            const auto reply = alice.receive_reply(10000ms);
            ASSERT_TRUE(reply && reply->ok);
            all.insert(u64_field(*reply, "seq"));
        }

        client::Client bob(context, options_for(daemon));
        bob.hello("bob");
        std::map<std::uint64_t, std::uint64_t> ack_of_request;  // request id -> seq
        const auto deadline = Clock::now() + 30s;
        while (confirmed.size() < k_messages / 3 && Clock::now() < deadline) {
            while (auto push = bob.next_push(0ms)) {
                bus::AckRequest ack;
                ack.seqs = std::vector<std::uint64_t>{push->seq};
                ack_of_request[bob.send_request(ack)] = push->seq;
                attempted.insert(push->seq);
            }
            if (auto reply = bob.receive_reply(20ms); reply && reply->id) {
                ASSERT_TRUE(reply->ok) << reply->message;
                confirmed.insert(ack_of_request.at(*reply->id));
            }
        }
        ASSERT_GE(confirmed.size(), k_messages / 3);
        // Acks are still in flight: some of them land, some die with the daemon.
        for (int i = 0; i < 50; ++i) {
            if (auto push = bob.next_push(0ms)) {
                bus::AckRequest ack;
                ack.seqs = std::vector<std::uint64_t>{push->seq};
                ack_of_request[bob.send_request(ack)] = push->seq;
                attempted.insert(push->seq);
            }
        }
        daemon.kill_hard();
    }

    testing::DaemonProcess daemon(data);
    client::Client bob(context, options_for(daemon));
    bob.hello("bob");
    std::set<std::uint64_t> redelivered;
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
        std::vector<std::uint64_t> batch;
        while (auto push = bob.next_push(batch.empty() ? 200ms : 0ms)) {
            EXPECT_FALSE(confirmed.contains(push->seq)) << "acknowledged seq " << push->seq << " came again";
            EXPECT_TRUE(redelivered.insert(push->seq).second) << "seq " << push->seq << " twice after the restart";
            batch.push_back(push->seq);
        }
        if (batch.empty()) break;
        ack_seqs(bob, batch);  // makes room in the window for the rest
    }
    for (const auto seq : all) {
        if (!attempted.contains(seq)) {
            EXPECT_TRUE(redelivered.contains(seq)) << "unacknowledged seq " << seq << " lost";
        }
    }
    std::cout << "[ info     ] " << confirmed.size() << " acks confirmed, " << attempted.size()
              << " sent before SIGKILL; " << redelivered.size() << " messages redelivered after restart\n";
    EXPECT_EQ(mailbox_of(bob, "bob").unsettled, 0U);
}

}  // namespace
}  // namespace botbus
