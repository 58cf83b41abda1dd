// Several botbusd nodes on one PostgreSQL log, over the wire: three real
// daemons started with the same --store (a schema of the test server's),
// clients on different nodes. What one node appends reaches the feed
// subscribers and mailboxes of the others, once each and in seq order; a
// node killed with kill -9 loses nothing it acknowledged; a workflow run's
// lease is the cluster's, so its executor may move between nodes.
// These run in the default pass only (they choose their store themselves).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "feed_support.hpp"
#include "postgres_test_server.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::options_for;

bus::PackedValue text_body(const std::string& text) { return bus::pack_as_value(text); }

class MultiNode : public ::testing::Test {
protected:
    static constexpr std::chrono::milliseconds k_lease{1000};

    void SetUp() override {
        if (testing::test_store_is_postgres()) GTEST_SKIP() << "runs once, in the default pass";
        BOTBUS_NEEDS_POSTGRES();
        m_store = testing::fresh_postgres_schema();
        for (int i = 0; i < 3; ++i) start_node(i);
    }

    void start_node(int i) {
        m_nodes.resize(3);
        m_nodes[static_cast<std::size_t>(i)] = std::make_unique<testing::DaemonProcess>(
            m_dir.path() / ("node" + std::to_string(i)),
            std::vector<std::string>{"--store", m_store, "--lease-ms", std::to_string(k_lease.count())});
    }
    testing::DaemonProcess& node(int i) { return *m_nodes[static_cast<std::size_t>(i)]; }
    // A client of node `first` that knows the other two, as a bot in a
    // cluster is configured; a short timeout, so a dead node is left soon.
    client::ClientOptions cluster_options(int first) {
        auto options = options_for(node(first));
        options.timeout = 2000ms;
        for (int i = 1; i < 3; ++i) {
            const auto& other = node((first + i) % 3);
            options.other_nodes.push_back({other.command_endpoint(), other.feed_endpoint()});
        }
        return options;
    }

    testing::TempDir m_dir;
    std::string m_store;
    std::vector<std::unique_ptr<testing::DaemonProcess>> m_nodes;
    zmq::context_t m_context;
};

// Collects a subscription's messages until `count` arrived or 30 s passed.
std::vector<bus::Message> collect(client::Subscription& sub, std::size_t count) {
    std::vector<bus::Message> got;
    const auto deadline = Clock::now() + 30s;
    while (got.size() < count && Clock::now() < deadline) {
        auto message = sub.next(std::chrono::duration_cast<client::Millis>(deadline - Clock::now()));
        if (!message) break;
        got.push_back(std::move(*message));
    }
    return got;
}

TEST_F(MultiNode, MessagesPublishedOnOneNodeReachSubscribersOnTheOthersOnceEachInSeqOrder) {
    constexpr std::size_t k_before = 100;
    constexpr std::size_t k_after = 200;
    client::Client publisher(m_context, options_for(node(0)));
    publisher.hello("publisher");
    std::vector<std::uint64_t> acked;
    for (std::size_t i = 0; i < k_before; ++i) acked.push_back(publisher.publish("shared", text_body("m")).seq);

    // A live subscriber on node 1 from now on, a late joiner on node 2 that
    // catches up from the start (history, then live).
    client::Client live_client(m_context, options_for(node(1)));
    live_client.hello("live");
    client::Subscription live(live_client, "shared", acked.back());
    client::Client late_client(m_context, options_for(node(2)));
    late_client.hello("late");
    client::Subscription late(late_client, "shared", 0);

    // Publishing goes on through two nodes at once.
    std::thread other([&] {
        client::Client second(m_context, options_for(node(2)));
        second.hello("second");
        for (std::size_t i = 0; i < k_after / 2; ++i) second.publish("shared", text_body("n"));
    });
    for (std::size_t i = 0; i < k_after / 2; ++i) publisher.publish("shared", text_body("m"));
    other.join();

    const auto live_got = collect(live, k_after);
    const auto late_got = collect(late, k_before + k_after);
    ASSERT_EQ(live_got.size(), k_after);
    ASSERT_EQ(late_got.size(), k_before + k_after);
    for (const auto* got : {&live_got, &late_got}) {
        for (std::size_t i = 1; i < got->size(); ++i) {
            ASSERT_EQ((*got)[i].stream_seq, (*got)[i - 1].stream_seq + 1) << "at " << i;
            ASSERT_GT((*got)[i].seq, (*got)[i - 1].seq) << "at " << i;
        }
    }
    EXPECT_EQ(late_got.front().stream_seq, 1U);
    EXPECT_EQ(late_got.back().stream_seq, k_before + k_after);
    EXPECT_EQ(live_got.front().stream_seq, k_before + 1);
}

TEST_F(MultiNode, ADirectMessageSentThroughOneNodeIsPushedToItsBotOnAnotherOnce) {
    client::Client bob(m_context, options_for(node(2)));
    bob.hello("bob");
    client::Client alice(m_context, options_for(node(0)));
    alice.hello("alice");
    std::vector<std::uint64_t> sent;
    for (int i = 0; i < 50; ++i) sent.push_back(alice.send("bob", text_body("hi " + std::to_string(i))).seq);
    std::vector<std::uint64_t> pushed;
    const auto deadline = Clock::now() + 20s;
    while (pushed.size() < sent.size() && Clock::now() < deadline) {
        const auto push = bob.next_push(1000ms);
        if (!push) continue;
        pushed.push_back(push->seq);
        bob.ack(std::nullopt, {push->seq});
    }
    EXPECT_EQ(pushed, sent);
    // Nothing more comes: each was pushed once.
    EXPECT_FALSE(bob.next_push(300ms));
}

// Two connections of one bot on different nodes reading one durable reader
// (its mailbox, or its durable subscription to a channel): what each got,
// acknowledged as it arrives.
struct Replicas {
    std::vector<std::unique_ptr<client::Client>> clients;
    std::vector<std::vector<std::uint64_t>> got;  // per replica, message seqs in arrival order
    std::optional<std::string> channel;           // the subscription's; none for the mailbox

    // Takes pushes from every replica still there until `count` new ones
    // arrived in all, or 30 s passed; each is acknowledged at once.
    void take(std::size_t count) {
        got.resize(clients.size());
        std::size_t taken = 0;
        const auto deadline = Clock::now() + 30s;
        while (taken < count && Clock::now() < deadline) {
            for (std::size_t i = 0; i < clients.size(); ++i) {
                if (!clients[i]) continue;
                while (auto push = clients[i]->next_push(20ms)) {
                    if (push->event != "message") continue;  // caught_up markers
                    got[i].push_back(push->seq);
                    clients[i]->ack(std::nullopt, {push->seq}, channel);
                    ++taken;
                }
            }
        }
    }
    std::vector<std::uint64_t> all() const {
        std::vector<std::uint64_t> every;
        for (const auto& one : got) every.insert(every.end(), one.begin(), one.end());
        std::sort(every.begin(), every.end());
        return every;
    }
};

// One node at a time delivers a reader: its consumers on another node wait
// (nothing twice, whatever the nodes), and take over once the first node's
// consumers are gone.
TEST_F(MultiNode, ABotsReplicasOnTwoNodesShareItsMailboxWithNothingTwiceAndTheOtherTakesOverWhenOneLeaves) {
    Replicas bob;
    for (int i = 0; i < 2; ++i) {
        bob.clients.push_back(std::make_unique<client::Client>(m_context, options_for(node(i))));
        bob.clients.back()->hello("bob");
    }
    client::Client alice(m_context, options_for(node(2)));
    alice.hello("alice");
    std::vector<std::uint64_t> sent;
    for (int i = 0; i < 200; ++i) sent.push_back(alice.send("bob", text_body("a" + std::to_string(i))).seq);
    bob.take(sent.size());
    EXPECT_EQ(bob.all(), sent);
    // Node 0 took the mailbox first (its replica said hello first), so
    // node 1's replica got none.
    EXPECT_EQ(bob.got[0].size(), sent.size());
    EXPECT_TRUE(bob.got[1].empty());

    // The first replica leaves; node 0 lets the mailbox go and node 1 takes it.
    bob.clients[0].reset();
    std::vector<std::uint64_t> later;
    for (int i = 0; i < 50; ++i) later.push_back(alice.send("bob", text_body("b" + std::to_string(i))).seq);
    bob.got.assign(2, {});
    bob.take(later.size());
    EXPECT_EQ(bob.got[1], later) << "each once, in seq order, to the replica left";
    EXPECT_FALSE(bob.clients[1]->next_push(300ms)) << "nothing more: each was pushed once";
}

TEST_F(MultiNode, ConsumersOfOneDurableSubscriptionOnTwoNodesGetEachMessageOnce) {
    Replicas worker;
    worker.channel = "jobs";
    for (int i = 0; i < 2; ++i) {
        worker.clients.push_back(std::make_unique<client::Client>(m_context, options_for(node(i))));
        worker.clients.back()->hello("worker");
        bus::SubscribeRequest subscribe;
        subscribe.channel = "jobs";
        subscribe.durable = true;
        subscribe.credit = 50;
        worker.clients.back()->call_ok(subscribe);
    }
    client::Client producer(m_context, options_for(node(2)));
    producer.hello("producer");
    std::vector<std::uint64_t> published;
    for (int i = 0; i < 200; ++i) published.push_back(producer.publish("jobs", text_body("j")).seq);
    worker.take(published.size());
    EXPECT_EQ(worker.all(), published);

    // Whichever node delivers, its consumer leaves; the other's takes the rest.
    const std::size_t serving = worker.got[0].empty() ? 1 : 0;
    EXPECT_TRUE(worker.got[1 - serving].empty());
    worker.clients[serving].reset();
    std::vector<std::uint64_t> later;
    for (int i = 0; i < 50; ++i) later.push_back(producer.publish("jobs", text_body("k")).seq);
    worker.got.assign(2, {});
    worker.take(later.size());
    EXPECT_EQ(worker.got[1 - serving], later);
}

TEST_F(MultiNode, FetchersOfOnePullSubscriptionOnTwoNodesGetEachMessageOnce) {
    std::vector<std::unique_ptr<client::Client>> workers;
    for (int i = 0; i < 2; ++i) {
        workers.push_back(std::make_unique<client::Client>(m_context, options_for(node(i))));
        workers.back()->hello("puller");
        bus::SubscribeRequest subscribe;
        subscribe.channel = "tasks";
        subscribe.durable = true;
        subscribe.deliver = "pull";
        workers.back()->call_ok(subscribe);
    }
    client::Client producer(m_context, options_for(node(2)));
    producer.hello("producer");
    std::vector<std::uint64_t> published;
    for (int i = 0; i < 200; ++i) published.push_back(producer.publish("tasks", text_body("t")).seq);

    // Both fetch in turn, and acknowledge what they got once both have
    // fetched: what one holds unacknowledged is not the other's.
    std::vector<std::vector<std::uint64_t>> got(2);
    auto fetch_all = [&](std::size_t count, const std::vector<std::size_t>& fetching) {
        std::size_t taken = 0;
        const auto deadline = Clock::now() + 30s;
        while (taken < count && Clock::now() < deadline) {
            std::vector<std::vector<std::uint64_t>> held(2);
            for (const auto i : fetching) {
                for (const auto& message : workers[i]->fetch("tasks", 20, 50ms).messages) {
                    held[i].push_back(message.seq);
                    got[i].push_back(message.seq);
                }
                taken += held[i].size();
            }
            for (const auto i : fetching) {
                if (!held[i].empty()) workers[i]->ack(std::nullopt, held[i], std::string("tasks"));
            }
        }
    };
    fetch_all(published.size(), {0, 1});
    std::vector<std::uint64_t> every = got[0];
    every.insert(every.end(), got[1].begin(), got[1].end());
    std::sort(every.begin(), every.end());
    EXPECT_EQ(every, published);
    const std::size_t serving = got[0].empty() ? 1 : 0;
    EXPECT_TRUE(got[1 - serving].empty()) << "one node at a time hands the subscription's messages out";

    // The serving node's fetcher leaves; the other node's fetches get the rest.
    workers[serving].reset();
    std::vector<std::uint64_t> later;
    for (int i = 0; i < 50; ++i) later.push_back(producer.publish("tasks", text_body("u")).seq);
    got.assign(2, {});
    fetch_all(later.size(), {1 - serving});
    EXPECT_EQ(got[1 - serving], later);
}

// Another node's commit wakes a node at once (LISTEN/NOTIFY), not at its
// next poll of the log's head (a second): 80 hops between two nodes fit in
// a deadline that polling alone would need ~40 s for.
TEST_F(MultiNode, ACommitOnOneNodeWakesTheOthersAtOnce) {
    client::Client alice(m_context, options_for(node(0)));
    alice.hello("alice");
    client::Client bob(m_context, options_for(node(1)));
    bob.hello("bob");
    constexpr int k_exchanges = 40;
    const auto deadline = Clock::now() + 15s;
    int done = 0;
    auto next_before_deadline = [&](client::Client& who) -> std::optional<bus::Message> {
        while (Clock::now() < deadline) {
            if (auto push = who.next_push(100ms)) return push;
        }
        return std::nullopt;
    };
    for (; done < k_exchanges && Clock::now() < deadline; ++done) {
        const auto ping = alice.send("bob", text_body("ping"));
        const auto at_bob = next_before_deadline(bob);
        if (!at_bob) break;
        ASSERT_EQ(at_bob->seq, ping.seq);
        bob.ack(std::nullopt, {at_bob->seq});
        const auto pong = bob.send("alice", text_body("pong"), "text", std::nullopt, at_bob->seq);
        const auto at_alice = next_before_deadline(alice);
        if (!at_alice) break;
        ASSERT_EQ(at_alice->seq, pong.seq);
        alice.ack(std::nullopt, {at_alice->seq});
    }
    EXPECT_EQ(done, k_exchanges) << "each hop waited for a poll of the head";
}

TEST_F(MultiNode, ANodeKilledUnderLoadLosesNothingItAcknowledged) {
    client::Client watcher_client(m_context, options_for(node(1)));
    watcher_client.hello("watcher");
    client::Subscription watcher(watcher_client, "load", 0);

    std::set<std::uint64_t> acked;
    std::size_t published = 0;
    {
        client::Client publisher(m_context, options_for(node(0)));
        publisher.hello("publisher");
        for (; published < 300; ++published) {
            acked.insert(publisher.publish("load", text_body("m"), "text", "k" + std::to_string(published)).seq);
        }
        node(0).kill_hard();
    }
    // The publisher moves to another node and retries what it may not have
    // had acknowledged (here: the last one) under the same key, then goes on.
    client::Client moved(m_context, options_for(node(2)));
    moved.hello("publisher");
    const auto retried = moved.publish("load", text_body("m"), "text", "k" + std::to_string(published - 1));
    EXPECT_TRUE(retried.duplicate);
    EXPECT_TRUE(acked.contains(retried.seq));
    for (std::size_t i = 0; i < 100; ++i, ++published) {
        acked.insert(moved.publish("load", text_body("m"), "text", "k" + std::to_string(published)).seq);
    }
    const auto got = collect(watcher, acked.size());
    std::set<std::uint64_t> seen;
    for (const auto& m : got) EXPECT_TRUE(seen.insert(m.seq).second) << "seq " << m.seq << " twice";
    EXPECT_EQ(seen, acked);
}

TEST_F(MultiNode, ClientsOfANodeKilledUnderLoadFailOverAndResumeWithNothingLostOrRepeated) {
    // Everyone starts on node 0: a subscriber reading the channel from the
    // start, a publisher, and bob, whose mailbox gets direct messages.
    client::Client watcher_client(m_context, cluster_options(0));
    watcher_client.hello("watcher");
    client::Subscription watcher(watcher_client, "load", 0);
    client::Client publisher(m_context, cluster_options(0));
    publisher.hello("publisher");
    client::Client bob(m_context, cluster_options(0));
    bob.hello("bob");

    std::vector<std::uint64_t> acked;
    std::set<std::uint64_t> sent_to_bob;
    const auto publish_some = [&](std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) {
            acked.push_back(publisher.publish("load", text_body("m")).seq);
            if (i % 10 == 0) sent_to_bob.insert(publisher.send("bob", text_body("to bob")).seq);
        }
    };
    publish_some(300);
    auto got = collect(watcher, 150);  // mid-stream when the node goes
    ASSERT_EQ(got.size(), 150U);

    node(0).kill_hard();
    publish_some(100);  // the first of these waits out the timeout, then goes to node 1
    EXPECT_EQ(publisher.options().command_endpoint, node(1).command_endpoint());
    EXPECT_EQ(publisher.node_generation(), 1U);

    // The subscriber notices its quiet feed, moves, and resumes after the
    // last seq it delivered: every acknowledged message once, in seq order.
    auto rest = collect(watcher, acked.size() - got.size());
    got.insert(got.end(), rest.begin(), rest.end());
    std::vector<std::uint64_t> seqs;
    for (const auto& m : got) seqs.push_back(m.seq);
    EXPECT_EQ(seqs, acked);
    EXPECT_EQ(watcher_client.options().command_endpoint, node(1).command_endpoint());

    // bob's mailbox is the cluster's: what node 0 had not seen acknowledged
    // is pushed again by the node bob moves to (at least once, nothing lost).
    std::set<std::uint64_t> pushed;
    const auto deadline = Clock::now() + 30s;
    while (!std::includes(pushed.begin(), pushed.end(), sent_to_bob.begin(), sent_to_bob.end()) &&
           Clock::now() < deadline) {
        const auto push = bob.next_push(300ms);
        if (!push) {
            bob.call_ok(bus::PingRequest{});  // a quiet connection: is the node still there?
            continue;
        }
        pushed.insert(push->seq);
        bob.ack(std::nullopt, {push->seq});
    }
    EXPECT_TRUE(std::includes(pushed.begin(), pushed.end(), sent_to_bob.begin(), sent_to_bob.end()));
    EXPECT_NE(bob.options().command_endpoint, node(0).command_endpoint());
}

TEST_F(MultiNode, ANodeThatLosesItsDatabaseConnectionStopsSayingSoAndItsClientsMoveOn) {
    // A fourth node whose database session the test can pick out and end,
    // as a PostgreSQL restart or a network cut would.
    const auto tag = "botbus_lost_" + std::to_string(::getpid());
    testing::DaemonProcess doomed(m_dir.path() / "doomed",
                                  std::vector<std::string>{"--store", m_store + "&application_name=" + tag});
    auto options = options_for(doomed);
    options.timeout = 2000ms;
    options.other_nodes.push_back({node(1).command_endpoint(), node(1).feed_endpoint()});
    client::Client publisher(m_context, options);
    publisher.hello("publisher");
    const auto first = publisher.publish("lost", text_body("before"));

    testing::exec_sql(*testing::postgres_server(),
                      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '" + tag + "'");
    // It stops by itself (its supervisor would restart it), saying why.
    EXPECT_EQ(doomed.wait(20s), 1) << doomed.stderr_text();
    EXPECT_NE(doomed.stderr_text().find("lost the connection to PostgreSQL"), std::string::npos)
        << doomed.stderr_text();
    // Its client goes on through the next node, the log intact.
    const auto second = publisher.publish("lost", text_body("after"));
    EXPECT_GT(second.seq, first.seq);
    EXPECT_EQ(publisher.options().command_endpoint, node(1).command_endpoint());
}

nlohmann::json reply_json(const bus::Reply& reply) {
    return nlohmann::json::from_msgpack(bus::pack_value(reply.handle.get()).bytes);
}

std::string run_status(client::Client& client, const std::string& run_id) {
    return reply_json(client.call_ok(bus::RunGetRequest{run_id}))["run"]["status"].get<std::string>();
}

TEST_F(MultiNode, AnExecutorMovesBetweenNodesKeepingItsLeaseAndOneNodeCrashesAnAbandonedRunOnce) {
    client::Client exec_on_0(m_context, options_for(node(0)));
    exec_on_0.hello("exec");
    client::Client watcher(m_context, options_for(node(2)));
    watcher.hello("watcher");
    testing::Feed feed(m_context, watcher, {bus::run_topic("moving"), bus::run_topic("abandoned")});

    bus::WorkflowPutRequest put;
    const auto definition = nlohmann::json{{"name", "deploy"}, {"steps", {{{"id", "build"}}}}};
    const auto bytes = nlohmann::json::to_msgpack(definition);
    put.definition = bus::PackedValue{std::string(bytes.begin(), bytes.end())};
    const auto workflow_id = reply_json(exec_on_0.call_ok(put))["workflow_id"].get<std::string>();
    for (const std::string run_id : {"moving", "abandoned"}) {
        bus::RunStartRequest start;
        start.workflow_id = workflow_id;
        start.run_id = run_id;
        exec_on_0.call_ok(start);
    }

    // The executor of "moving" goes to node 1 and heartbeats there for three
    // lease periods; nobody heartbeats "abandoned". Node 0, which granted
    // both leases, must not take the heartbeats it never saw for silence.
    client::Client exec_on_1(m_context, options_for(node(1)));
    exec_on_1.hello("exec");
    const auto beat_until = Clock::now() + 3 * k_lease;
    while (Clock::now() < beat_until) {
        const auto beat = reply_json(exec_on_1.call_ok(bus::RunHeartbeatRequest{"moving"}));
        ASSERT_EQ(beat["status"], "running");
        std::this_thread::sleep_for(k_lease / 4);  // the executor's heartbeat period
    }
    EXPECT_EQ(run_status(watcher, "moving"), "running");
    const auto crashed = feed.wait_for("run.crashed", 10s);
    ASSERT_TRUE(crashed);
    EXPECT_EQ(crashed->topic, bus::run_topic("abandoned"));
    EXPECT_EQ(run_status(exec_on_0, "abandoned"), "crashed");

    // The run is finished through a third node.
    bus::StepStartRequest step;
    step.run_id = "moving";
    step.step_id = "build";
    EXPECT_EQ(watcher.call(step).error_name, "not_lease_owner");
    client::Client exec_on_2(m_context, options_for(node(2)));
    exec_on_2.hello("exec");
    exec_on_2.call_ok(step);
    bus::StepCompleteRequest done;
    done.run_id = "moving";
    done.step_id = "build";
    exec_on_2.call_ok(done);
    exec_on_2.call_ok(bus::RunCompleteRequest{"moving", std::nullopt});
    EXPECT_EQ(run_status(exec_on_0, "moving"), "completed");

    // Every node shows the log in seq order: once the completion is here,
    // so is any second crash report appended before it (there is none).
    ASSERT_TRUE(feed.wait_for("run.completed", 10s));
    std::size_t crash_reports = 1;
    for (const auto& event : feed.skipped()) crash_reports += event.type() == "run.crashed" ? 1U : 0U;
    EXPECT_EQ(crash_reports, 1U);

    // The projections every node served equal a replay of the shared log.
    const auto rebuilt = testing::run_botbusd({"rebuild", "--store", m_store});
    EXPECT_EQ(rebuilt.exit_code, 0) << rebuilt.stdout_text << rebuilt.stderr_text;
}

}  // namespace
}  // namespace botbus
