// Fault injection against the real botbusd: the WAL sync failing, COMMIT
// failing, the background checkpoint failing, the daemon's own batches
// failing, and a peer that never reads its replies. Storage faults come from
// tests/fault_shim.cpp, preloaded into the daemon and armed while a trigger
// file exists; every wait is on a condition or the daemon's exit, with a
// deadline.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "feed_support.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using testing::eventually;
using testing::full_history;
using testing::options_for;
using testing::u64_field;

// How long an absence is watched for: whatever the daemon sent before it
// stopped (or while it answered later requests) has arrived by then.
constexpr client::Millis k_quiet{200};

// The trigger directory of tests/fault_shim.cpp and the environment that
// loads the shim into botbusd.
class Faults {
public:
    Faults() = default;

    std::vector<std::string> env() const {
        std::string preload;
        if (const char* existing = std::getenv("LD_PRELOAD"); existing && *existing) {
            preload = std::string(existing) + ":";  // a sanitizer runtime preloaded by CI stays first
        }
        preload += BOTBUS_FAULT_SHIM_PATH;
        // GCC's ASan runtime refuses to start when another library is
        // preloaded before it; the shim only forwards to it.
        std::string asan = "verify_asan_link_order=0";
        if (const char* existing = std::getenv("ASAN_OPTIONS"); existing && *existing) {
            asan = std::string(existing) + ":" + asan;
        }
        return {"LD_PRELOAD=" + preload, "BOTBUS_FAULT_DIR=" + m_dir.path().string(), "ASAN_OPTIONS=" + asan};
    }

    void arm(const std::string& trigger) const { std::ofstream(m_dir.path() / trigger).put('1'); }
    void disarm(const std::string& trigger) const { std::filesystem::remove(m_dir.path() / trigger); }
    // The shim's calls are the ones the daemon makes (it says so at load).
    bool interposed() const { return std::filesystem::exists(m_dir.path() / "shim-interposed"); }

private:
    testing::TempDir m_dir;
};

// Without interception there is nothing to inject. This build's daemon must
// be intercepted (a broken shim fails here rather than skip quietly); another
// build (BOTBUS_TEST_BOTBUSD) may define these calls in the executable
// itself, as a statically linked sanitizer runtime does, and is skipped.
#define REQUIRE_INTERPOSED(faults, daemon)                                                                \
    if (!(faults).interposed()) {                                                                         \
        if (const char* other = std::getenv("BOTBUS_TEST_BOTBUSD"); other && *other) {                    \
            GTEST_SKIP() << "the fault shim cannot intercept the libc calls of " << other                 \
                         << " (a statically linked sanitizer runtime?); nothing to inject";               \
        }                                                                                                 \
        FAIL() << "the fault shim did not intercept botbusd's libc calls; stderr:\n" << (daemon).stderr_text(); \
    }

bus::PackedValue text(const std::string& value) { return bus::pack_as_value(value); }

bus::PublishRequest publish_request(const std::string& channel, const std::string& body) {
    return bus::PublishRequest{channel, std::nullopt, text(body), std::nullopt, std::nullopt};
}

std::uint64_t event_count(client::Client& client) { return u64_field(client.call_ok(bus::StatsRequest{}), "events"); }

bool logged(const testing::DaemonProcess& daemon, const std::string& line) {
    return daemon.stderr_text().find(line) != std::string::npos;
}

// Every acknowledged publish is in `history` with its seq, channel seq and
// body; nothing is there twice.
void expect_all_present(const std::vector<bus::Message>& history, const std::map<std::uint64_t, client::Ack>& acked,
                        const std::map<std::uint64_t, std::string>& bodies) {
    std::map<std::uint64_t, const bus::Message*> by_seq;
    for (const auto& message : history) {
        EXPECT_TRUE(by_seq.emplace(message.seq, &message).second) << "seq " << message.seq << " twice";
    }
    for (const auto& [seq, ack] : acked) {
        const auto it = by_seq.find(seq);
        ASSERT_NE(it, by_seq.end()) << "acknowledged seq " << seq << " is lost";
        EXPECT_EQ(it->second->stream_seq, ack.stream_seq) << "seq " << seq;
        EXPECT_EQ(it->second->body, text(bodies.at(seq))) << "seq " << seq;
    }
}

TEST(Faults, AFailedWalSyncStopsTheDaemonWithoutShowingTheBatch) {
    BOTBUS_SQLITE_ONLY("the fault shim fails SQLite's file I/O");
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    Faults faults;
    std::map<std::uint64_t, client::Ack> acked;
    std::map<std::uint64_t, std::string> bodies;
    {
        testing::DaemonProcess daemon(data, {}, faults.env());
        REQUIRE_INTERPOSED(faults, daemon);
        zmq::context_t context;
        client::Client alice(context, options_for(daemon));
        alice.hello("alice");
        testing::Feed feed(context, alice, {bus::channel_topic("ledger")});
        for (int i = 0; i < 20; ++i) {
            const auto body = "kept-" + std::to_string(i);
            const auto ack = alice.publish("ledger", text(body));
            acked.emplace(ack.seq, ack);
            bodies.emplace(ack.seq, body);
        }
        EXPECT_EQ(feed.sync(alice).size(), 20U);

        faults.arm("fail-wal-sync");
        const auto id = alice.send_request(publish_request("ledger", "never shown"));
        const int status = daemon.wait(20s);
        ASSERT_GE(status, 0) << "botbusd kept running after its WAL sync failed; stderr:\n" << daemon.stderr_text();
        EXPECT_NE(status, 0) << "botbusd stopped as if nothing had gone wrong";
        EXPECT_TRUE(logged(daemon, "cannot make committed batches durable, stopping")) << daemon.stderr_text();
        EXPECT_TRUE(logged(daemon, "fault_shim: failing fdatasync")) << daemon.stderr_text();

        // Whatever it sent before stopping has arrived by now.
        const auto reply = alice.receive_reply(k_quiet);
        EXPECT_FALSE(reply) << "the request whose batch failed to sync was answered (id " << id << ")";
        const auto event = feed.next(k_quiet);
        EXPECT_FALSE(event) << "the batch that failed to sync was shown on the feed: " << event->event.dump();
    }
    faults.disarm("fail-wal-sync");

    // Without the fault: everything acknowledged is there, once. The batch
    // that failed may be there too (committed, never known durable): a client
    // that got no answer retries with an idempotency key.
    testing::DaemonProcess daemon(data);
    zmq::context_t context;
    client::Client reader(context, options_for(daemon));
    const auto history = full_history(reader, "ledger");
    expect_all_present(history, acked, bodies);
    EXPECT_LE(history.size(), acked.size() + 1);
}

TEST(Faults, AFailedCommitAnswersItsWholeBatchWithStorageErrorAppendsNothingAndUndoesItsHellos) {
    BOTBUS_SQLITE_ONLY("the fault shim fails SQLite's file I/O");
    testing::TempDir dir;
    Faults faults;
    testing::DaemonProcess daemon(dir.path() / "data", {}, faults.env());
    REQUIRE_INTERPOSED(faults, daemon);
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    testing::Feed feed(context, alice, {bus::channel_topic("ledger")});
    for (int i = 0; i < 3; ++i) alice.publish("ledger", text("before-" + std::to_string(i)));
    EXPECT_EQ(feed.sync(alice).size(), 3U);
    const auto events_before = event_count(alice);
    const auto history_before = full_history(alice, "ledger");

    faults.arm("fail-wal-write");
    // A connection's hello and publish sent together are one batch, which
    // fails as a whole. Should the daemon read the hello alone (a batch that
    // appends nothing, so commits), its identity holds: try a new connection.
    std::optional<client::Client> ghost;
    for (int attempt = 0; attempt < 50 && !ghost; ++attempt) {
        client::Client candidate(context, options_for(daemon));
        const auto hello_id = candidate.send_request(bus::HelloRequest{"ghost", true});
        const auto publish_id = candidate.send_request(publish_request("ledger", "lost with its batch"));
        const auto hello = candidate.wait_reply(hello_id, "hello");
        const auto publish = candidate.wait_reply(publish_id, "publish");
        ASSERT_FALSE(publish.ok) << "a publish was committed while the WAL could not be written";
        EXPECT_EQ(publish.error_name, "storage_error");
        if (hello.ok) continue;  // read alone: not the batch this test is about
        EXPECT_EQ(hello.error_name, "storage_error");
        ghost.emplace(std::move(candidate));
    }
    ASSERT_TRUE(ghost) << "hello and publish never arrived in one batch in 50 tries";
    EXPECT_TRUE(logged(daemon, "failed and was rolled back")) << daemon.stderr_text();

    // Nothing of the failed batches was appended or shown, and the hello
    // did not hold (this request appends nothing, so it commits).
    EXPECT_EQ(event_count(alice), events_before);
    EXPECT_EQ(full_history(alice, "ledger").size(), history_before.size());
    EXPECT_EQ(ghost->call(publish_request("ledger", "who am I")).error_name, "not_identified");

    faults.disarm("fail-wal-write");
    // Serving normally again, without a restart.
    EXPECT_EQ(ghost->call(publish_request("ledger", "still nobody")).error_name, "not_identified");
    const auto after = alice.publish("ledger", text("after"));
    ghost->hello("ghost");
    const auto ghost_ack = ghost->publish("ledger", text("ghost after"));
    EXPECT_EQ(event_count(alice), events_before + 2);
    const auto history = full_history(alice, "ledger");
    ASSERT_EQ(history.size(), history_before.size() + 2);
    EXPECT_EQ(history[history.size() - 2].seq, after.seq);
    EXPECT_EQ(history.back().seq, ghost_ack.seq);
    EXPECT_EQ(history.back().from, "ghost");
    // The feed shows exactly the two that were committed.
    const auto shown = feed.sync(alice);
    ASSERT_EQ(shown.size(), 2U);
    EXPECT_EQ(shown[0].event.at("seq"), after.seq);
    EXPECT_EQ(shown[1].event.at("seq"), ghost_ack.seq);
}

TEST(Faults, AFailingBackgroundCheckpointIsLoggedAndTheDaemonKeepsServingCorrectly) {
    BOTBUS_SQLITE_ONLY("the fault shim fails SQLite's file I/O");
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    Faults faults;
    std::map<std::uint64_t, client::Ack> acked;
    std::map<std::uint64_t, std::string> bodies;
    {
        testing::DaemonProcess daemon(data, {}, faults.env());
        REQUIRE_INTERPOSED(faults, daemon);
        zmq::context_t context;
        client::Client alice(context, options_for(daemon));
        alice.hello("alice");
        // Only checkpoints write the database file itself; the WAL grows past
        // the checkpoint threshold (1000 frames) with a few hundred commits.
        faults.arm("fail-db-write");
        const std::string padding(3000, 'x');
        int published = 0;
        const auto publish_one = [&] {
            const auto body = "m-" + std::to_string(published++) + padding;
            const auto ack = alice.publish("ledger", text(body));
            acked.emplace(ack.seq, ack);
            bodies.emplace(ack.seq, body);
        };
        const auto failed = [&] { return logged(daemon, "background checkpoint failed"); };
        while (!failed() && published < 5000) publish_one();
        ASSERT_TRUE(failed()) << "no checkpoint ran in " << published << " commits; stderr:\n" << daemon.stderr_text();
        EXPECT_TRUE(logged(daemon, "fault_shim: failing")) << daemon.stderr_text();
        // Still serving, from the WAL, while every checkpoint fails.
        for (int i = 0; i < 50; ++i) publish_one();
        expect_all_present(full_history(alice, "ledger"), acked, bodies);

        faults.disarm("fail-db-write");
        for (int i = 0; i < 50; ++i) publish_one();
        expect_all_present(full_history(alice, "ledger"), acked, bodies);
        EXPECT_EQ(daemon.terminate(), 0) << daemon.stderr_text();
    }
    // Closed cleanly: the database passes the start-up integrity check and
    // holds every message exactly once.
    testing::DaemonProcess daemon(data);
    zmq::context_t context;
    client::Client reader(context, options_for(daemon));
    const auto history = full_history(reader, "ledger");
    EXPECT_EQ(history.size(), acked.size());
    expect_all_present(history, acked, bodies);
}

Json reply_json(const bus::Reply& reply) { return Json::from_msgpack(bus::pack_value(reply.handle.get()).bytes); }

bus::PackedValue packed(const Json& value) {
    const auto bytes = Json::to_msgpack(value);
    return bus::PackedValue{std::string(bytes.begin(), bytes.end())};
}

std::int64_t count_events(const std::filesystem::path& data, const std::string& type) {
    SQLite::Database db((data / "botbus.db").string(), SQLite::OPEN_READONLY);
    SQLite::Statement count(db, "SELECT COUNT(*) FROM events WHERE type = ?");
    count.bind(1, type);
    count.executeStep();
    return count.getColumn(0).getInt64();
}

TEST(Faults, ALeaseCheckThatCannotCommitIsRetriedAndCrashesTheRunOnceTheStoreWorksAgain) {
    BOTBUS_SQLITE_ONLY("the fault shim fails SQLite's file I/O");
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    Faults faults;
    {
        // A running run whose owner is gone, left by a previous daemon. Its
        // lease (2 s) is in the store: the next daemon keeps it, or gives a
        // full period of its own when that is later.
        testing::DaemonProcess first(data, {"--lease-ms", "2000"});
        zmq::context_t context;
        client::Client owner(context, options_for(first));
        owner.hello("owner");
        bus::WorkflowPutRequest put;
        put.definition = packed({{"name", "lease"}, {"steps", {{{"id", "s1"}}}}});
        put.replace = true;
        bus::RunStartRequest start;
        start.workflow_id = reply_json(owner.call_ok(put))["workflow_id"].get<std::string>();
        start.run_id = "lease-run";
        owner.call_ok(start);
        ASSERT_EQ(first.terminate(), 0) << first.stderr_text();
    }
    {
        // Commits fail from start-up on, so the check that ends the run's
        // fresh lease cannot commit, however slow this machine is.
        faults.arm("fail-wal-write");
        testing::DaemonProcess daemon(data, {"--lease-ms", "200"}, faults.env());
        REQUIRE_INTERPOSED(faults, daemon);
        zmq::context_t context;
        client::Client owner(context, options_for(daemon));
        owner.hello("owner");
        testing::Feed feed(context, owner, {bus::run_topic("lease-run")});
        ASSERT_TRUE(eventually([&] { return logged(daemon, "retrying the lease check in 1 s"); }))
            << daemon.stderr_text();
        EXPECT_TRUE(logged(daemon, "lease check failed and was rolled back")) << daemon.stderr_text();
        // Not crashed while nothing could be logged: not in the log, not shown.
        EXPECT_EQ(reply_json(owner.call_ok(bus::RunGetRequest{"lease-run"}))["run"]["status"], "running");
        for (const auto& event : feed.sync(owner)) EXPECT_NE(event.type(), "run.crashed");

        faults.disarm("fail-wal-write");
        const auto crashed = feed.wait_for("run.crashed", 10s);
        ASSERT_TRUE(crashed) << daemon.stderr_text();
        EXPECT_EQ(crashed->event["by"], "botbusd");
        EXPECT_EQ(reply_json(owner.call_ok(bus::RunGetRequest{"lease-run"}))["run"]["status"], "crashed");
        for (const auto& event : feed.sync(owner)) EXPECT_NE(event.type(), "run.crashed") << "crashed twice";
        EXPECT_EQ(daemon.terminate(), 0) << daemon.stderr_text();
    }
    EXPECT_EQ(count_events(data, "run.crashed"), 1);
}

TEST(Faults, ADeadLetterThatCannotBeLoggedIsLoggedOnceTheStoreWorksAgain) {
    BOTBUS_SQLITE_ONLY("the fault shim fails SQLite's file I/O");
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    Faults faults;
    std::uint64_t poison_seq = 0;
    {
        testing::DaemonProcess daemon(data, {"--ack-timeout-ms", "100", "--max-deliveries", "1"}, faults.env());
        REQUIRE_INTERPOSED(faults, daemon);
        zmq::context_t context;
        client::Client alice(context, options_for(daemon));
        alice.hello("alice");
        client::Client ops(context, options_for(daemon));
        ops.hello("ops", false);
        testing::Feed dead_letters(context, ops, {std::string(bus::k_dead_letters_topic)});
        poison_seq = alice.send("bob", text("poison"), "job").seq;

        // Commits fail from before bob's only delivery: its dead letter,
        // decided 100 ms after the push, cannot be logged.
        faults.arm("fail-wal-write");
        client::Client bob(context, options_for(daemon));
        bob.hello("bob");
        const auto push = bob.next_push(5s);
        ASSERT_TRUE(push);
        EXPECT_EQ(push->seq, poison_seq);
        ASSERT_TRUE(eventually([&] { return logged(daemon, "logging expired and dead-lettered messages failed"); }))
            << daemon.stderr_text();
        for (const auto& event : dead_letters.sync(ops)) {
            EXPECT_NE(event.type(), "message.dead_lettered") << "shown although it could not be logged";
        }

        faults.disarm("fail-wal-write");
        // Bob stays connected and does nothing: the daemon logs it by itself.
        const auto event = dead_letters.wait_for("message.dead_lettered", 10s);
        ASSERT_TRUE(event) << "the dead letter was never logged once commits worked again; stderr:\n"
                           << daemon.stderr_text();
        EXPECT_EQ(event->event.at("message_seq"), poison_seq);
        EXPECT_EQ(event->event.at("bot"), "bob");
        // Not delivered again, and logged once.
        EXPECT_FALSE(bob.next_push(k_quiet));
        for (const auto& later : dead_letters.sync(ops)) {
            EXPECT_NE(later.type(), "message.dead_lettered") << "dead-lettered twice";
        }
        bus::MailboxRequest mailbox;
        mailbox.bot = "bob";
        const auto state = ops.call_ok(mailbox);
        EXPECT_EQ(u64_field(state, "acked"), poison_seq);
        EXPECT_EQ(u64_field(state, "unsettled"), 0U);
        EXPECT_EQ(daemon.terminate(), 0) << daemon.stderr_text();
    }
    EXPECT_EQ(count_events(data, "message.dead_lettered"), 1);
}

TEST(Faults, APeerThatNeverReadsLosesRepliesPastItsBacklogWhileOthersAreServed) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--send-hwm", "1", "--max-peer-backlog", "4"});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    // Big history pages fill the kernel's socket buffers in a few replies.
    const std::string padding(64 * 1024, 'p');
    for (int i = 0; i < 20; ++i) alice.publish("big", text(std::to_string(i) + padding));

    zmq::socket_t stalled(context, zmq::socket_type::dealer);
    stalled.set(zmq::sockopt::linger, 0);
    stalled.set(zmq::sockopt::rcvhwm, 1);
    stalled.set(zmq::sockopt::rcvbuf, 4096);
    stalled.connect(daemon.command_endpoint());
    for (int i = 0; i < 200; ++i) {
        bus::HistoryRequest request;
        request.channel = "big";
        request.limit = 20;
        stalled.send(zmq::buffer(bus::encode_request(bus::Request{request}, bus::pack_as_value(i))),
                     zmq::send_flags::none);
    }

    const auto dropped = [&] { return u64_field(alice.call_ok(bus::StatsRequest{}), "dropped_replies"); };
    ASSERT_TRUE(eventually([&] { return dropped() > 0; })) << daemon.stderr_text();
    EXPECT_TRUE(eventually([&] { return logged(daemon, "peer is not reading its replies"); })) << daemon.stderr_text();
    // The others are served meanwhile.
    const auto ack = alice.publish("small", text("served"));
    EXPECT_GT(ack.seq, 0U);
    EXPECT_EQ(alice.call(bus::PingRequest{}).ok, true);
    // The backlog holds at most 4, so of 200 replies most were dropped.
    EXPECT_TRUE(eventually([&] { return dropped() >= 150; })) << "dropped " << dropped();
}

}  // namespace
}  // namespace botbus
