// botbus-example-executor: a small workflow executor bot built on the client
// library. It puts a workflow definition, starts a run (or resumes one),
// executes the steps in dependency order with trivial local actions, renews
// the run's lease with heartbeats, checkpoints the step outputs into the
// run's context after every step, and completes the run.
//
// Step actions (the step map's "action" key):
//   {"add": [1, 2]}         output: the sum of the numbers
//   {"echo": X}             output: X
//   {"sum_of": ["a", "b"]}  output: the sum of those (earlier) steps' outputs
//   {"fail_times": n}       attempts 1..n fail, the next one succeeds (output:
//                           the attempt number); "max_attempts" on the step
//                           (default 3) bounds the retries
//   {"approval": true}      step.wait_approval, then wait for step.approved on
//                           the run's feed topic (or approve it itself with
//                           --auto-approve); output: who approved
// A step without an action outputs null.
//
// Exit status: 0 the run completed, 1 an error or the run failed, 2 bad
// usage, 3 the run was cancelled, 4 an approval did not arrive in time (the
// run is left paused at the gate; --resume continues it).
// Concurrency: single-threaded; the Client and the SUB socket belong to main.
#include <nlohmann/json.hpp>

#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "client/curve_keys.hpp"

namespace {

namespace po = boost::program_options;
using namespace botbus;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using client::Millis;

constexpr int k_exit_completed = 0;
constexpr int k_exit_error = 1;
constexpr int k_exit_usage = 2;
constexpr int k_exit_cancelled = 3;
constexpr int k_exit_approval_timeout = 4;
constexpr std::uint64_t k_default_max_attempts = 3;

struct Options {
    std::string command_endpoint = "tcp://127.0.0.1:7440";
    std::string feed_endpoint = "tcp://127.0.0.1:7441";
    std::string bot = "example-executor";
    std::string definition_file;
    std::optional<std::string> resume_run_id;
    std::optional<std::string> run_id;
    bool auto_approve = false;
    std::int64_t approval_timeout_ms = 60'000;
    std::int64_t heartbeat_ms = 0;  // 0: a third of the lease the daemon reports
    std::int64_t timeout_ms = 5000;
    std::optional<client::CurveClientKeys> curve;  // --curve-key and --server-key, for a daemon with --auth curve
};

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The run ended other than by completing; carries the exit status.
struct RunStopped {
    int exit_code;
    std::string why;
};

// ---- msgpack <-> JSON

Json to_json(const msgpack::object& value) { return Json::from_msgpack(bus::pack_value(value).bytes); }

bus::PackedValue to_packed(const Json& value) {
    const auto bytes = Json::to_msgpack(value);
    return bus::PackedValue{std::string(bytes.begin(), bytes.end())};
}

Json field(const bus::Reply& reply, std::string_view key) {
    const auto* value = reply.find(key);
    return value ? to_json(*value) : Json();
}

std::string random_token() {
    std::random_device device;
    std::mt19937_64 generator(device());
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string token = "executor-";
    for (int i = 0; i < 16; ++i) token.push_back(k_digits[generator() % 16]);
    return token;
}

std::int64_t wall_now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Millis until(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    return left.count() > 0 ? left : Millis{0};
}

// ---- the definition

struct Step {
    std::string id;
    std::vector<std::string> depends_on;
    Json action;  // null when the step has none
    std::uint64_t max_attempts = k_default_max_attempts;
};

// The steps in dependency order: Kahn's algorithm, ties broken by the order
// of the definition, so the order is the same on every run.
std::vector<Step> steps_in_order(const Json& definition) {
    if (!definition.is_object() || !definition.contains("steps") || !definition["steps"].is_array()) {
        throw std::runtime_error("the definition needs a 'steps' array");
    }
    std::vector<Step> steps;
    std::map<std::string, std::size_t> index;
    for (const auto& s : definition["steps"]) {
        if (!s.is_object() || !s.contains("id") || !s["id"].is_string()) {
            throw std::runtime_error("every step needs a string 'id'");
        }
        Step step;
        step.id = s["id"].get<std::string>();
        if (s.contains("depends_on")) step.depends_on = s["depends_on"].get<std::vector<std::string>>();
        if (s.contains("action")) step.action = s["action"];
        if (s.contains("max_attempts")) {
            step.max_attempts = std::max<std::uint64_t>(1, s["max_attempts"].get<std::uint64_t>());
        }
        if (!index.emplace(step.id, steps.size()).second) throw std::runtime_error("duplicate step id " + step.id);
        steps.push_back(std::move(step));
    }
    std::vector<std::size_t> waiting_on(steps.size(), 0);
    for (std::size_t i = 0; i < steps.size(); ++i) {
        for (const auto& dep : steps[i].depends_on) {
            if (!index.contains(dep)) throw std::runtime_error("step " + steps[i].id + " depends on unknown " + dep);
        }
        waiting_on[i] = steps[i].depends_on.size();
    }
    std::vector<Step> ordered;
    std::vector<bool> done(steps.size(), false);
    while (ordered.size() < steps.size()) {
        std::optional<std::size_t> pick;  // the first step, in definition order, whose dependencies are done
        for (std::size_t i = 0; i < steps.size(); ++i) {
            if (!done[i] && waiting_on[i] == 0) {
                pick = i;
                break;
            }
        }
        if (!pick) throw std::runtime_error("the steps' depends_on form a cycle");
        done[*pick] = true;
        for (std::size_t j = 0; j < steps.size(); ++j) {
            for (const auto& dep : steps[j].depends_on) {
                if (dep == steps[*pick].id) --waiting_on[j];
            }
        }
        ordered.push_back(steps[*pick]);
    }
    return ordered;
}

// ---- the run's feed topic

// A SUB socket on `run/<id>/`, confirmed live with a feed.sync marker, so
// no event committed after construction is missed.
class RunFeed {
public:
    RunFeed(zmq::context_t& context, client::Client& client, const std::string& run_id, Millis timeout)
        : m_sub(context, zmq::socket_type::sub), m_topic(bus::run_topic(run_id)) {
        m_sub.set(zmq::sockopt::linger, 0);
        if (client.options().curve) client::use_curve(m_sub, *client.options().curve);
        m_sub.set(zmq::sockopt::subscribe, m_topic);
        const auto token = random_token();
        const auto sync = bus::sync_topic(token);
        m_sub.set(zmq::sockopt::subscribe, sync);
        m_sub.connect(client.options().feed_endpoint);
        const auto deadline = Clock::now() + timeout;
        while (Clock::now() < deadline) {
            client.call_ok(bus::FeedSyncRequest{token});
            const auto round = std::min(deadline, Clock::now() + Millis{100});
            while (Clock::now() < round) {
                const auto parts = receive(until(round));
                if (!parts) break;
                if (parts->first == sync) {
                    m_sub.set(zmq::sockopt::unsubscribe, sync);
                    return;
                }
            }
        }
        throw std::runtime_error("the feed " + client.options().feed_endpoint + " did not confirm the subscription");
    }

    // The next event of the run, or nullopt when none arrives in time.
    std::optional<Json> next(Millis timeout) {
        const auto deadline = Clock::now() + timeout;
        do {
            auto parts = receive(until(deadline));
            if (!parts) return std::nullopt;
            if (parts->first != m_topic) continue;
            try {
                return Json::from_msgpack(parts->second);
            } catch (const Json::exception&) {  // not an event we can read: skip it
            }
        } while (Clock::now() < deadline);
        return std::nullopt;
    }

private:
    std::optional<std::pair<std::string, std::string>> receive(Millis timeout) {
        zmq::pollitem_t item{m_sub.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(m_sub, std::back_inserter(parts), zmq::recv_flags::dontwait)) return std::nullopt;
        if (parts.size() != 2) return std::pair<std::string, std::string>{};
        return std::pair{parts[0].to_string(), parts[1].to_string()};
    }

    zmq::socket_t m_sub;
    std::string m_topic;
};

// ---- the executor

class Executor {
public:
    Executor(zmq::context_t& context, Options options)
        : m_context(context),
          m_options(std::move(options)),
          m_client(context, {m_options.command_endpoint, m_options.feed_endpoint, Millis{m_options.timeout_ms},
                             m_options.curve}) {}

    int run() {
        m_client.hello(m_options.bot);
        std::vector<Step> steps;
        if (m_options.resume_run_id) {
            m_run_id = *m_options.resume_run_id;
            steps = steps_in_order(resume());
        } else {
            steps = steps_in_order(start());
        }
        try {
            for (const auto& step : steps) execute(step);
            m_client.call_ok(bus::RunCompleteRequest{m_run_id, to_packed(m_outputs)});
            say("run " + m_run_id + " completed: " + m_outputs.dump());
            return k_exit_completed;
        } catch (const RunStopped& stopped) {
            say("run " + m_run_id + " " + stopped.why);
            return stopped.exit_code;
        }
    }

private:
    // Puts the definition (replacing an older one of the same name) and
    // starts a run holding its lease. Returns the definition.
    Json start() {
        std::ifstream in(m_options.definition_file);
        if (!in) throw UsageError("cannot read " + m_options.definition_file);
        Json definition;
        try {
            in >> definition;
        } catch (const Json::exception& e) {
            throw UsageError(m_options.definition_file + " is not JSON: " + e.what());
        }
        bus::WorkflowPutRequest put;
        put.definition = to_packed(definition);
        put.replace = true;
        const auto put_reply = m_client.call_ok(put);
        const auto workflow_id = field(put_reply, "workflow_id").get<std::string>();

        bus::RunStartRequest start;
        start.workflow_id = workflow_id;
        start.run_id = m_options.run_id;
        start.trigger_type = "example-executor";
        const auto reply = m_client.call_ok(start);
        m_run_id = field(reply, "run_id").get<std::string>();
        if (field(reply, "duplicate") == true) {
            throw std::runtime_error("run " + m_run_id + " exists already (" + field(reply, "status").dump() +
                                     "); use --resume");
        }
        set_heartbeat_interval(field(reply, "lease_expires_at"));
        say("run " + m_run_id + " started (workflow " + workflow_id + ")");
        m_feed.emplace(m_context, m_client, m_run_id, Millis{m_options.timeout_ms});
        return definition;
    }

    // Takes over a paused, pending or crashed run: subscribes to its feed
    // first (so no approval is missed), resumes it, then learns what was
    // done from the run's steps. Returns the run's workflow definition.
    Json resume() {
        m_feed.emplace(m_context, m_client, m_run_id, Millis{m_options.timeout_ms});
        const auto run = field(m_client.call_ok(bus::RunGetRequest{m_run_id}), "run");
        const auto workflow = field(m_client.call_ok(bus::WorkflowGetRequest{run["workflow_id"].get<std::string>(),
                                                                             std::nullopt, std::nullopt, std::nullopt}),
                                    "workflow");
        const auto reply = m_client.call_ok(bus::RunResumeRequest{m_run_id});
        set_heartbeat_interval(field(reply, "lease_expires_at"));
        say("run " + m_run_id + " resumed (workflow " + run["workflow_id"].get<std::string>() + ", was " +
            run["status"].get<std::string>() + ")");

        if (run["context"].is_object()) m_outputs = run["context"];
        // Both lists come in pages (PROTOCOL.md, "Paging"): read on until `more` is false.
        bus::RunCompletedStepsRequest completed{m_run_id};
        for (bool more = true; more;) {
            const auto page = m_client.call_ok(completed);
            for (const auto& id : field(page, "step_ids")) m_done.insert(id.get<std::string>());
            const auto last = field(page, "last_start_seq");
            more = field(page, "more") == true && last.is_number_unsigned();
            if (more) completed.after = last.get<std::uint64_t>();
        }
        // The latest attempt of each step decides where it picks up; the
        // rows' outputs win over a checkpoint that may lag by one step.
        Json attempts = Json::array();
        bus::RunStepsRequest steps{m_run_id};
        for (bool more = true; more;) {
            const auto page = m_client.call_ok(steps);
            for (const auto& attempt : field(page, "steps")) attempts.push_back(attempt);
            more = field(page, "more") == true && !attempts.empty();
            if (more) steps.after = attempts.back()["start_seq"].get<std::uint64_t>();
        }
        for (const auto& attempt : attempts) {
            const auto step_id = attempt["step_id"].get<std::string>();
            m_latest[step_id] = attempt;
            if (attempt["status"] == "completed") {
                if (!attempt["approved_by"].is_null()) {
                    m_outputs[step_id] = Json{{"approved_by", attempt["approved_by"]}};
                } else {
                    m_outputs[step_id] = attempt["output"];
                }
            }
        }
        return workflow["definition"];
    }

    void execute(const Step& step) {
        if (m_done.contains(step.id)) {
            say("step " + step.id + ": done before, skipped");
            return;
        }
        heartbeat();
        std::uint64_t attempt = 1;
        if (const auto it = m_latest.find(step.id); it != m_latest.end()) {
            const auto& latest = it->second;
            const auto status = latest["status"].get<std::string>();
            attempt = latest["attempt"].get<std::uint64_t>();
            if (status == "waiting_approval") {
                finish_approval(step, attempt);
                return;
            }
            if (status == "running") {
                // Its executor died mid-step: close that attempt, then retry.
                fail_step(step, attempt, "interrupted: the executor running it stopped", true);
            }
            ++attempt;
        }
        for (;; ++attempt) {
            bus::StepStartRequest start;
            start.run_id = m_run_id;
            start.step_id = step.id;
            start.attempt = attempt;
            if (!step.action.is_null()) start.input = to_packed(step.action);
            m_client.call_ok(start);
            if (step.action.is_object() && step.action.value("approval", false)) {
                m_client.call_ok(bus::StepWaitApprovalRequest{m_run_id, step.id});
                say("step " + step.id + " attempt " + std::to_string(attempt) + ": waiting for approval");
                finish_approval(step, attempt);
                return;
            }
            std::string error;
            std::optional<Json> output;
            try {
                output = perform(step, attempt);
            } catch (const std::exception& e) {
                error = e.what();
            }
            if (output) {
                bus::StepCompleteRequest complete;
                complete.run_id = m_run_id;
                complete.step_id = step.id;
                complete.output = to_packed(*output);
                m_client.call_ok(complete);
                say("step " + step.id + " attempt " + std::to_string(attempt) +
                    ": completed, output " + output->dump());
                record(step.id, *output);
                return;
            }
            const bool will_retry = attempt < step.max_attempts;
            fail_step(step, attempt, error, will_retry);
            if (!will_retry) {
                m_client.call_ok(bus::RunFailRequest{m_run_id, "step " + step.id + ": " + error});
                throw RunStopped{k_exit_error, "failed: step " + step.id + ": " + error};
            }
            heartbeat();
        }
    }

    // The step's action, run locally. Throws to fail the attempt.
    Json perform(const Step& step, std::uint64_t attempt) const {
        const auto& action = step.action;
        if (action.is_null()) return Json();
        if (!action.is_object()) throw std::runtime_error("the action must be an object");
        if (action.contains("add")) {
            double sum = 0;
            for (const auto& n : action["add"]) sum += n.get<double>();
            return whole(sum);
        }
        if (action.contains("echo")) return action["echo"];
        if (action.contains("sum_of")) {
            double sum = 0;
            for (const auto& id : action["sum_of"]) {
                const auto name = id.get<std::string>();
                if (!m_outputs.contains(name) || !m_outputs[name].is_number()) {
                    throw std::runtime_error("sum_of: step " + name + " has no numeric output");
                }
                sum += m_outputs[name].get<double>();
            }
            return whole(sum);
        }
        if (action.contains("fail_times")) {
            const auto times = action["fail_times"].get<std::uint64_t>();
            if (attempt <= times) {
                throw std::runtime_error("fails on purpose (attempt " + std::to_string(attempt) + " of the first " +
                                         std::to_string(times) + ")");
            }
            return attempt;
        }
        throw std::runtime_error("unknown action " + action.dump());
    }

    static Json whole(double value) {
        if (value == static_cast<double>(static_cast<std::int64_t>(value))) return static_cast<std::int64_t>(value);
        return value;
    }

    void fail_step(const Step& step, std::uint64_t attempt, const std::string& error, bool will_retry) {
        m_client.call_ok(bus::StepFailRequest{m_run_id, step.id, error, will_retry});
        say("step " + step.id + " attempt " + std::to_string(attempt) + ": failed" +
            (will_retry ? " (will retry)" : "") + ": " + error);
    }

    // The step waits at its approval gate: approve it (--auto-approve), or
    // follow the run's feed for step.approved, heartbeating meanwhile.
    void finish_approval(const Step& step, std::uint64_t attempt) {
        std::string approved_by;
        if (m_options.auto_approve) {
            const auto reply = m_client.call_ok(bus::StepApproveRequest{m_run_id, step.id});
            approved_by = field(reply, "approved_by").get<std::string>();
        } else {
            approved_by = wait_for_approval(step);
        }
        say("step " + step.id + " attempt " + std::to_string(attempt) + ": approved by " + approved_by);
        record(step.id, Json{{"approved_by", approved_by}});
    }

    std::string wait_for_approval(const Step& step) {
        const auto deadline = Clock::now() + Millis{m_options.approval_timeout_ms};
        auto next_beat = Clock::now() + m_heartbeat_interval;
        for (;;) {
            const auto now = Clock::now();
            if (now >= deadline) {
                // Leave the gate waiting; a later --resume picks it up.
                m_client.call_ok(bus::RunPauseRequest{m_run_id});
                throw RunStopped{k_exit_approval_timeout,
                                 "paused: step " + step.id + " was not approved within " +
                                     std::to_string(m_options.approval_timeout_ms) + " ms"};
            }
            if (now >= next_beat) {
                heartbeat();
                next_beat = Clock::now() + m_heartbeat_interval;
            }
            const auto event = m_feed->next(until(std::min(deadline, next_beat)));
            if (!event) continue;
            const auto type = event->value("event", std::string());
            const auto& data = event->contains("data") ? (*event)["data"] : Json();
            if (type == "step.approved" && data.value("step_id", std::string()) == step.id) {
                return data.value("approved_by", event->value("by", std::string()));
            }
            if (type == "run.cancel_requested") {
                heartbeat();  // learns of the request and cancels
            } else if (type == "run.crashed" || type == "run.cancelled" || type == "run.failed" ||
                       type == "run.paused" || type == "run.completed") {
                throw RunStopped{k_exit_error, "lost while waiting for approval: " + type + " by " +
                                                   event->value("by", std::string())};
            }
        }
    }

    void record(const std::string& step_id, const Json& output) {
        m_outputs[step_id] = output;
        m_client.call_ok(bus::RunCheckpointRequest{m_run_id, to_packed(m_outputs)});
    }

    // Renews the lease; a cancel request stops the run here.
    void heartbeat() {
        const auto reply = m_client.call(bus::RunHeartbeatRequest{m_run_id});
        if (!reply.ok) {
            throw RunStopped{k_exit_error, "lost its lease: " + reply.error_name + ": " + reply.message};
        }
        if (field(reply, "cancel_requested") == true) {
            m_client.call_ok(bus::RunCancelRequest{m_run_id});
            throw RunStopped{k_exit_cancelled, "cancelled on request"};
        }
    }

    void set_heartbeat_interval(const Json& lease_expires_at) {
        if (m_options.heartbeat_ms > 0) {
            m_heartbeat_interval = Millis{m_options.heartbeat_ms};
            return;
        }
        // A third of the lease left, as the daemon's clock reports it; on
        // one machine (or synced clocks) that is a third of the lease.
        const auto left_ms =
            lease_expires_at.is_number() ? (lease_expires_at.get<std::int64_t>() - wall_now_us()) / 1000 : 0;
        m_heartbeat_interval = Millis{std::clamp<std::int64_t>(left_ms / 3, 10, 10'000)};
    }

    static void say(const std::string& line) {
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
    }

    zmq::context_t& m_context;
    Options m_options;
    client::Client m_client;
    std::optional<RunFeed> m_feed;
    std::string m_run_id;
    Millis m_heartbeat_interval{1000};
    Json m_outputs = Json::object();         // step id -> output: the run's context
    std::set<std::string> m_done;            // resume: steps completed or skipped before
    std::map<std::string, Json> m_latest;    // resume: each step's latest attempt
};

Options parse_args(int argc, char* argv[]) {
    Options options;
    std::optional<std::string> resume;
    std::optional<std::string> run_id;
    po::options_description visible("botbus-example-executor options");
    visible.add_options()
        ("help,h", "show this help and exit")
        ("command-endpoint", po::value(&options.command_endpoint)->default_value(options.command_endpoint),
         "botbusd's command endpoint")
        ("feed-endpoint", po::value(&options.feed_endpoint)->default_value(options.feed_endpoint),
         "botbusd's feed endpoint")
        ("as", po::value(&options.bot)->default_value(options.bot), "the bot name to run as")
        ("resume", po::value<std::string>(), "resume this crashed, paused or pending run instead of starting one "
                                             "(the definition comes from the run's workflow)")
        ("run-id", po::value<std::string>(), "start the run under this id (a retried start is then idempotent)")
        ("auto-approve", po::bool_switch(&options.auto_approve), "approve approval gates itself")
        ("approval-timeout-ms", po::value(&options.approval_timeout_ms)->default_value(options.approval_timeout_ms),
         "how long to wait at an approval gate before pausing the run")
        ("heartbeat-ms", po::value(&options.heartbeat_ms)->default_value(0),
         "heartbeat interval; 0: a third of the daemon's lease")
        ("timeout-ms", po::value(&options.timeout_ms)->default_value(options.timeout_ms), "reply timeout")
        ("curve-key", po::value<std::string>()->value_name("FILE"),
         "this bot's CURVE key pair file (botbus keygen), for a daemon run with --auth curve")
        ("server-key", po::value<std::string>()->value_name("KEY"),
         "the daemon's CURVE public key: its .pub file or the 40-character key");
    po::options_description hidden;
    hidden.add_options()("definition", po::value(&options.definition_file));
    po::positional_options_description positional;
    positional.add("definition", 1);
    po::options_description all;
    all.add(visible).add(hidden);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }
    if (vm.count("help")) {
        std::cout << "usage: botbus-example-executor [options] DEFINITION.json\n"
                     "       botbus-example-executor [options] --resume RUN_ID\n\n"
                  << visible << '\n';
        std::exit(0);
    }
    if (vm.count("resume")) options.resume_run_id = vm["resume"].as<std::string>();
    if (vm.count("run-id")) options.run_id = vm["run-id"].as<std::string>();
    if (vm.count("curve-key") != vm.count("server-key")) throw UsageError("--curve-key and --server-key go together");
    if (vm.count("curve-key")) {
        try {
            options.curve = client::CurveClientKeys{client::read_key_pair(vm["curve-key"].as<std::string>()),
                                                    client::read_public_key(vm["server-key"].as<std::string>())};
        } catch (const std::runtime_error& e) {
            throw UsageError(e.what());
        }
    }
    if (options.resume_run_id && !options.definition_file.empty()) {
        throw UsageError("--resume takes the definition from the run's workflow; give no file");
    }
    if (!options.resume_run_id && options.definition_file.empty()) throw UsageError("give a DEFINITION.json file");
    if (options.approval_timeout_ms < 0 || options.heartbeat_ms < 0 || options.timeout_ms <= 0) {
        throw UsageError("timeouts must not be negative");
    }
    return options;
}

}  // namespace

int main(int argc, char* argv[]) {
    try {
        auto options = parse_args(argc, argv);
        zmq::context_t context;
        Executor executor(context, std::move(options));
        return executor.run();
    } catch (const UsageError& e) {
        std::fprintf(stderr, "botbus-example-executor: %s\n", e.what());
        return k_exit_usage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "botbus-example-executor: %s\n", e.what());
        return k_exit_error;
    }
}
