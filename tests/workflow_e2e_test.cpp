// End-to-end workflow tests: the real botbusd on loopback, the example
// executor bot run as a child process, and raw SUB sockets on the run and
// workflow feed topics. Leases are short (--lease-ms) and every wait is on
// an event or a reply with a deadline, never a sleep.
#include <SQLiteCpp/Database.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "child_process.hpp"
#include "feed_support.hpp"

extern char** environ;

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::options_for;
using Json = nlohmann::json;
using client::Millis;

Millis until(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    return left.count() > 0 ? left : Millis{0};
}

// ---- msgpack <-> JSON, so assertions read like the protocol document

Json reply_json(const bus::Reply& reply) { return Json::from_msgpack(bus::pack_value(reply.handle.get()).bytes); }

bus::PackedValue packed(const Json& value) {
    const auto bytes = Json::to_msgpack(value);
    return bus::PackedValue{std::string(bytes.begin(), bytes.end())};
}

// The reply of a request that must succeed, as JSON.
Json ok(client::Client& client, const bus::Request& request) { return reply_json(client.call_ok(request)); }

// The error code of a request that must fail.
std::string error_of(client::Client& client, const bus::Request& request) {
    const auto reply = client.call(request);
    EXPECT_FALSE(reply.ok) << "expected " << bus::op_name(bus::op_of(request)) << " to fail";
    return reply.error_name;
}

std::string put_workflow(client::Client& client, const Json& definition) {
    bus::WorkflowPutRequest put;
    put.definition = packed(definition);
    put.replace = true;
    return ok(client, put)["workflow_id"].get<std::string>();
}

Json start_run(client::Client& client, const std::string& workflow_id, const std::string& run_id,
               const std::string& status = "running") {
    bus::RunStartRequest start;
    start.workflow_id = workflow_id;
    start.run_id = run_id;
    start.status = status;
    return ok(client, start);
}

Json start_step(client::Client& client, const std::string& run_id, const std::string& step_id) {
    bus::StepStartRequest start;
    start.run_id = run_id;
    start.step_id = step_id;
    return ok(client, start);
}

Json complete_step(client::Client& client, const std::string& run_id, const std::string& step_id,
                   const Json& output = nullptr) {
    bus::StepCompleteRequest complete;
    complete.run_id = run_id;
    complete.step_id = step_id;
    if (!output.is_null()) complete.output = packed(output);
    return ok(client, complete);
}

Json get_run(client::Client& client, const std::string& run_id) {
    return ok(client, bus::RunGetRequest{run_id})["run"];
}

Json run_steps(client::Client& client, const std::string& run_id) {
    return ok(client, bus::RunStepsRequest{run_id})["steps"];
}

Json heartbeat(client::Client& client, const std::string& run_id) {
    return ok(client, bus::RunHeartbeatRequest{run_id});
}

std::vector<std::string> run_ids(const Json& runs) {
    std::vector<std::string> ids;
    for (const auto& run : runs) ids.push_back(run["id"].get<std::string>());
    return ids;
}

// ---- the feed

using testing::Feed;
using testing::FeedEvent;

// ---- child processes (the example executor, botbusd rebuild)

std::string botbusd_path() {
    const char* other = std::getenv("BOTBUS_TEST_BOTBUSD");
    return other && *other ? std::string(other) : std::string(BOTBUSD_PATH);
}

using testing::Child;
using testing::read_text;

std::vector<std::string> executor_args(const testing::DaemonProcess& daemon, std::vector<std::string> more) {
    std::vector<std::string> args{"--command-endpoint", daemon.command_endpoint(), "--feed-endpoint",
                                  daemon.feed_endpoint(), "--timeout-ms", "10000"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

// The run id from the executor's first line, "run <id> started (...)".
std::string run_id_of(const std::string& executor_out) {
    std::istringstream in(executor_out);
    std::string word;
    std::string run_id;
    in >> word >> run_id;
    EXPECT_EQ(word, "run") << executor_out;
    return run_id;
}

std::filesystem::path write_json(const std::filesystem::path& path, const Json& value) {
    std::ofstream(path) << value.dump(2);
    return path;
}

// Where each step's first attempt sits in start order.
std::map<std::string, std::size_t> start_positions(const Json& steps) {
    std::map<std::string, std::size_t> at;
    for (std::size_t i = 0; i < steps.size(); ++i) at.emplace(steps[i]["step_id"].get<std::string>(), i);
    return at;
}

// ---- the example executor

TEST(WorkflowEndToEnd, ExampleExecutorRunsTheDiamondToCompletion) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    Child executor(BOTBUS_EXAMPLE_EXECUTOR_PATH,
                   executor_args(daemon, {std::string(BOTBUS_EXAMPLES_DIR) + "/hello-workflow.json"}), dir.path());
    ASSERT_EQ(executor.wait(), 0) << executor.output();
    const auto run_id = run_id_of(executor.out());

    zmq::context_t context;
    client::Client observer(context, options_for(daemon));
    const auto run = get_run(observer, run_id);
    EXPECT_EQ(run["status"], "completed");
    EXPECT_EQ(run["workflow_name"], "hello-workflow");
    EXPECT_EQ(run["context"], (Json{{"a", 3}, {"b", "hello"}, {"c", 7}, {"d", 10}}));
    EXPECT_TRUE(run["lease_owner"].is_null());
    EXPECT_FALSE(run["completed_at"].is_null());

    const auto steps = run_steps(observer, run_id);
    ASSERT_EQ(steps.size(), 4U) << steps.dump();
    for (const auto& step : steps) {
        EXPECT_EQ(step["status"], "completed") << step.dump();
        EXPECT_EQ(step["attempt"], 1) << step.dump();
    }
    // Every step started after the steps it depends on had started.
    const auto at = start_positions(steps);
    ASSERT_EQ(at.size(), 4U);
    EXPECT_LT(at.at("a"), at.at("b"));
    EXPECT_LT(at.at("a"), at.at("c"));
    EXPECT_LT(at.at("b"), at.at("d"));
    EXPECT_LT(at.at("c"), at.at("d"));
    for (std::size_t i = 1; i < steps.size(); ++i) {
        EXPECT_GT(steps[i]["start_seq"].get<std::uint64_t>(), steps[i - 1]["start_seq"].get<std::uint64_t>());
    }
    EXPECT_EQ(steps[at.at("d")]["output"], 10);
    EXPECT_EQ(steps[at.at("d")]["input"], (Json{{"sum_of", {"a", "c"}}}));
    EXPECT_EQ(ok(observer, bus::RunCompletedStepsRequest{run_id})["step_ids"], (Json{"a", "b", "c", "d"}));
}

// The executor speaks CURVE (--curve-key, --server-key) to a daemon that
// takes only listed keys; its events carry the bot its key is listed for.
TEST(WorkflowEndToEnd, ExampleExecutorRunsTheDiamondWithCurveKeys) {
    testing::TempDir dir;
    testing::CurveKeys keys(dir.path(), {"example-executor", "observer"});
    testing::DaemonProcess daemon(dir.path() / "data", keys.daemon_args());
    Child executor(BOTBUS_EXAMPLE_EXECUTOR_PATH,
                   executor_args(daemon, {"--curve-key", keys.key_file("example-executor").string(), "--server-key",
                                          keys.server_key_file().string() + ".pub",
                                          std::string(BOTBUS_EXAMPLES_DIR) + "/hello-workflow.json"}),
                   dir.path());
    ASSERT_EQ(executor.wait(), 0) << executor.output() << daemon.stderr_text();
    const auto run_id = run_id_of(executor.out());

    zmq::context_t context;
    client::Client observer(context, keys.options_for(daemon, "observer"));
    const auto run = get_run(observer, run_id);
    EXPECT_EQ(run["status"], "completed");
    EXPECT_EQ(run["context"], (Json{{"a", 3}, {"b", "hello"}, {"c", 7}, {"d", 10}}));
}

TEST(WorkflowEndToEnd, ExampleExecutorRetriesAFailingStepAsANewAttempt) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    const auto definition = write_json(
        dir.path() / "flaky.json",
        {{"name", "flaky"},
         {"steps",
          {{{"id", "prepare"}, {"action", {{"echo", "ready"}}}},
           {{"id", "flaky"}, {"depends_on", {"prepare"}}, {"action", {{"fail_times", 1}}}}}}});
    Child executor(BOTBUS_EXAMPLE_EXECUTOR_PATH, executor_args(daemon, {definition.string()}), dir.path());
    ASSERT_EQ(executor.wait(), 0) << executor.output();
    EXPECT_NE(executor.out().find("step flaky attempt 1: failed (will retry)"), std::string::npos) << executor.out();
    const auto run_id = run_id_of(executor.out());

    zmq::context_t context;
    client::Client observer(context, options_for(daemon));
    EXPECT_EQ(get_run(observer, run_id)["status"], "completed");
    const auto steps = run_steps(observer, run_id);
    std::vector<Json> flaky;
    for (const auto& step : steps) {
        if (step["step_id"] == "flaky") flaky.push_back(step);
    }
    ASSERT_EQ(flaky.size(), 2U) << steps.dump();
    EXPECT_EQ(flaky[0]["attempt"], 1);
    EXPECT_EQ(flaky[0]["status"], "failed");
    EXPECT_EQ(flaky[0]["will_retry"], true);
    EXPECT_TRUE(flaky[0]["error"].is_string());
    EXPECT_EQ(flaky[0]["id"], run_id + ":flaky:1");
    EXPECT_EQ(flaky[1]["attempt"], 2);
    EXPECT_EQ(flaky[1]["status"], "completed");
    EXPECT_EQ(flaky[1]["output"], 2);
    EXPECT_EQ(flaky[1]["id"], run_id + ":flaky:2");
    EXPECT_LT(flaky[0]["start_seq"].get<std::uint64_t>(), flaky[1]["start_seq"].get<std::uint64_t>());
}

// The executor follows the run's feed topic at an approval gate: another
// bot's approval (not a polling loop) lets it go on.
TEST(WorkflowEndToEnd, ExampleExecutorWaitsOnTheFeedForAnotherBotsApproval) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    const auto definition = write_json(
        dir.path() / "gated.json",
        {{"name", "gated"},
         {"steps",
          {{{"id", "build"}, {"action", {{"add", {2, 2}}}}},
           {{"id", "gate"}, {"depends_on", {"build"}}, {"action", {{"approval", true}}}},
           {{"id", "ship"}, {"depends_on", {"gate"}}, {"action", {{"echo", "shipped"}}}}}}});
    zmq::context_t context;
    client::Client approver(context, options_for(daemon));
    approver.hello("approver");
    Feed feed(context, approver, {bus::run_topic("gated-1")});
    Child executor(
        BOTBUS_EXAMPLE_EXECUTOR_PATH,
        executor_args(daemon, {"--run-id", "gated-1", "--approval-timeout-ms", "20000", definition.string()}),
        dir.path());
    const auto waiting = feed.wait_for("step.waiting_approval", 20s);
    ASSERT_TRUE(waiting) << executor.output();
    EXPECT_EQ(waiting->event["data"]["step_id"], "gate");
    EXPECT_EQ(waiting->event["by"], "example-executor");
    const auto approved = ok(approver, bus::StepApproveRequest{"gated-1", "gate"});
    EXPECT_EQ(approved["status"], "completed");
    EXPECT_EQ(approved["approved_by"], "approver");

    ASSERT_EQ(executor.wait(), 0) << executor.output();
    EXPECT_NE(executor.out().find("step gate attempt 1: approved by approver"), std::string::npos) << executor.out();
    const auto run = get_run(approver, "gated-1");
    EXPECT_EQ(run["status"], "completed");
    EXPECT_EQ(run["context"]["gate"], (Json{{"approved_by", "approver"}}));
    EXPECT_EQ(run["context"]["ship"], "shipped");
}

TEST(WorkflowEndToEnd, ExampleExecutorCancelsWhenAnotherBotAsksItTo) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    const auto definition = write_json(
        dir.path() / "held.json",
        {{"name", "held"}, {"steps", {{{"id", "gate"}, {"action", {{"approval", true}}}}}}});
    zmq::context_t context;
    client::Client operator_bot(context, options_for(daemon));
    operator_bot.hello("operator");
    Feed feed(context, operator_bot, {bus::run_topic("held-1")});
    Child executor(BOTBUS_EXAMPLE_EXECUTOR_PATH,
                   executor_args(daemon, {"--run-id", "held-1", "--approval-timeout-ms", "20000", definition.string()}),
                   dir.path());
    ASSERT_TRUE(feed.wait_for("step.waiting_approval", 20s)) << executor.output();
    const auto requested = ok(operator_bot, bus::RunCancelRequest{"held-1"});
    EXPECT_EQ(requested["status"], "running");
    EXPECT_EQ(requested["cancel_requested"], true);

    EXPECT_EQ(executor.wait(), 3) << executor.output();
    const auto cancelled = feed.wait_for("run.cancelled", 10s);
    ASSERT_TRUE(cancelled);
    EXPECT_EQ(cancelled->event["by"], "example-executor");
    const auto run = get_run(operator_bot, "held-1");
    EXPECT_EQ(run["status"], "cancelled");
    EXPECT_EQ(run["cancel_requested"], true);
}

// ---- leases over the wire

TEST(WorkflowEndToEnd, SilentRunIsCrashedByTheDaemonAndAnotherBotKeepsItAliveAfterResuming) {
    testing::TempDir dir;
    // Long enough that a loaded machine does not stall run.start and
    // step.start a lease apart; short enough to wait for.
    testing::DaemonProcess daemon(dir.path() / "data", {"--lease-ms", "1500"});
    zmq::context_t context;
    client::Client first(context, options_for(daemon));
    first.hello("first");
    const auto workflow_id = put_workflow(first, {{"name", "lease"}, {"steps", {{{"id", "s1"}}, {{"id", "s2"}}}}});
    Feed feed(context, first, {bus::run_topic("lease-run")});
    const auto started = start_run(first, workflow_id, "lease-run");
    EXPECT_EQ(started["status"], "running");
    EXPECT_TRUE(started["lease_expires_at"].is_number());
    start_step(first, "lease-run", "s1");
    // `first` goes silent now.

    const auto crashed = feed.wait_for("run.crashed", 10s);
    ASSERT_TRUE(crashed) << daemon.stderr_text();
    EXPECT_EQ(crashed->topic, "run/lease-run/");
    EXPECT_EQ(crashed->event["by"], "botbusd");
    EXPECT_EQ(crashed->event["run_id"], "lease-run");
    EXPECT_EQ(crashed->event["workflow_id"], workflow_id);
    EXPECT_EQ(crashed->event["data"]["running_steps"], (Json{"lease-run:s1:1"}));
    EXPECT_EQ(crashed->event["data"]["lease_owner"], "first");

    EXPECT_EQ(run_ids(ok(first, bus::RunCrashedRequest{})["runs"]), std::vector<std::string>{"lease-run"});
    EXPECT_EQ(get_run(first, "lease-run")["status"], "crashed");
    EXPECT_EQ(error_of(first, bus::RunHeartbeatRequest{"lease-run"}), "invalid_transition");

    client::Client second(context, options_for(daemon));
    second.hello("second");
    const auto resumed = ok(second, bus::RunResumeRequest{"lease-run"});
    EXPECT_EQ(resumed["status"], "running");
    EXPECT_EQ(resumed["lease_owner"], "second");
    EXPECT_EQ(get_run(second, "lease-run")["lease_owner"], "second");
    EXPECT_EQ(error_of(first, bus::RunHeartbeatRequest{"lease-run"}), "not_lease_owner");

    // Heartbeats every 100 ms keep it alive for more than a lease period;
    // the lease leaves 1.4 s for a heartbeat delayed by a loaded machine.
    const auto end = Clock::now() + 2000ms;
    auto next_beat = Clock::now();
    int beats = 0;
    while (Clock::now() < end) {
        if (Clock::now() >= next_beat) {
            const auto beat = heartbeat(second, "lease-run");
            EXPECT_EQ(beat["status"], "running");
            EXPECT_EQ(beat["cancel_requested"], false);
            ++beats;
            next_beat += 100ms;
        }
        if (const auto event = feed.next(until(std::min(end, next_beat)))) {
            EXPECT_NE(event->type(), "run.crashed") << "crashed while heartbeating, after " << beats << " beats";
        }
    }
    EXPECT_GE(beats, 10);  // at least one every 200 ms, on a loaded machine too
    const auto run = get_run(second, "lease-run");
    EXPECT_EQ(run["status"], "running");
    EXPECT_EQ(run["lease_owner"], "second");
    EXPECT_TRUE(ok(second, bus::RunCrashedRequest{})["runs"].empty());

    // The new owner carries on where the crashed executor stopped.
    const auto latest = run_steps(second, "lease-run").back();
    EXPECT_EQ(latest["status"], "running");
    bus::StepFailRequest fail{"lease-run", "s1", "executor lost", true};
    ok(second, fail);
    EXPECT_EQ(start_step(second, "lease-run", "s1")["attempt"], 2);
    complete_step(second, "lease-run", "s1");
    start_step(second, "lease-run", "s2");
    complete_step(second, "lease-run", "s2");
    EXPECT_EQ(ok(second, bus::RunCompleteRequest{"lease-run", std::nullopt})["status"], "completed");
}

TEST(WorkflowEndToEnd, RestartGivesRunningRunsAFreshLeaseBeforeCrashingThem) {
    constexpr auto k_lease = 1500ms;
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    const std::vector<std::string> lease_args{"--lease-ms", std::to_string(k_lease.count())};
    zmq::context_t context;
    {
        testing::DaemonProcess before(data, lease_args);
        client::Client exec(context, options_for(before));
        exec.hello("exec");
        const auto workflow_id = put_workflow(exec, {{"name", "restart"}, {"steps", {{{"id", "only"}}}}});
        start_run(exec, workflow_id, "kept");
        start_run(exec, workflow_id, "abandoned");
        ASSERT_EQ(before.terminate(), 0) << before.stderr_text();
    }
    testing::DaemonProcess after(data, lease_args);
    const auto restarted = Clock::now();
    client::Client exec(context, options_for(after));
    exec.hello("exec");
    // A restart is not a crash: both runs are still running.
    EXPECT_EQ(get_run(exec, "kept")["status"], "running");
    EXPECT_EQ(get_run(exec, "abandoned")["status"], "running");
    EXPECT_TRUE(ok(exec, bus::RunCrashedRequest{})["runs"].empty());
    Feed feed(context, exec, {bus::run_topic("kept"), bus::run_topic("abandoned")});

    // The owner of "kept" heartbeats within the grace period; nobody speaks
    // for "abandoned", which the daemon declares crashed a lease later.
    std::optional<Clock::time_point> abandoned_crashed_at;
    const auto deadline = restarted + 4 * k_lease;
    auto next_beat = Clock::now();
    while (Clock::now() < deadline) {
        if (abandoned_crashed_at && Clock::now() >= *abandoned_crashed_at + 500ms) break;
        if (Clock::now() >= next_beat) {
            EXPECT_EQ(heartbeat(exec, "kept")["status"], "running");
            next_beat += 300ms;
        }
        const auto wake = std::min(deadline, abandoned_crashed_at ? std::min(next_beat, *abandoned_crashed_at + 500ms)
                                                                  : next_beat);
        const auto event = feed.next(until(wake));
        if (!event || event->type() != "run.crashed") continue;
        ASSERT_EQ(event->topic, "run/abandoned/") << "the heartbeated run was declared crashed";
        ASSERT_FALSE(abandoned_crashed_at) << "crashed twice";
        abandoned_crashed_at = Clock::now();
        EXPECT_EQ(event->event["data"]["lease_owner"], "exec");
    }
    ASSERT_TRUE(abandoned_crashed_at) << "the run left without heartbeats was never declared crashed\n"
                                      << after.stderr_text();
    // Not before its fresh lease ran out (the daemon granted it before we
    // started the clock, so this bound holds; a little slack for clocks).
    EXPECT_GE(*abandoned_crashed_at - restarted, k_lease - 100ms);
    EXPECT_EQ(get_run(exec, "kept")["status"], "running");
    EXPECT_EQ(get_run(exec, "abandoned")["status"], "crashed");
    EXPECT_EQ(run_ids(ok(exec, bus::RunCrashedRequest{})["runs"]), std::vector<std::string>{"abandoned"});
}

// A pending lease check once kept botbusd's loop alive after SIGTERM until
// the earliest lease ran out (30 s by default).
TEST(WorkflowEndToEnd, SigtermDoesNotWaitForTheLeasesOfRunningRuns) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");  // the default 30 s lease
    zmq::context_t context;
    client::Client exec(context, options_for(daemon));
    exec.hello("exec");
    const auto workflow_id = put_workflow(exec, {{"name", "long"}, {"steps", {{{"id", "only"}}}}});
    start_run(exec, workflow_id, "long-1");
    EXPECT_EQ(daemon.terminate(10s), 0) << daemon.stderr_text();
}

// ---- approval and cancel over the wire

TEST(WorkflowEndToEnd, ApprovalWhilePausedThenResumeGoesPastTheGate) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client first(context, options_for(daemon));
    first.hello("first");
    const Json definition{{"name", "release"},
                          {"steps",
                           {{{"id", "build"}, {"action", {{"add", {1, 1}}}}},
                            {{"id", "gate"}, {"depends_on", {"build"}}, {"action", {{"approval", true}}}},
                            {{"id", "ship"}, {"depends_on", {"gate"}}, {"action", {{"echo", "out"}}}}}}};
    const auto workflow_id = put_workflow(first, definition);
    start_run(first, workflow_id, "rel-1");
    start_step(first, "rel-1", "build");
    complete_step(first, "rel-1", "build", 2);
    start_step(first, "rel-1", "gate");
    EXPECT_EQ(ok(first, bus::StepWaitApprovalRequest{"rel-1", "gate"})["status"], "waiting_approval");
    // A step cannot get past the gate without an approval.
    EXPECT_EQ(error_of(first, bus::StepCompleteRequest{"rel-1", "gate", std::nullopt}), "invalid_transition");
    EXPECT_EQ(ok(first, bus::RunPauseRequest{"rel-1"})["status"], "paused");
    EXPECT_EQ(ok(first, bus::RunCompletedStepsRequest{"rel-1"})["step_ids"], (Json{"build"}));

    client::Client reviewer(context, options_for(daemon));
    reviewer.hello("reviewer");
    const auto approved = ok(reviewer, bus::StepApproveRequest{"rel-1", "gate"});
    EXPECT_EQ(approved["status"], "completed");
    EXPECT_EQ(approved["approved_by"], "reviewer");
    EXPECT_EQ(get_run(reviewer, "rel-1")["status"], "paused");
    EXPECT_EQ(ok(reviewer, bus::RunCompletedStepsRequest{"rel-1"})["step_ids"], (Json{"build", "gate"}));

    // The example executor resumes it: the gate is in the skip-set.
    Child executor(BOTBUS_EXAMPLE_EXECUTOR_PATH, executor_args(daemon, {"--as", "second", "--resume", "rel-1"}),
                   dir.path());
    ASSERT_EQ(executor.wait(), 0) << executor.output();
    EXPECT_NE(executor.out().find("step gate: done before, skipped"), std::string::npos) << executor.out();
    const auto run = get_run(reviewer, "rel-1");
    EXPECT_EQ(run["status"], "completed");
    EXPECT_EQ(run["context"]["build"], 2);
    EXPECT_EQ(run["context"]["gate"], (Json{{"approved_by", "reviewer"}}));
    EXPECT_EQ(run["context"]["ship"], "out");
    const auto steps = run_steps(reviewer, "rel-1");
    ASSERT_EQ(steps.size(), 3U) << steps.dump();
    EXPECT_EQ(steps[1]["step_id"], "gate");
    EXPECT_EQ(steps[1]["attempt"], 1);
    EXPECT_EQ(steps[1]["approved_by"], "reviewer");
    EXPECT_EQ(steps[2]["step_id"], "ship");
    EXPECT_EQ(steps[2]["status"], "completed");
}

TEST(WorkflowEndToEnd, CancelRequestedByAnotherBotReachesTheOwnersHeartbeat) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client owner(context, options_for(daemon));
    owner.hello("owner");
    const auto workflow_id = put_workflow(owner, {{"name", "cancellable"}, {"steps", {{{"id", "work"}}}}});
    start_run(owner, workflow_id, "c-1");
    start_step(owner, "c-1", "work");
    EXPECT_EQ(heartbeat(owner, "c-1")["cancel_requested"], false);

    client::Client other(context, options_for(daemon));
    other.hello("other");
    const auto requested = ok(other, bus::RunCancelRequest{"c-1"});
    EXPECT_EQ(requested["status"], "running");
    EXPECT_EQ(requested["cancel_requested"], true);
    EXPECT_EQ(requested["changed"], true);
    // Asking again appends nothing.
    const auto again = ok(other, bus::RunCancelRequest{"c-1"});
    EXPECT_EQ(again["changed"], false);
    EXPECT_FALSE(again.contains("seq"));
    EXPECT_EQ(get_run(other, "c-1")["status"], "running");

    const auto beat = heartbeat(owner, "c-1");
    EXPECT_EQ(beat["status"], "running");
    EXPECT_EQ(beat["cancel_requested"], true);
    const auto cancelled = ok(owner, bus::RunCancelRequest{"c-1"});
    EXPECT_EQ(cancelled["status"], "cancelled");
    EXPECT_EQ(cancelled["cancel_requested"], true);
    const auto run = get_run(owner, "c-1");
    EXPECT_EQ(run["status"], "cancelled");
    EXPECT_TRUE(run["lease_owner"].is_null());
    EXPECT_EQ(error_of(owner, bus::RunHeartbeatRequest{"c-1"}), "invalid_transition");
}

// ---- rebuild

TEST(WorkflowEndToEnd, RebuildMatchesAfterAMixedWorkloadAndNamesACorruptedRow) {
    BOTBUS_SQLITE_ONLY("corrupts a projection row in SQLite's file");
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    {
        // Long enough that the executor's heartbeats (a third of it) outlast a
        // loaded sanitizer build; the crashed run still crashes within the wait.
        testing::DaemonProcess daemon(data, {"--lease-ms", "1500"});
        zmq::context_t context;
        client::Client alice(context, options_for(daemon));
        client::Client bob(context, options_for(daemon));
        alice.hello("alice");
        bob.hello("bob");
        ok(bob, bus::SubscribeRequest{"news", std::nullopt});
        for (int i = 0; i < 3; ++i) alice.publish("news", bus::pack_as_value("headline " + std::to_string(i)));
        const auto sent = alice.send("bob", bus::pack_as_value("psst"));
        ok(bob, bus::AckRequest{sent.seq, std::nullopt});

        // A completed run from the example executor, with a retried step.
        const auto flaky = write_json(
            dir.path() / "mixed.json",
            {{"name", "mixed"},
             {"steps",
              {{{"id", "one"}, {"action", {{"fail_times", 1}}}},
               {{"id", "two"}, {"depends_on", {"one"}}, {"action", {{"echo", {{"nested", {1, 2, 3}}}}}}}}}});
        Child executor(BOTBUS_EXAMPLE_EXECUTOR_PATH, executor_args(daemon, {flaky.string()}), dir.path());
        ASSERT_EQ(executor.wait(), 0) << executor.output();

        // A failed, a pending, a cancelled and a crashed run.
        const auto workflow_id = put_workflow(alice, {{"name", "other"}, {"steps", {{{"id", "x"}}, {{"id", "y"}}}}});
        start_run(alice, workflow_id, "failed-run");
        ok(alice, bus::RunFailRequest{"failed-run", "broken on purpose"});
        start_run(alice, workflow_id, "pending-run", "pending");
        start_run(alice, workflow_id, "cancelled-run");
        ok(alice, bus::RunCancelRequest{"cancelled-run"});
        Feed feed(context, alice, {bus::run_topic("crash-run")});
        start_run(alice, workflow_id, "crash-run");
        start_step(alice, "crash-run", "x");
        ASSERT_TRUE(feed.wait_for("run.crashed", 10s)) << daemon.stderr_text();
        ASSERT_EQ(daemon.terminate(), 0) << daemon.stderr_text();
    }

    {
        Child rebuild(botbusd_path(), {"rebuild", "--data-dir", data.string(), "--log-level", "warn"}, dir.path());
        ASSERT_EQ(rebuild.wait(), 0) << rebuild.output();
        EXPECT_NE(rebuild.out().find("match"), std::string::npos) << rebuild.output();
    }

    {
        SQLite::Database db((data / "botbus.db").string(), SQLite::OPEN_READWRITE);
        ASSERT_EQ(db.exec("UPDATE workflow_runs SET status = 'completed' WHERE id = 'crash-run'"), 1);
    }
    Child rebuild(botbusd_path(), {"rebuild", "--data-dir", data.string(), "--log-level", "warn"}, dir.path());
    ASSERT_EQ(rebuild.wait(), 1) << rebuild.output();
    const auto out = rebuild.out();
    EXPECT_NE(out.find("workflow_runs"), std::string::npos) << out;
    EXPECT_NE(out.find("crash-run"), std::string::npos) << out;
    EXPECT_NE(out.find("status: live 'completed', rebuilt 'crashed'"), std::string::npos) << out;
}

// ---- fan-out

TEST(WorkflowEndToEnd, RunEventsGoToTheRunAndWorkflowTopicsWithoutPrefixCollisions) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client exec(context, options_for(daemon));
    exec.hello("exec");
    const auto w1 = put_workflow(exec, {{"name", "one"}, {"id", "w1"}, {"steps", {{{"id", "s"}}}}});
    const auto w10 = put_workflow(exec, {{"name", "ten"}, {"id", "w10"}, {"steps", {{{"id", "s"}}}}});
    ASSERT_EQ(w1, "w1");
    ASSERT_EQ(w10, "w10");
    Feed run_r1(context, exec, {bus::run_topic("r1")});
    Feed workflow_w1(context, exec, {bus::workflow_topic("w1")});
    Feed workflow_w10(context, exec, {bus::workflow_topic("w10")});

    // r1 runs on w1 and r10 on w10, interleaved; r1 finishes last.
    std::vector<std::uint64_t> r1_seqs;
    std::vector<std::uint64_t> r10_seqs;
    r1_seqs.push_back(start_run(exec, "w1", "r1")["seq"].get<std::uint64_t>());
    r10_seqs.push_back(start_run(exec, "w10", "r10")["seq"].get<std::uint64_t>());
    r10_seqs.push_back(start_step(exec, "r10", "s")["seq"].get<std::uint64_t>());
    r1_seqs.push_back(start_step(exec, "r1", "s")["seq"].get<std::uint64_t>());
    r10_seqs.push_back(complete_step(exec, "r10", "s", "ten")["seq"].get<std::uint64_t>());
    r10_seqs.push_back(ok(exec, bus::RunCompleteRequest{"r10", std::nullopt})["seq"].get<std::uint64_t>());
    r1_seqs.push_back(complete_step(exec, "r1", "s", "one")["seq"].get<std::uint64_t>());
    r1_seqs.push_back(ok(exec, bus::RunCompleteRequest{"r1", std::nullopt})["seq"].get<std::uint64_t>());

    auto seqs_of = [](const std::vector<FeedEvent>& events) {
        std::vector<std::uint64_t> seqs;
        for (const auto& e : events) seqs.push_back(e.event["seq"].get<std::uint64_t>());
        return seqs;
    };

    const auto on_r1 = run_r1.sync(exec);
    EXPECT_EQ(seqs_of(on_r1), r1_seqs);
    for (const auto& e : on_r1) {
        EXPECT_EQ(e.topic, "run/r1/");
        EXPECT_EQ(e.event["run_id"], "r1");
        EXPECT_EQ(e.event["workflow_id"], "w1");
    }
    ASSERT_EQ(on_r1.size(), 4U);
    EXPECT_EQ(on_r1[0].type(), "run.started");
    EXPECT_EQ(on_r1[1].type(), "step.started");
    EXPECT_EQ(on_r1[2].type(), "step.completed");
    EXPECT_EQ(on_r1[3].type(), "run.completed");
    EXPECT_EQ(on_r1[3].event["by"], "exec");

    const auto on_w1 = workflow_w1.sync(exec);
    EXPECT_EQ(seqs_of(on_w1), r1_seqs);
    for (const auto& e : on_w1) {
        EXPECT_EQ(e.topic, "wf/w1/");
        EXPECT_EQ(e.event["run_id"], "r1");
    }

    // Each workflow topic carries its own runs' events only: "wf/w1/" is a
    // prefix of no other topic.
    const auto on_w10 = workflow_w10.sync(exec);
    EXPECT_EQ(seqs_of(on_w10), r10_seqs);
    for (const auto& e : on_w10) {
        EXPECT_EQ(e.topic, "wf/w10/");
        EXPECT_EQ(e.event["run_id"], "r10");
        EXPECT_EQ(e.event["workflow_id"], "w10");
    }
}

}  // namespace
}  // namespace botbus
