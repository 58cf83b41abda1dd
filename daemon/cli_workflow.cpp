#include "daemon/cli_workflow.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>

#include "daemon/cli_run_gate.hpp"

namespace botbus::cli {
namespace {

using Clock = std::chrono::steady_clock;

// While the feed is quiet, watch asks the daemon this often whether it
// missed the run's last events (a loss at the tail shows no gap).
constexpr Millis k_watch_recheck{2000};
// How often watch repeats feed.sync until the marker arrives.
constexpr Millis k_sync_retry{100};
// Longest step detail (error, output) shown in a timeline line, in bytes.
constexpr std::size_t k_max_detail = 80;

// ---- small helpers

Json member(const Json& object, std::string_view key) {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(std::string(key));
    return it == object.end() ? Json() : *it;
}

std::string text_of(const Json& object, std::string_view key) { return cell(member(object, key)); }

std::optional<std::int64_t> int_of(const Json& object, std::string_view key) {
    const auto value = member(object, key);
    if (!value.is_number_integer()) return std::nullopt;
    return value.get<std::int64_t>();
}

std::uint64_t u64_of(const Json& object, std::string_view key) {
    const auto value = member(object, key);
    return value.is_number_unsigned() ? value.get<std::uint64_t>() : 0;
}

std::string timestamp_of(const Json& object, std::string_view key) {
    const auto ts = int_of(object, key);
    return ts ? format_timestamp(*ts) : "-";
}

std::string or_dash(std::string text) { return text.empty() ? "-" : text; }

bool is_terminal(std::string_view status) {
    return status == "completed" || status == "failed" || status == "cancelled";
}

// 850us, 12ms, 3.4s, 2m05s, 1h02m.
std::string format_duration(std::int64_t us) {
    us = std::max<std::int64_t>(us, 0);
    if (us < 1000) return std::to_string(us) + "us";
    if (us < 1'000'000) return std::to_string(us / 1000) + "ms";
    auto two_digits = [](std::int64_t n) { return (n < 10 ? "0" : "") + std::to_string(n); };
    const auto seconds = us / 1'000'000;
    if (seconds < 60) return std::to_string(seconds) + '.' + std::to_string(us / 100'000 % 10) + 's';
    if (seconds < 3600) return std::to_string(seconds / 60) + 'm' + two_digits(seconds % 60) + 's';
    return std::to_string(seconds / 3600) + 'h' + two_digits(seconds / 60 % 60) + 'm';
}

// At most k_max_detail bytes, cut at a UTF-8 character boundary.
std::string shorten(std::string text) {
    if (text.size() <= k_max_detail) return text;
    auto cut = k_max_detail - 3;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0U) == 0x80U) --cut;
    text.resize(cut);
    return text + "...";
}

std::string owner_of(const Json& workflow) {
    const auto type = text_of(workflow, "owner_type");
    if (type == "bot") return "bot:" + text_of(workflow, "owner_bot");
    return or_dash(type);
}

std::size_t steps_of(const Json& workflow) {
    const auto steps = member(member(workflow, "definition"), "steps");
    return steps.is_array() ? steps.size() : 0;
}

// Pretty JSON, each line escaped for the terminal and indented.
void print_document(Printer& out, const Json& value, std::string_view indent) {
    std::istringstream lines(value.dump(2, ' ', false, Json::error_handler_t::replace));
    for (std::string line; std::getline(lines, line);) out.line(std::string(indent) + escape_text(line));
}

void print_fields(Printer& out, const std::vector<std::pair<std::string, std::string>>& fields) {
    std::size_t width = 0;
    for (const auto& [key, value] : fields) width = std::max(width, key.size());
    for (const auto& [key, value] : fields) out.line(key + ':' + std::string(width - key.size() + 2, ' ') + value);
}

// ---- definitions

std::string read_document_text(const std::string& path) {
    if (path == "-") {
        if (isatty(STDIN_FILENO)) std::cerr << "botbus: reading the definition from stdin (end with Ctrl-D)\n";
        return {std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Failure(k_exit_error, "cannot read " + path + ": " + std::strerror(errno));
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bus::PackedValue read_definition(const std::string& path) {
    const auto text = read_document_text(path);
    Json definition;
    try {
        definition = Json::parse(text);
    } catch (const Json::parse_error& e) {
        throw Failure(k_exit_error, (path == "-" ? std::string("stdin") : path) + " is not valid JSON: " + e.what());
    }
    const auto bytes = Json::to_msgpack(definition);
    return bus::PackedValue{std::string(bytes.begin(), bytes.end())};
}

// ---- runs and steps

struct RunState {
    Json run;
    Json steps = Json::array();

    std::string status() const { return text_of(run, "status"); }
    // The newest seq that the run or any of its step attempts reflects.
    std::uint64_t seq() const {
        auto seq = u64_of(run, "last_seq");
        for (const auto& step : steps) seq = std::max(seq, u64_of(step, "last_seq"));
        return seq;
    }
};

RunState fetch_run(client::Client& client, const std::string& run_id) {
    RunState state;
    state.run = member(reply_fields(client.call_ok(bus::RunGetRequest{run_id})), "run");
    const auto steps = member(read_all_pages(client, bus::RunStepsRequest{run_id}, "steps",
                                             [](bus::RunStepsRequest& request, const Json& last, const Json&) {
                                                 request.after = u64_of(last, "start_seq");
                                             }),
                              "steps");
    if (steps.is_array()) state.steps = steps;
    return state;
}

std::string step_detail(const Json& step) {
    if (const auto error = member(step, "error"); !error.is_null()) {
        return shorten("error: " + cell(error) + (member(step, "will_retry") == true ? " (will retry)" : ""));
    }
    if (const auto reason = member(step, "skip_reason"); !reason.is_null()) return shorten("skipped: " + cell(reason));
    if (const auto by = member(step, "approved_by"); !by.is_null()) return shorten("approved by " + cell(by));
    if (const auto output = member(step, "output"); !output.is_null()) return shorten("output: " + cell(output));
    return "";
}

std::vector<std::string> step_row(const Json& step) {
    const auto started = int_of(step, "started_at");
    const auto completed = int_of(step, "completed_at");
    return {timestamp_of(step, "started_at"),
            text_of(step, "step_id"),
            '#' + text_of(step, "attempt"),
            text_of(step, "status"),
            started && completed ? format_duration(*completed - *started) : "-",
            step_detail(step)};
}

// The timeline: one line per step attempt, in start order.
void print_steps(Printer& out, const std::vector<Json>& steps, bool header) {
    std::vector<std::vector<std::string>> rows;
    if (header) rows.push_back({"STARTED", "STEP", "ATTEMPT", "STATUS", "DURATION", "DETAIL"});
    for (const auto& step : steps) rows.push_back(step_row(step));
    std::istringstream lines(table(rows));
    for (std::string line; std::getline(lines, line);) out.line("  " + line);
}

std::string yes_no(const Json& value) { return value == true ? "yes" : "no"; }

void print_run(Printer& out, const RunState& state) {
    if (out.json()) {
        out.object(Json{{"run", state.run}, {"steps", state.steps}});
        return;
    }
    const auto& run = state.run;
    auto trigger = text_of(run, "trigger_type");
    if (const auto payload = member(run, "trigger_payload"); !payload.is_null()) trigger += ' ' + cell(payload);
    print_fields(out, {
                          {"run", text_of(run, "id")},
                          {"workflow", text_of(run, "workflow_name") + " (" + text_of(run, "workflow_id") + ')'},
                          {"status", text_of(run, "status")},
                          {"trigger", trigger},
                          {"started", timestamp_of(run, "started_at")},
                          {"completed", timestamp_of(run, "completed_at")},
                          {"context", or_dash(text_of(run, "context"))},
                          {"error", or_dash(text_of(run, "error"))},
                          {"lease owner", or_dash(text_of(run, "lease_owner"))},
                          {"cancel requested", yes_no(member(run, "cancel_requested"))},
                      });
    if (state.steps.empty()) {
        out.line("steps: none yet");
        return;
    }
    out.line("steps:");
    print_steps(out, std::vector<Json>(state.steps.begin(), state.steps.end()), true);
}

// ---- the feed

std::string random_token() {
    std::random_device device;
    std::mt19937_64 generator(device());
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string token = "botbus-watch-";
    for (int i = 0; i < 16; ++i) token.push_back(k_digits[generator() % 16]);
    return token;
}

Millis remaining(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    return left.count() > 0 ? left : Millis{0};
}

// One [topic][event] message from `sub` within the timeout.
std::optional<std::vector<zmq::message_t>> receive(zmq::socket_t& sub, Millis timeout) {
    zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(sub, std::back_inserter(parts), zmq::recv_flags::dontwait)) return std::nullopt;
    return parts;
}

// A SUB socket on `topic` whose subscription the daemon has confirmed: the
// feed.sync handshake of client::Subscription (PROTOCOL.md, feed.sync), so
// no event committed after this returns can be missed.
zmq::socket_t subscribe_confirmed(Session& s, const std::string& topic) {
    auto& client = s.client();
    zmq::socket_t sub(client.context(), zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, topic);
    try {
        sub.connect(s.options().feed_endpoint);
    } catch (const zmq::error_t& e) {
        throw UsageError("cannot connect to --feed-endpoint '" + s.options().feed_endpoint + "': " + e.what());
    }
    // Subscriptions reach the daemon in order: once the marker arrives, the
    // run topic is live too.
    const auto token = random_token();
    const auto sync = bus::sync_topic(token);
    sub.set(zmq::sockopt::subscribe, sync);
    const auto deadline = Clock::now() + s.options().timeout;
    while (Clock::now() < deadline) {
        client.call_ok(bus::FeedSyncRequest{token});
        const auto round_deadline = std::min(deadline, Clock::now() + k_sync_retry);
        while (Clock::now() < round_deadline) {
            const auto parts = receive(sub, remaining(round_deadline));
            if (!parts) continue;
            // Run events before the marker are older than the snapshot
            // fetched next; dropping them loses nothing.
            if (parts->size() == 2 && (*parts)[0].to_string_view() == sync) {
                sub.set(zmq::sockopt::unsubscribe, sync);
                return sub;
            }
        }
    }
    throw Failure(k_exit_timeout, "the feed at " + s.options().feed_endpoint +
                                      " did not confirm the subscription within " +
                                      std::to_string(s.options().timeout.count()) +
                                      " ms (is --feed-endpoint the daemon's feed?)");
}

// Payload fields that the log keeps as JSON text, shown as JSON values.
constexpr std::string_view k_json_text_fields[] = {"context", "trigger_payload", "input", "output", "definition"};

// A feed frame as a run event: {event, seq, stream_seq, ts, by, workflow_id,
// run_id, data}; nullopt for anything else.
std::optional<Json> decode_run_event(const zmq::message_t& frame) {
    const auto* bytes = static_cast<const std::uint8_t*>(frame.data());
    auto event = Json::from_msgpack(bytes, bytes + frame.size(), true, false);
    if (!event.is_object() || !member(event, "event").is_string() || !member(event, "seq").is_number_unsigned() ||
        !member(event, "stream_seq").is_number_unsigned()) {
        return std::nullopt;
    }
    if (auto data = event.find("data"); data != event.end() && data->is_object()) {
        for (const auto key : k_json_text_fields) {
            const auto it = data->find(std::string(key));
            if (it == data->end() || !it->is_string()) continue;
            auto parsed = Json::parse(it->get_ref<const std::string&>(), nullptr, false);
            if (!parsed.is_discarded()) *it = std::move(parsed);
        }
    }
    return event;
}

// The run status an event leaves behind, when it changes it.
std::optional<std::string> status_after(const Json& event) {
    const auto name = text_of(event, "event");
    if (name == "run.started") return text_of(member(event, "data"), "status");
    if (name == "run.paused") return "paused";
    if (name == "run.resumed") return "running";
    if (name == "run.completed") return "completed";
    if (name == "run.failed") return "failed";
    if (name == "run.cancelled") return "cancelled";
    if (name == "run.crashed") return "crashed";
    return std::nullopt;
}

// `2026-11-27T10:00:00.123Z  step.completed build #1 by exec: output {...}`
std::string event_line(const Json& event) {
    const auto data = member(event, "data");
    auto line = timestamp_of(event, "ts") + "  " + text_of(event, "event");
    if (!member(data, "step_id").is_null()) line += ' ' + text_of(data, "step_id") + " #" + text_of(data, "attempt");
    line += " by " + text_of(event, "by");
    std::string detail;
    if (!member(data, "error").is_null()) {
        detail = "error " + text_of(data, "error") + (member(data, "will_retry") == true ? " (will retry)" : "");
    } else if (!member(data, "reason").is_null()) {
        detail = "reason " + text_of(data, "reason");
    } else if (!member(data, "output").is_null()) {
        detail = "output " + text_of(data, "output");
    } else if (!member(data, "running_steps").is_null()) {
        detail = "lease of " + or_dash(text_of(data, "lease_owner")) + " expired; running " +
                 or_dash(text_of(data, "running_steps"));
    } else if (!member(data, "context").is_null()) {
        detail = "context " + text_of(data, "context");
    } else if (text_of(event, "event") == "run.resumed") {
        detail = "lease owner " + text_of(data, "lease_owner");
    }
    return detail.empty() ? line : line + ": " + shorten(detail);
}

// After lost events: what changed since `since`, from a fresh fetch.
void print_resync(Printer& out, const RunState& state, std::uint64_t since, std::string_view why) {
    std::vector<Json> changed;
    for (const auto& step : state.steps) {
        if (u64_of(step, "last_seq") > since) changed.push_back(step);
    }
    if (out.json()) {
        out.object(Json{{"event", "watch.resync"}, {"reason", std::string(why)}, {"run", state.run}, {"steps", changed}});
        return;
    }
    out.line("-- " + std::string(why) + "; re-fetched run " + text_of(state.run, "id") + ": status " +
             state.status() + ", " + std::to_string(changed.size()) + " step attempt(s) changed");
    print_steps(out, changed, false);
}

}  // namespace

// ---- workflow put

void workflow_put_options(po::options_description& d) {
    d.add_options()
        ("owner-bot", po::value<std::string>()->value_name("B"), "a workflow owned by bot B (default: global)")
        ("replace", "replace a different definition stored under the same name and owner");
}

int run_workflow_put(Session& s, const Invocation& in) {
    bus::WorkflowPutRequest request;
    request.definition = read_definition(in.args[0]);
    if (auto bot = opt_text(in.vm, "owner-bot")) {
        request.owner_type = "bot";
        request.owner_bot = std::move(bot);
    }
    if (in.vm.count("replace")) request.replace = true;
    const auto fields = reply_fields(s.identified().call_ok(request));
    if (s.out().json()) {
        s.out().object(fields);
        return 0;
    }
    const char* verb = member(fields, "created") == true   ? "created"
                       : member(fields, "changed") == true ? "updated"
                                                           : "unchanged";
    s.out().line("workflow " + text_of(fields, "workflow_id") + ' ' + verb);
    return 0;
}

// ---- workflows

void workflows_options(po::options_description& d) {
    d.add_options()
        ("owner-bot", po::value<std::string>()->value_name("B"), "only the workflows bot B owns")
        ("all", "include archived workflows");
}

int run_workflows(Session& s, const Invocation& in) {
    bus::WorkflowListRequest request;
    request.owner_bot = opt_text(in.vm, "owner-bot");
    const bool all = in.vm.count("all") > 0;
    if (all) request.include_archived = true;
    const auto workflows =
        member(read_all_pages(s.client(), request, "workflows",
                              [](bus::WorkflowListRequest& next, const Json& last, const Json&) {
                                  next.after = member(last, "name").get<std::string>();
                                  const auto owner_bot = member(last, "owner_bot");
                                  next.after_owner_bot = owner_bot.is_string()
                                                             ? std::optional(owner_bot.get<std::string>())
                                                             : std::nullopt;
                              }),
               "workflows");
    if (s.out().json()) {
        for (const auto& workflow : workflows) s.out().object(workflow);
        return 0;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "ID", "OWNER", "STEPS", "UPDATED"}};
    if (all) rows[0].emplace_back("ARCHIVED");
    for (const auto& workflow : workflows) {
        rows.push_back({text_of(workflow, "name"), text_of(workflow, "id"), owner_of(workflow),
                        std::to_string(steps_of(workflow)), timestamp_of(workflow, "updated_at")});
        if (all) rows.back().push_back(member(workflow, "archived") == true ? "yes" : "");
    }
    std::cout << table(rows);
    return 0;
}

// ---- workflow show / delete

int run_workflow_show(Session& s, const Invocation& in) {
    bus::WorkflowGetRequest request;
    request.workflow_id = in.args[0];
    const auto workflow = member(reply_fields(s.client().call_ok(request)), "workflow");
    if (s.out().json()) {
        s.out().object(workflow);
        return 0;
    }
    print_fields(s.out(), {
                              {"id", text_of(workflow, "id")},
                              {"name", text_of(workflow, "name")},
                              {"owner", owner_of(workflow)},
                              {"steps", std::to_string(steps_of(workflow))},
                              {"created", timestamp_of(workflow, "created_at")},
                              {"updated", timestamp_of(workflow, "updated_at")},
                              {"archived", member(workflow, "archived") == true
                                               ? "yes, " + timestamp_of(workflow, "archived_at")
                                               : "no"},
                          });
    s.out().line("definition:");
    print_document(s.out(), member(workflow, "definition"), "  ");
    return 0;
}

void workflow_delete_options(po::options_description& d) {
    d.add_options()("archive", "archive instead: hidden from `workflows`, no new runs, its runs stay readable");
}

int run_workflow_delete(Session& s, const Invocation& in) {
    bus::WorkflowDeleteRequest request{in.args[0], std::nullopt};
    if (in.vm.count("archive")) request.archive = true;
    bus::Reply reply;
    try {
        reply = s.identified().call_ok(request);
    } catch (const client::ReplyError& e) {
        if (e.code() != bus::Errc::has_runs) throw;
        throw Failure(k_exit_error, std::string(e.what()) + " (--archive archives it instead)");
    }
    const auto fields = reply_fields(reply);
    if (s.out().json()) {
        s.out().object(fields);
        return 0;
    }
    const auto id = text_of(fields, "workflow_id");
    if (member(fields, "deleted") == true) {
        s.out().line("workflow " + id + " deleted");
    } else {
        s.out().line("workflow " + id + (member(fields, "changed") == true ? " archived" : " was already archived"));
    }
    return 0;
}

// ---- runs / run

void runs_options(po::options_description& d) {
    d.add_options()
        ("workflow", po::value<std::string>()->value_name("ID"), "only runs of this workflow")
        ("status", po::value<std::string>()->value_name("S"),
         "only runs in this status (pending, running, paused, completed, failed, crashed, cancelled)")
        ("limit", po::value<std::string>()->value_name("N"), "at most N runs, newest first (1-1000, default 100)");
}

int run_runs(Session& s, const Invocation& in) {
    bus::RunListRequest request{opt_text(in.vm, "workflow"), opt_text(in.vm, "status"), opt_u64(in.vm, "limit")};
    // The newest `limit` runs, over as many pages as the reply byte budget makes.
    const auto wanted = request.limit.value_or(100);
    std::size_t got = 0;
    const auto runs = member(read_all_pages(
                                 s.client(), request, "runs",
                                 [&](bus::RunListRequest& next, const Json& last, const Json& page) {
                                     got += member(page, "runs").size();
                                     next.before = u64_of(last, "start_seq");
                                     if (wanted > got) next.limit = wanted - got;
                                 },
                                 static_cast<std::size_t>(wanted)),
                             "runs");
    if (s.out().json()) {
        for (const auto& run : runs) s.out().object(run);
        return 0;
    }
    std::vector<std::vector<std::string>> rows{{"RUN", "WORKFLOW", "STATUS", "STARTED", "COMPLETED", "LEASE_OWNER"}};
    for (const auto& run : runs) {
        rows.push_back({text_of(run, "id"), text_of(run, "workflow_name"), text_of(run, "status"),
                        timestamp_of(run, "started_at"), timestamp_of(run, "completed_at"),
                        or_dash(text_of(run, "lease_owner"))});
    }
    std::cout << table(rows);
    return 0;
}

int run_run(Session& s, const Invocation& in) {
    print_run(s.out(), fetch_run(s.client(), in.args[0]));
    return 0;
}

// ---- watch

void watch_options(po::options_description& d) {
    d.add_options()("for", po::value<std::string>()->value_name("MS"),
                    "exit once no event arrived for MS milliseconds (default: wait until the run ends)");
}

int run_watch(Session& s, const Invocation& in) {
    const auto& run_id = in.args[0];
    const auto idle = opt_u64(in.vm, "for", k_max_millis);
    auto& client = s.client();
    auto& out = s.out();
    // An unknown run fails before the feed is touched.
    client.call_ok(bus::RunGetRequest{run_id});
    const auto topic = bus::run_topic(run_id);
    auto sub = subscribe_confirmed(s, topic);

    auto state = fetch_run(client, run_id);
    print_run(out, state);
    out.flush();
    if (is_terminal(state.status())) return 0;

    RunEventGate gate(state.seq());
    auto status = state.status();
    const auto idle_for = idle ? Millis(static_cast<Millis::rep>(*idle)) : Millis::max();
    const auto idle_deadline_from = [&idle_for](Clock::time_point now) {
        return idle_for == Millis::max() ? Clock::time_point::max() : now + idle_for;
    };
    auto idle_deadline = idle_deadline_from(Clock::now());
    auto recheck_at = Clock::now() + k_watch_recheck;

    // Re-fetches the run and prints what changed; true when anything had.
    auto resync = [&](std::string_view why, bool always) {
        const auto since = gate.reflected_seq();
        state = fetch_run(client, run_id);
        if (!always && state.seq() <= since) return false;
        print_resync(out, state, since, why);
        gate.resynced(state.seq());
        status = state.status();
        return true;
    };

    for (;;) {
        const auto parts = receive(sub, remaining(std::min(idle_deadline, recheck_at)));
        const auto now = Clock::now();
        bool printed = false;
        if (!parts) {
            if (now >= recheck_at) {
                printed = resync("the run changed without an event on the feed", false);
                recheck_at = now + k_watch_recheck;
            }
            if (!printed && now >= idle_deadline) return 0;
        } else if (parts->size() == 2 && (*parts)[0].to_string_view() == topic) {
            const auto event = decode_run_event((*parts)[1]);
            if (!event) continue;
            const auto expected = gate.stream_seq().value_or(0) + 1;
            switch (gate.offer(u64_of(*event, "seq"), u64_of(*event, "stream_seq"))) {
            case RunEventGate::Verdict::drop:
                break;
            case RunEventGate::Verdict::show:
                if (out.json()) {
                    out.object(*event);
                } else {
                    out.line(event_line(*event));
                }
                if (auto after = status_after(*event)) status = std::move(*after);
                printed = true;
                break;
            case RunEventGate::Verdict::gap:
                printed = resync("missed events: stream_seq " + std::to_string(u64_of(*event, "stream_seq")) +
                                     " came after " + std::to_string(expected - 1),
                                 true);
                break;
            }
        }
        if (!printed) continue;
        out.flush();
        if (is_terminal(status)) return 0;
        idle_deadline = idle_deadline_from(Clock::now());
        recheck_at = Clock::now() + k_watch_recheck;
    }
}

}  // namespace botbus::cli
