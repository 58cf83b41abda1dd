// A bot scaled to several replicas (issue 15), against the real botbusd:
// its connections share its direct messages and its durable subscriptions
// (each message in flight to one of them), a replica that dies hands what it
// held to the others at once, and a bot that asks for fan-out gets every
// message on every connection.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.hpp"
#include "daemon/cli_output.hpp"
#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "temp_dir.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::options_for;
using Seqs = std::vector<std::uint64_t>;

// Sends `count` direct messages to `to`, up to 500 unanswered at a time;
// returns their seqs in the order sent.
Seqs send_many(client::Client& sender, const std::string& to, std::size_t count) {
    Seqs seqs(count);
    std::map<std::uint64_t, std::size_t> index_of_id;
    std::size_t sent = 0;
    std::size_t answered = 0;
    while (answered < count) {
        while (sent < count && sent - answered < 500) {
            index_of_id[sender.send_request(bus::SendRequest{to, std::nullopt, bus::pack_as_value(sent), std::nullopt,
                                                             std::nullopt, std::nullopt})] = sent;
            ++sent;
        }
        const auto reply = sender.receive_reply(10000ms);
        if (!reply || !reply->ok || !reply->id) throw std::runtime_error("a send was not acknowledged");
        seqs.at(index_of_id.at(*reply->id)) = testing::u64_field(*reply, "seq");
        ++answered;
    }
    return seqs;
}

// The seqs the child replica printed, one per line ("ready" first).
Seqs printed_seqs(const testing::Child& child) {
    Seqs seqs;
    std::istringstream lines(child.out());
    std::string line;
    while (std::getline(lines, line)) {
        if (!line.empty() && line != "ready") seqs.push_back(std::stoull(line));
    }
    return seqs;
}

bool ready(const testing::Child& child) { return child.out().starts_with("ready\n"); }

// Pushes of messages (not caught_up markers) until `count` came or the deadline.
Seqs take(client::Client& replica, std::size_t count, Clock::time_point deadline) {
    Seqs seqs;
    while (seqs.size() < count && Clock::now() < deadline) {
        const auto push = replica.next_push(testing::until(deadline));
        if (!push) break;
        if (push->event != "caught_up") seqs.push_back(push->seq);
    }
    return seqs;
}

bus::HelloRequest hello_with_credit(const std::string& bot, std::uint64_t credit) {
    bus::HelloRequest hello{bot};
    hello.credit = credit;
    return hello;
}

std::string replica_path() { return BOTBUS_TEST_REPLICA_PATH; }

// The daemon started for the kill tests: an ack timeout far beyond their
// deadlines, so only a hand-over can bring a killed replica's messages to
// the others in time.
std::vector<std::string> patient_daemon_args() {
    return {"--ack-timeout-ms", "600000", "--heartbeat-ms", "1000", "--rate-limit", "0"};
}

// Every seq of the lists, sorted (duplicates kept, so that they show).
Seqs sorted_union(std::initializer_list<const Seqs*> lists) {
    Seqs all;
    for (const auto* list : lists) all.insert(all.end(), list->begin(), list->end());
    std::sort(all.begin(), all.end());
    return all;
}

// What the survivors are pushed until `count` came or three heartbeat
// intervals passed (the ack timeout is 600 s), sorted; each must be the same
// delivery again (a hand-over is no failure).
Seqs handed_over(client::Client& first, client::Client& second, std::size_t count) {
    const auto by = Clock::now() + 3s;
    Seqs handed;
    while (handed.size() < count && Clock::now() < by) {
        for (auto* survivor : {&first, &second}) {
            const auto push = survivor->next_push(20ms);
            if (!push || push->event == "caught_up") continue;
            handed.push_back(push->seq);
            EXPECT_EQ(push->deliveries, 1U) << "a hand-over counted as another delivery";
            EXPECT_TRUE(push->redelivered);
        }
    }
    std::sort(handed.begin(), handed.end());
    return handed;
}

TEST(Replicas, ThreeReplicasShareTenThousandDirectMessagesEachProcessedOnce) {
    constexpr std::size_t k_messages = 10000;
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--rate-limit", "0"});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");

    // Each replica acknowledges exactly the messages it processed (seqs, not
    // upto: an upto would settle what the other replicas hold).
    std::atomic<std::size_t> joined{0};
    std::atomic<std::size_t> processed{0};
    std::mutex mutex;
    std::vector<Seqs> by_replica(3);
    const auto deadline = Clock::now() + 90s;
    const auto replica = [&](std::size_t index) {
        client::Client worker(context, options_for(daemon));
        worker.call_ok(bus::HelloRequest{"worker"});
        ++joined;
        Seqs mine;
        std::vector<std::uint64_t> unacked;
        while (processed.load() < k_messages && Clock::now() < deadline) {
            const auto push = worker.next_push(50ms);
            if (push) {
                mine.push_back(push->seq);
                unacked.push_back(push->seq);
                ++processed;
            }
            if (!unacked.empty() && (!push || unacked.size() >= 100)) {
                worker.call_ok(bus::AckRequest{std::nullopt, unacked});
                unacked.clear();
            }
        }
        if (!unacked.empty()) worker.call_ok(bus::AckRequest{std::nullopt, unacked});
        const std::lock_guard lock(mutex);
        by_replica[index] = std::move(mine);
    };
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < 3; ++i) threads.emplace_back(replica, i);
    ASSERT_TRUE(testing::eventually([&] { return joined.load() == 3; }));
    alice.call_ok(bus::PingRequest{});
    const auto sent = send_many(alice, "worker", k_messages);
    for (auto& thread : threads) thread.join();

    std::multiset<std::uint64_t> received;
    for (std::size_t i = 0; i < by_replica.size(); ++i) {
        EXPECT_GT(by_replica[i].size(), 0U) << "replica " << i << " got no share";
        EXPECT_TRUE(std::is_sorted(by_replica[i].begin(), by_replica[i].end()))
            << "replica " << i << " saw its messages out of seq order";
        received.insert(by_replica[i].begin(), by_replica[i].end());
        std::cout << "[ replicas ] replica " << i << " processed " << by_replica[i].size() << '\n';
    }
    EXPECT_EQ(received.size(), k_messages) << "a message was processed twice, or one is missing";
    EXPECT_EQ(std::set<std::uint64_t>(received.begin(), received.end()), std::set<std::uint64_t>(sent.begin(), sent.end()));
    const auto mailbox = alice.call_ok(bus::MailboxRequest{"worker", std::nullopt});
    EXPECT_EQ(testing::u64_field(mailbox, "unsettled"), 0U);
}

TEST(Replicas, AKilledReplicaHandsWhatItHeldToTheOthersWithinAHeartbeatNotTheAckTimeout) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", patient_daemon_args());
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    client::Client first(context, options_for(daemon));
    client::Client second(context, options_for(daemon));
    first.call_ok(hello_with_credit("worker", 10));
    second.call_ok(hello_with_credit("worker", 10));
    testing::Child doomed(replica_path(), {daemon.command_endpoint(), "worker", "mailbox", "10"}, dir.path());
    ASSERT_TRUE(testing::eventually([&] { return ready(doomed); })) << doomed.output();

    // Thirty messages: ten to each replica, whose windows are then full.
    const auto sent = send_many(alice, "worker", 30);
    auto deadline = Clock::now() + 10s;
    auto first_held = take(first, 10, deadline);
    auto second_held = take(second, 10, deadline);
    ASSERT_EQ(first_held.size(), 10U);
    ASSERT_EQ(second_held.size(), 10U);
    ASSERT_TRUE(testing::eventually([&] { return printed_seqs(doomed).size() == 10; })) << doomed.output();
    const auto doomed_held = printed_seqs(doomed);

    doomed.kill9();
    // The survivors make room; what the dead one held comes to them now, as
    // the same delivery (a reconnect is no failure).
    first.call_ok(bus::AckRequest{std::nullopt, first_held});
    second.call_ok(bus::AckRequest{std::nullopt, second_held});
    const auto handed = handed_over(first, second, 10);
    EXPECT_EQ(handed, doomed_held) << "the killed replica's messages were not handed over in time";
    first.call_ok(bus::PingRequest{});
    second.call_ok(bus::PingRequest{});
    EXPECT_FALSE(first.next_push(0ms)) << "more than the hand-over";
    EXPECT_FALSE(second.next_push(0ms)) << "more than the hand-over";
    EXPECT_EQ(sorted_union({&first_held, &second_held, &handed}), sent) << "processed twice, or missing";
}

TEST(Replicas, AReplicaThatJoinsIsNotPushedWhatAnotherHolds) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    client::Client first(context, options_for(daemon));
    first.call_ok(bus::HelloRequest{"worker"});
    const auto sent = send_many(alice, "worker", 5);
    EXPECT_EQ(take(first, 5, Clock::now() + 5s), sent);

    client::Client late(context, options_for(daemon));
    const auto hello = cli::reply_fields(late.call_ok(bus::HelloRequest{"worker"}));
    const std::string late_name = hello.at("connection");
    late.call_ok(bus::PingRequest{});
    EXPECT_FALSE(late.next_push(0ms)) << "a hello re-pushed what another replica holds";
    // The mailbox names who holds what.
    const auto mailbox = cli::reply_fields(alice.call_ok(bus::MailboxRequest{"worker", std::nullopt}));
    ASSERT_EQ(mailbox.at("replicas").size(), 2U) << mailbox;
    std::map<std::string, std::uint64_t> held;
    for (const auto& replica : mailbox.at("replicas")) {
        held[replica.at("connection").get<std::string>()] = replica.at("in_flight").get<std::uint64_t>();
    }
    EXPECT_EQ(held.at(late_name), 0U) << mailbox;
    EXPECT_EQ(mailbox.at("in_flight_count"), 5);
    for (const auto& flight : mailbox.at("in_flight")) {
        EXPECT_NE(flight.at("connection"), late_name) << mailbox;
    }
    // New messages go to the one with the most free credit: the late one.
    const auto next = alice.send("worker", bus::pack_as_value("next"));
    EXPECT_EQ(take(late, 1, Clock::now() + 5s), Seqs{next.seq});
}

bus::SubscribeRequest shared_subscription(const std::string& channel, const std::string& deliver,
                                          std::optional<std::uint64_t> credit = std::nullopt) {
    bus::SubscribeRequest subscribe;
    subscribe.channel = channel;
    subscribe.durable = true;
    subscribe.deliver = deliver;
    subscribe.credit = credit;
    return subscribe;
}

Seqs publish_many(client::Client& publisher, const std::string& channel, std::size_t count) {
    Seqs seqs;
    for (std::size_t i = 0; i < count; ++i) seqs.push_back(publisher.publish(channel, bus::pack_as_value(i)).seq);
    return seqs;
}

TEST(Replicas, ASharedPushSubscriptionHandsAKilledReplicasMessagesToTheOthers) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", patient_daemon_args());
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    alice.call_ok(bus::ChannelCreateRequest{"jobs", std::nullopt});
    client::Client first(context, options_for(daemon));
    client::Client second(context, options_for(daemon));
    for (auto* replica : {&first, &second}) {
        replica->call_ok(bus::HelloRequest{"worker"});
        replica->call_ok(shared_subscription("jobs", "push", 10));
    }
    testing::Child doomed(replica_path(), {daemon.command_endpoint(), "worker", "push", "jobs", "10"}, dir.path());
    ASSERT_TRUE(testing::eventually([&] { return ready(doomed); })) << doomed.output();

    const auto published = publish_many(alice, "jobs", 30);
    const auto deadline = Clock::now() + 10s;
    const auto first_held = take(first, 10, deadline);
    const auto second_held = take(second, 10, deadline);
    ASSERT_EQ(first_held.size(), 10U);
    ASSERT_EQ(second_held.size(), 10U);
    ASSERT_TRUE(testing::eventually([&] { return printed_seqs(doomed).size() == 10; })) << doomed.output();
    const auto doomed_held = printed_seqs(doomed);
    const auto subscription = cli::reply_fields(alice.call_ok(bus::ConsumersRequest{"worker", "jobs"}));
    EXPECT_EQ(subscription.at("consumers").at(0).at("replica_count"), 3) << subscription;

    doomed.kill9();
    first.call_ok(bus::AckRequest{std::nullopt, first_held, "jobs"});
    second.call_ok(bus::AckRequest{std::nullopt, second_held, "jobs"});
    const auto handed = handed_over(first, second, 10);
    EXPECT_EQ(handed, doomed_held) << "the killed replica's messages were not handed over in time";
    EXPECT_EQ(sorted_union({&first_held, &second_held, &handed}), published) << "processed twice, or missing";
}

TEST(Replicas, ASharedPullSubscriptionGivesAKilledFetchersMessagesToTheNextFetch) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", patient_daemon_args());
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    client::Client first(context, options_for(daemon));
    first.call_ok(bus::HelloRequest{"worker"});
    first.call_ok(shared_subscription("jobs", "pull"));
    const auto published = publish_many(alice, "jobs", 30);

    testing::Child doomed(replica_path(), {daemon.command_endpoint(), "worker", "pull", "jobs", "10"}, dir.path());
    ASSERT_TRUE(testing::eventually([&] { return printed_seqs(doomed).size() == 10; })) << doomed.output();
    const auto doomed_held = printed_seqs(doomed);
    EXPECT_EQ(doomed_held, Seqs(published.begin(), published.begin() + 10));
    // Fetches from another replica meanwhile get the rest, not what it holds.
    const auto others = first.fetch("jobs", 10);
    ASSERT_EQ(others.messages.size(), 10U);
    EXPECT_EQ(others.messages.front().seq, published[10]);

    doomed.kill9();
    const auto handed_over_by = Clock::now() + 3s;  // three heartbeat intervals; the ack timeout is 600 s
    std::vector<bus::Message> after;
    while (after.size() < 20 && Clock::now() < handed_over_by) {
        auto fetched = first.fetch("jobs", 30, 100ms);
        after.insert(after.end(), fetched.messages.begin(), fetched.messages.end());
    }
    Seqs handed;
    Seqs fresh;
    for (const auto& message : after) {
        if (message.redelivered) {
            handed.push_back(message.seq);
            EXPECT_EQ(message.deliveries, 1U) << "a hand-over counted as another delivery";
        } else {
            fresh.push_back(message.seq);
        }
    }
    EXPECT_EQ(handed, doomed_held) << "the killed fetcher's messages did not come back at once, oldest first";
    EXPECT_EQ(fresh, Seqs(published.begin() + 20, published.end()));
}

TEST(Replicas, APoisonMessageIsDeadLetteredAfterMaxDeliveriesAcrossTwoRestarts) {
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    // Long ack timeouts until the last run: each delivery before it comes
    // from a restart, which used to start the count over.
    const std::vector<std::string> patient{"--max-deliveries", "3", "--ack-timeout-ms", "600000"};
    auto daemon = std::make_unique<testing::DaemonProcess>(data, patient);
    zmq::context_t context;
    std::uint64_t poison = 0;
    {
        client::Client alice(context, options_for(*daemon));
        alice.hello("alice");
        poison = alice.send("crashy", bus::pack_as_value("poison")).seq;
        client::Client crashy(context, options_for(*daemon));
        crashy.hello("crashy");
        const auto push = crashy.next_push(10s);
        ASSERT_TRUE(push);
        EXPECT_EQ(push->deliveries, 1U);
    }
    // A clean restart (SIGTERM, as systemd restarts it).
    ASSERT_EQ(daemon->terminate(), 0) << daemon->stderr_text();
    daemon = std::make_unique<testing::DaemonProcess>(data, patient);
    {
        client::Client crashy(context, options_for(*daemon));
        crashy.hello("crashy");
        const auto push = crashy.next_push(10s);
        ASSERT_TRUE(push);
        EXPECT_EQ(push->seq, poison);
        EXPECT_EQ(push->deliveries, 2U) << "the delivery before the restart was forgotten";
        EXPECT_TRUE(push->redelivered);
        // Traffic that writes carries the attempt into the log's transaction...
        client::Client alice(context, options_for(*daemon));
        alice.hello("alice");
        alice.publish("elsewhere", bus::pack_as_value("busy"));
    }
    // ...so it survives kill -9 too.
    daemon->kill_hard();
    daemon = std::make_unique<testing::DaemonProcess>(
        data, std::vector<std::string>{"--max-deliveries", "3", "--ack-timeout-ms", "200"});
    client::Client crashy(context, options_for(*daemon));
    crashy.hello("crashy");
    const auto push = crashy.next_push(10s);
    ASSERT_TRUE(push);
    EXPECT_EQ(push->deliveries, 3U);
    // Not acknowledged again: the third delivery was the last.
    bus::DlqListRequest list;
    list.bot = "crashy";
    cli::Json dead;
    ASSERT_TRUE(testing::eventually([&] {
        dead = cli::reply_fields(crashy.call_ok(list)).at("dead_letters");
        return dead.size() == 1;
    })) << dead;
    EXPECT_EQ(dead[0].at("message_seq"), poison);
    EXPECT_EQ(dead[0].at("deliveries"), 3);
    crashy.call_ok(bus::PingRequest{});
    EXPECT_FALSE(crashy.next_push(0ms)) << "pushed again after it was dead-lettered";
}

TEST(Expiry, AnExpiredMessageLeavesTheMailboxCountAtItsDeadlineWithNoConnection) {
    BOTBUS_SQLITE_ONLY("reads the log from the SQLite file");
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    constexpr std::uint64_t k_ttl_ms = 1500;
    const auto sent_at = Clock::now();
    const auto doomed = alice.send("offline", bus::pack_as_value("soon stale"), "text", std::nullopt, std::nullopt, k_ttl_ms);
    alice.send("offline", bus::pack_as_value("kept"));
    const auto unsettled = [&] {
        return testing::u64_field(alice.call_ok(bus::MailboxRequest{"offline", std::nullopt}), "unsettled");
    };
    EXPECT_EQ(unsettled(), 2U);
    // Nobody ever connects as "offline": the daemon's sweep expires it.
    ASSERT_TRUE(testing::eventually([&] { return unsettled() == 1; }, std::chrono::milliseconds(k_ttl_ms) + 10s));
    EXPECT_GE(Clock::now() - sent_at, std::chrono::milliseconds(k_ttl_ms)) << "expired before its deadline";
    // Logged as message.expired, naming it.
    SQLite::Database db((dir.path() / "data" / "botbus.db").string(), SQLite::OPEN_READONLY);
    SQLite::Statement expired(db, "SELECT COUNT(*) FROM events WHERE type = 'message.expired'");
    ASSERT_TRUE(expired.executeStep());
    EXPECT_EQ(expired.getColumn(0).getInt(), 1);
    const auto mailbox = cli::reply_fields(alice.call_ok(bus::MailboxRequest{"offline", std::nullopt}));
    EXPECT_EQ(mailbox.at("acked"), doomed.seq) << "the floor moves over the expired message, up to the one waiting";
}

TEST(Replicas, FanOutGivesEveryConnectionEveryMessage) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    std::vector<std::unique_ptr<client::Client>> mirrors;
    for (int i = 0; i < 3; ++i) {
        mirrors.push_back(std::make_unique<client::Client>(context, options_for(daemon)));
        bus::HelloRequest hello{"logger"};
        hello.fan_out = true;
        mirrors.back()->call_ok(hello);
    }
    const auto sent = send_many(alice, "logger", 50);
    for (auto& mirror : mirrors) {
        EXPECT_EQ(take(*mirror, sent.size(), Clock::now() + 10s), sent);
    }
    // One acknowledgement settles a message for all of them.
    mirrors[0]->call_ok(bus::AckRequest{sent.back(), std::nullopt});
    const auto mailbox = alice.call_ok(bus::MailboxRequest{"logger", std::nullopt});
    EXPECT_EQ(testing::u64_field(mailbox, "unsettled"), 0U);
}

}  // namespace
}  // namespace botbus
