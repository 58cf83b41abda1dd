// Subscriptions delivered over the command connection, against the real
// botbusd: start positions (seq, time, last N, now) with history, then
// caught_up, then live, without gap or duplicate; durable subscriptions
// pushed with a credit window or pulled with fetch, acknowledged,
// redelivered, dead-lettered, surviving a restart; lag and stuck readers;
// a slow reader that loses nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
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
using Json = nlohmann::json;

bus::SubscribeRequest delivering(const std::string& channel) {
    bus::SubscribeRequest request;
    request.channel = channel;
    request.deliver = "push";
    return request;
}

bus::SubscribeRequest durable(const std::string& channel, const std::string& deliver = "push") {
    auto request = delivering(channel);
    request.durable = true;
    request.deliver = deliver;
    return request;
}

// Reads pushes until the caught_up marker; returns the messages before it.
std::vector<bus::Message> until_caught_up(client::Client& client, std::uint64_t* position = nullptr) {
    std::vector<bus::Message> messages;
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline) {
        auto push = client.next_push(testing::until(deadline));
        if (!push) break;
        if (push->event == "caught_up") {
            if (position) *position = push->seq;
            return messages;
        }
        messages.push_back(std::move(*push));
    }
    ADD_FAILURE() << "no caught_up marker after " << messages.size() << " messages";
    return messages;
}

std::vector<std::uint64_t> seqs_of(const std::vector<bus::Message>& messages) {
    std::vector<std::uint64_t> seqs;
    for (const auto& m : messages) seqs.push_back(m.seq);
    return seqs;
}

Json consumers_of(client::Client& client, const std::string& channel) {
    bus::ConsumersRequest request;
    request.channel = channel;
    return Json::from_msgpack(bus::pack_value(*client.call_ok(request).find("consumers")).bytes);
}

class Subscriptions : public ::testing::Test {
protected:
    void start(std::vector<std::string> args = {}) {
        m_daemon = std::make_unique<testing::DaemonProcess>(m_dir.path() / "data", std::move(args));
        m_alice = std::make_unique<client::Client>(m_context, options_for(*m_daemon));
        m_alice->hello("alice");
    }
    std::unique_ptr<client::Client> bot(const std::string& name) {
        auto client = std::make_unique<client::Client>(m_context, options_for(*m_daemon));
        client->hello(name);
        return client;
    }
    std::vector<client::Ack> publish_n(const std::string& channel, int count, int first = 0) {
        std::vector<client::Ack> acks;
        for (int i = first; i < first + count; ++i) acks.push_back(m_alice->publish(channel, bus::pack_as_value(i)));
        return acks;
    }

    testing::TempDir m_dir;
    zmq::context_t m_context;
    std::unique_ptr<testing::DaemonProcess> m_daemon;
    std::unique_ptr<client::Client> m_alice;
};

TEST_F(Subscriptions, EachStartPositionGivesExactlyItsHistoryThenCaughtUpThenLive) {
    start();
    const auto acks = publish_n("lobby", 10);
    std::vector<std::uint64_t> seqs;
    for (const auto& a : acks) seqs.push_back(a.seq);
    const auto tail = [&](std::size_t from) {
        return std::vector<std::uint64_t>(seqs.begin() + static_cast<std::ptrdiff_t>(from), seqs.end());
    };

    auto by_seq = delivering("lobby");
    by_seq.from_seq = seqs[3];
    auto by_time = delivering("lobby");
    by_time.from_time = static_cast<std::uint64_t>(acks[6].ts_us);
    auto by_last = delivering("lobby");
    by_last.last = 3;
    const auto from_now = delivering("lobby");
    const std::vector<std::pair<bus::SubscribeRequest, std::vector<std::uint64_t>>> cases{
        {by_seq, tail(3)}, {by_time, tail(6)}, {by_last, tail(7)}, {from_now, {}}};

    std::vector<std::unique_ptr<client::Client>> readers;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        readers.push_back(bot("reader-" + std::to_string(i)));
        readers.back()->call_ok(cases[i].first);
        std::uint64_t position = 0;
        const auto history = until_caught_up(*readers.back(), &position);
        EXPECT_EQ(seqs_of(history), cases[i].second) << "case " << i;
        // The newest log seq the reader has passed: at least the last message.
        EXPECT_GE(position, seqs.back()) << "case " << i;
    }
    // Live from here, in order, once each.
    const auto live = publish_n("lobby", 3, 100);
    for (std::size_t i = 0; i < readers.size(); ++i) {
        for (const auto& expected : live) {
            const auto push = readers[i]->next_push(5s);
            ASSERT_TRUE(push) << "case " << i;
            EXPECT_EQ(push->seq, expected.seq) << "case " << i;
            EXPECT_EQ(push->channel, "lobby");
        }
        readers[i]->call_ok(bus::PingRequest{});
        EXPECT_FALSE(readers[i]->next_push(0ms)) << "case " << i << ": a duplicate or a stray push";
    }
}

TEST_F(Subscriptions, ADeliberatelySlowReaderLosesNothingWhileTheChannelMovesOn) {
    // A small ZeroMQ queue per connection and 8 KiB messages: the 16 MB the
    // reader leaves unread is more than its socket buffers and queues hold,
    // so the daemon must pause its pushes and resume them from the log.
    start({"--send-hwm", "50"});
    constexpr int k_before = 3000;
    constexpr int k_during = 2000;
    const std::string padding(8192, 'p');
    const auto publish_padded = [&](client::Client& client, int i) {
        return client.publish("busy", bus::pack_as_value(std::to_string(i) + padding));
    };
    const auto first = publish_padded(*m_alice, 0);
    for (int i = 1; i < k_before; ++i) publish_padded(*m_alice, i);
    auto reader = bot("slowpoke");
    auto request = delivering("busy");
    request.from_seq = first.seq;
    request.credit = 100;
    reader->call_ok(request);

    std::vector<std::uint64_t> channel_seqs;
    int caught_up_markers = 0;
    const auto deadline = Clock::now() + 60s;
    const auto read_until = [&](std::size_t count) {
        while ((channel_seqs.size() < count || caught_up_markers == 0) && Clock::now() < deadline) {
            auto push = reader->next_push(testing::until(deadline));
            if (!push) break;
            if (push->event == "caught_up") {
                ++caught_up_markers;
            } else {
                channel_seqs.push_back(push->stream_seq);
            }
            if (channel_seqs.size() >= count && count < std::size_t{k_before}) return;
        }
    };
    // Slow on purpose: it takes a hundred messages, then reads nothing while
    // the channel runs 2,000 messages further ahead, then reads the rest.
    read_until(100);
    std::thread publisher([&] {
        client::Client alice(m_context, options_for(*m_daemon));
        alice.hello("alice");
        for (int i = 0; i < k_during; ++i) publish_padded(alice, k_before + i);
    });
    publisher.join();
    EXPECT_GT(testing::u64_field(m_alice->call_ok(bus::StatsRequest{}), "paused_deliveries"), 0U)
        << "the reader's connection never filled up: the pause-and-resume path did not run";
    read_until(std::size_t{k_before + k_during});
    ASSERT_EQ(channel_seqs.size(), std::size_t{k_before + k_during});
    for (std::size_t i = 0; i < channel_seqs.size(); ++i) {
        ASSERT_EQ(channel_seqs[i], i + 1) << "gap or duplicate at message " << i;
    }
    EXPECT_EQ(caught_up_markers, 1);
    reader->call_ok(bus::PingRequest{});
    EXPECT_FALSE(reader->next_push(0ms)) << "a duplicate or a stray push after everything";
}

TEST_F(Subscriptions, ADurablePushSubscriptionIsAcknowledgedAndRedeliveredAfterTheTimeout) {
    start({"--ack-timeout-ms", "200"});
    auto bob = bot("bob");
    auto request = durable("jobs");
    request.credit = 2;
    bob->call_ok(request);
    EXPECT_TRUE(until_caught_up(*bob).empty());
    const auto jobs = publish_n("jobs", 3);

    // Credit 2: two come, the third waits for an ack.
    bob->call_ok(bus::PingRequest{});
    auto one = bob->next_push(5s);
    auto two = bob->next_push(5s);
    ASSERT_TRUE(one && two);
    EXPECT_EQ(one->seq, jobs[0].seq);
    EXPECT_EQ(two->seq, jobs[1].seq);
    EXPECT_EQ(one->deliveries, 1U);
    EXPECT_EQ(bob->ack(std::nullopt, {jobs[0].seq}, "jobs"), jobs[0].seq);
    auto three = bob->next_push(5s);
    ASSERT_TRUE(three);
    EXPECT_EQ(three->seq, jobs[2].seq);
    // Pending messages and their delivery counts, as for a mailbox.
    bus::MailboxRequest pending;
    pending.channel = "jobs";
    const auto state = Json::from_msgpack(bus::pack_value(bob->call_ok(pending).handle.get()).bytes);
    EXPECT_EQ(state.at("acked"), jobs[0].seq);
    EXPECT_EQ(state.at("unsettled"), 2);
    ASSERT_EQ(state.at("in_flight").size(), 2U);
    EXPECT_EQ(state.at("in_flight")[0].at("seq"), jobs[1].seq);
    EXPECT_EQ(state.at("in_flight")[0].at("deliveries"), 1);

    // The second is never acknowledged: it comes again, counted.
    auto again = bob->next_push(5s);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->seq, jobs[1].seq);
    EXPECT_EQ(again->deliveries, 2U);
    EXPECT_TRUE(again->redelivered);
    EXPECT_EQ(bob->ack(jobs[2].seq, {}, "jobs"), jobs[2].seq);
    const auto listed = consumers_of(*m_alice, "jobs");
    ASSERT_EQ(listed.size(), 1U);
    EXPECT_EQ(listed[0].at("bot"), "bob");
    EXPECT_EQ(listed[0].at("acked"), jobs[2].seq);
    EXPECT_EQ(listed[0].at("lag"), 0);
    EXPECT_EQ(listed[0].at("mode"), "push");
}

TEST_F(Subscriptions, APullSubscriptionFetchesInBatchesWaitsForNewMessagesAndRedelivers) {
    start({"--ack-timeout-ms", "300"});
    auto worker = bot("worker");
    worker->call_ok(durable("queue", "pull"));
    const auto jobs = publish_n("queue", 5);

    const auto first = worker->fetch("queue", 2);
    EXPECT_EQ(seqs_of(first.messages), (std::vector<std::uint64_t>{jobs[0].seq, jobs[1].seq}));
    EXPECT_FALSE(first.caught_up);
    const auto second = worker->fetch("queue", 10);
    EXPECT_EQ(seqs_of(second.messages), (std::vector<std::uint64_t>{jobs[2].seq, jobs[3].seq, jobs[4].seq}));
    EXPECT_TRUE(second.caught_up);
    worker->ack(jobs[4].seq, {}, "queue");

    // Nothing there: the fetch waits. Requests run in order, so once the ping
    // behind it is answered the fetch is waiting; a publish then answers it.
    bus::FetchRequest waiting;
    waiting.channel = "queue";
    waiting.wait_ms = 5000;
    const auto fetch_id = worker->send_request(waiting);
    worker->call_ok(bus::PingRequest{});
    EXPECT_FALSE(worker->receive_reply(0ms)) << "the fetch was answered before anything was published";
    const auto late = m_alice->publish("queue", bus::pack_as_value(std::string("late")));
    const auto answer = worker->wait_reply(fetch_id, "fetch");
    ASSERT_TRUE(answer.ok) << answer.message;
    const auto* list = answer.find("messages");
    ASSERT_TRUE(list && list->type == msgpack::type::ARRAY && list->via.array.size == 1);
    const auto waited_seq = Json::from_msgpack(bus::pack_value(list->via.array.ptr[0]).bytes).at("message").at("seq");
    EXPECT_EQ(waited_seq, late.seq);

    // Not acknowledged: fetched again once its ack timeout has passed.
    const auto again = worker->fetch("queue", 10, 3000ms);
    ASSERT_EQ(again.messages.size(), 1U);
    EXPECT_EQ(again.messages[0].seq, late.seq);
    EXPECT_EQ(again.messages[0].deliveries, 2U);
    worker->ack(std::nullopt, {again.messages[0].seq}, "queue");

    // Nothing comes: the fetch ends empty at its wait.
    const auto start_wait = Clock::now();
    const auto empty = worker->fetch("queue", 10, 150ms);
    EXPECT_TRUE(empty.messages.empty());
    EXPECT_GE(Clock::now() - start_wait, 140ms);

    // A fetch on a channel without a durable subscription says so.
    try {
        worker->fetch("elsewhere", 1);
        ADD_FAILURE() << "fetch without a subscription succeeded";
    } catch (const client::ReplyError& e) {
        EXPECT_EQ(e.code_name(), "not_found");
    }
}

TEST_F(Subscriptions, ADurableSubscriptionKeepsItsCursorAcrossARestart) {
    start();
    std::vector<std::uint64_t> seqs;
    {
        auto bob = bot("bob");
        bob->call_ok(durable("orders"));
        EXPECT_TRUE(until_caught_up(*bob).empty());
        for (const auto& a : publish_n("orders", 6)) seqs.push_back(a.seq);
        bob->call_ok(bus::PingRequest{});
        for (int i = 0; i < 6; ++i) ASSERT_TRUE(bob->next_push(5s));
        bob->ack(seqs[1], {seqs[3]}, "orders");  // 1, 2 and 4 done
    }
    m_alice.reset();
    m_daemon->kill_hard();
    m_daemon.reset();
    start();
    const auto more = publish_n("orders", 2, 6);
    auto bob = bot("bob");
    const auto reply = bob->call_ok(durable("orders"));
    EXPECT_TRUE(testing::u64_field(reply, "start_after") == seqs[1]);
    const auto resumed = until_caught_up(*bob);
    EXPECT_EQ(seqs_of(resumed), (std::vector<std::uint64_t>{seqs[2], seqs[4], seqs[5], more[0].seq, more[1].seq}));
    // Delivery counts survive the restart: what was pushed before it and not
    // acknowledged comes as a second delivery; what is new, as a first.
    std::vector<std::uint32_t> counts;
    for (const auto& message : resumed) counts.push_back(message.deliveries);
    EXPECT_EQ(counts, (std::vector<std::uint32_t>{2, 2, 2, 1, 1}));
}

TEST_F(Subscriptions, ASubscriberThatStopsAcknowledgingIsFlaggedStuckUntilItAcks) {
    start({"--ack-timeout-ms", "100"});
    auto bob = bot("bob");
    bob->call_ok(durable("alerts"));
    until_caught_up(*bob);
    const auto sent = publish_n("alerts", 2);
    ASSERT_TRUE(eventually([&] { return consumers_of(*m_alice, "alerts").at(0).at("stuck").get<bool>(); }))
        << "never flagged stuck";
    const auto stuck = consumers_of(*m_alice, "alerts").at(0);
    EXPECT_EQ(stuck.at("lag"), 2);
    EXPECT_EQ(stuck.at("in_flight"), 2);
    bob->ack(sent[1].seq, {}, "alerts");
    const auto fine = consumers_of(*m_alice, "alerts").at(0);
    EXPECT_FALSE(fine.at("stuck").get<bool>());
    EXPECT_EQ(fine.at("lag"), 0);
    EXPECT_EQ(fine.at("acked"), sent[1].seq);
}

TEST_F(Subscriptions, MessagesDeliveredTooOftenAreDeadLetteredAndReplayIntoTheMailbox) {
    start({"--ack-timeout-ms", "100", "--max-deliveries", "3"});
    auto bob = bot("bob");
    bob->call_ok(durable("alerts"));
    until_caught_up(*bob);
    const auto sent = publish_n("alerts", 2);

    // Three deliveries each, then dead letters naming the channel.
    bus::DlqListRequest list;
    list.bot = "bob";
    Json dead;
    ASSERT_TRUE(eventually([&] {
        dead = Json::from_msgpack(bus::pack_value(*m_alice->call_ok(list).find("dead_letters")).bytes);
        return dead.size() == 2;
    }));
    EXPECT_EQ(dead[0].at("message").at("seq"), sent[0].seq);
    EXPECT_EQ(dead[0].at("channel"), "alerts");
    EXPECT_EQ(dead[0].at("deliveries"), 3);
    ASSERT_TRUE(eventually([&] { return consumers_of(*m_alice, "alerts").at(0).at("lag") == 0; }));

    // A channel message's dead letter replays into the bot's mailbox.
    m_alice->call_ok(bus::DlqReplayRequest{sent[0].seq});
    std::optional<bus::Message> copy;
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline && !(copy && copy->replay_of)) copy = bob->next_push(testing::until(deadline));
    ASSERT_TRUE(copy && copy->replay_of);
    EXPECT_EQ(*copy->replay_of, sent[0].seq);
    EXPECT_EQ(copy->to, "bob");
}

TEST_F(Subscriptions, UnsubscribingEndsADurableSubscriptionAndItsDelivery) {
    start();
    auto bob = bot("bob");
    bob->call_ok(durable("news"));
    until_caught_up(*bob);
    EXPECT_EQ(consumers_of(*m_alice, "news").size(), 1U);
    bob->call_ok(bus::UnsubscribeRequest{"news", std::nullopt});
    EXPECT_TRUE(consumers_of(*m_alice, "news").empty());
    publish_n("news", 2);
    bob->call_ok(bus::PingRequest{});
    EXPECT_FALSE(bob->next_push(0ms)) << "pushed after unsubscribe";
    try {
        bob->ack(1, {}, "news");
        ADD_FAILURE() << "ack of an ended subscription succeeded";
    } catch (const client::ReplyError& e) {
        EXPECT_EQ(e.code_name(), "not_found");
    }
}

}  // namespace
}  // namespace botbus
