#include "bus/core/workflow_handler.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/workflow_payloads.hpp"

namespace botbus::bus {
namespace {

using nlohmann::json;
namespace rs = store::run_status;
namespace ss = store::step_status;
namespace et = store::event_type;

constexpr std::string_view k_default_trigger_type = "manual";
constexpr std::string_view k_empty_context = "{}";

// ---- JSON documents on the wire

// What keeps a JSON value from round-tripping: binary/ext values (msgpack
// bin and ext have no JSON form) and non-finite floats (JSON has none).
std::optional<std::string> not_json(const json& value) {
    if (value.is_binary()) return "a binary or ext value";
    if (value.is_number_float() && !std::isfinite(value.get<double>())) return "a non-finite float";
    if (value.is_structured()) {
        for (const auto& item : value) {
            if (auto problem = not_json(item)) return problem;
        }
    }
    return std::nullopt;
}

// The JSON form of a msgpack value sent in `field`; on failure, the message.
std::optional<json> to_json(const PackedValue& value, std::string_view field, std::string& problem) {
    try {
        auto j = json::from_msgpack(value.bytes);
        if (auto what = not_json(j)) {
            problem = "field '" + std::string(field) + "' must convert to JSON; it holds " + *what;
            return std::nullopt;
        }
        return j;
    } catch (const json::exception& e) {
        problem = "field '" + std::string(field) + "' must convert to JSON (string map keys only): " + e.what();
        return std::nullopt;
    }
}

// Writes a stored JSON text as a msgpack value, nil when absent. The text is
// the daemon's own json::dump(), so it parses; nil covers a damaged row.
void pack_json(msgpack::packer<msgpack::sbuffer>& p, msgpack::sbuffer& out, const std::optional<std::string>& text) {
    if (!text) {
        p.pack_nil();
        return;
    }
    const auto j = json::parse(*text, nullptr, false);
    if (j.is_discarded()) {
        p.pack_nil();
        return;
    }
    const auto bytes = json::to_msgpack(j);
    out.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

template <typename T>
void pack_optional(msgpack::packer<msgpack::sbuffer>& p, const std::optional<T>& value) {
    if (value) {
        p.pack(*value);
    } else {
        p.pack_nil();
    }
}

void pack_workflow(msgpack::packer<msgpack::sbuffer>& p, msgpack::sbuffer& out, const store::WorkflowRow& w) {
    p.pack_map(9);
    p.pack("id");
    p.pack(w.id);
    p.pack("name");
    p.pack(w.name);
    p.pack("owner_type");
    p.pack(w.owner_type);
    p.pack("owner_bot");
    pack_optional(p, w.owner_bot);
    p.pack("definition");
    pack_json(p, out, w.definition);
    p.pack("created_at");
    p.pack(w.created_at);
    p.pack("updated_at");
    p.pack(w.updated_at);
    p.pack("archived");
    p.pack(w.archived_at.has_value());
    p.pack("archived_at");
    pack_optional(p, w.archived_at);
}

void pack_run(msgpack::packer<msgpack::sbuffer>& p, msgpack::sbuffer& out, const store::RunRow& r) {
    p.pack_map(15);
    p.pack("id");
    p.pack(r.id);
    p.pack("workflow_id");
    p.pack(r.workflow_id);
    p.pack("workflow_name");
    p.pack(r.workflow_name);
    p.pack("status");
    p.pack(r.status);
    p.pack("trigger_type");
    p.pack(r.trigger_type);
    p.pack("trigger_payload");
    pack_json(p, out, r.trigger_payload);
    p.pack("context");
    pack_json(p, out, r.context);
    p.pack("started_at");
    p.pack(r.started_at);
    p.pack("completed_at");
    pack_optional(p, r.completed_at);
    p.pack("error");
    pack_optional(p, r.error);
    p.pack("concurrency_key");
    pack_optional(p, r.concurrency_key);
    p.pack("lease_owner");
    pack_optional(p, r.lease_owner);
    p.pack("cancel_requested");
    p.pack(r.cancel_requested);
    p.pack("start_seq");
    p.pack(r.start_seq);
    p.pack("last_seq");
    p.pack(r.last_seq);
}

void pack_step(msgpack::packer<msgpack::sbuffer>& p, msgpack::sbuffer& out, const store::StepRow& s) {
    p.pack_map(17);
    p.pack("id");
    p.pack(s.id);
    p.pack("run_id");
    p.pack(s.run_id);
    p.pack("step_id");
    p.pack(s.step_id);
    p.pack("step_name");
    pack_optional(p, s.step_name);
    p.pack("status");
    p.pack(s.status);
    p.pack("attempt");
    p.pack(s.attempt);
    p.pack("idempotency_key");
    p.pack(s.id);
    p.pack("input");
    pack_json(p, out, s.input);
    p.pack("output");
    pack_json(p, out, s.output);
    p.pack("error");
    pack_optional(p, s.error);
    p.pack("will_retry");
    p.pack(s.will_retry);
    p.pack("skip_reason");
    pack_optional(p, s.skip_reason);
    p.pack("approved_by");
    pack_optional(p, s.approved_by);
    p.pack("started_at");
    p.pack(s.started_at);
    p.pack("completed_at");
    pack_optional(p, s.completed_at);
    p.pack("start_seq");
    p.pack(s.start_seq);
    p.pack("last_seq");
    p.pack(s.last_seq);
}

void pack_runs(ReplyBuilder& b, std::string_view key, const std::vector<store::RunRow>& runs) {
    auto& p = b.key(key);
    p.pack_array(static_cast<std::uint32_t>(runs.size()));
    for (const auto& r : runs) pack_run(p, b.buffer(), r);
}

// ---- definitions

// The rule a definition breaks, or nothing when it is valid: a `name`, an
// optional `id` (both names), and a non-empty `steps` array of maps with
// unique `id`s (names without ':'), an optional string `name`, and an
// optional `depends_on` array naming other steps, without cycles.
std::optional<std::string> definition_problem(const json& d) {
    if (!d.is_object()) return "the definition must be a map";
    const auto name = d.find("name");
    if (name == d.end() || !name->is_string()) return "the definition needs a string 'name'";
    if (!is_valid_name(name->get_ref<const std::string&>())) {
        return "the definition's 'name' must be 1 to 128 characters of A-Z a-z 0-9 . _ : -";
    }
    if (const auto id = d.find("id"); id != d.end()) {
        if (!id->is_string() || !is_valid_name(id->get_ref<const std::string&>())) {
            return "the definition's 'id' must be 1 to 128 characters of A-Z a-z 0-9 . _ : -";
        }
    }
    const auto steps = d.find("steps");
    if (steps == d.end() || !steps->is_array() || steps->empty()) {
        return "the definition needs a non-empty 'steps' array";
    }
    std::vector<std::string> ids;
    std::unordered_map<std::string, std::vector<std::string>> depends_on;
    for (std::size_t i = 0; i < steps->size(); ++i) {
        const auto& step = (*steps)[i];
        const std::string where = "step " + std::to_string(i);
        if (!step.is_object()) return where + " must be a map";
        const auto id = step.find("id");
        if (id == step.end() || !id->is_string()) return where + " needs a string 'id'";
        const auto& text = id->get_ref<const std::string&>();
        if (!is_valid_name(text) || text.find(':') != std::string::npos) {
            return where + ": 'id' must be 1 to 128 characters of A-Z a-z 0-9 . _ - (no ':')";
        }
        if (depends_on.contains(text)) return "duplicate step id '" + text + "'";
        if (const auto n = step.find("name"); n != step.end() && !n->is_string()) {
            return "step '" + text + "': 'name' must be a string";
        }
        auto& deps = depends_on[text];
        if (const auto dep = step.find("depends_on"); dep != step.end()) {
            if (!dep->is_array()) return "step '" + text + "': 'depends_on' must be an array of step ids";
            for (const auto& target : *dep) {
                if (!target.is_string()) return "step '" + text + "': 'depends_on' must be an array of step ids";
                deps.push_back(target.get<std::string>());
            }
        }
        ids.push_back(text);
    }
    for (const auto& id : ids) {
        for (const auto& target : depends_on[id]) {
            if (!depends_on.contains(target)) return "step '" + id + "' depends on unknown step '" + target + "'";
        }
    }
    // Depth-first search; a step met again while on the path closes a cycle.
    enum class Mark { none, on_path, done };
    std::unordered_map<std::string, Mark> marks;
    std::vector<std::string> path;
    std::optional<std::string> cycle;
    std::function<void(const std::string&)> visit = [&](const std::string& id) {
        marks[id] = Mark::on_path;
        path.push_back(id);
        for (const auto& target : depends_on[id]) {
            if (cycle) return;
            const auto mark = marks[target];
            if (mark == Mark::on_path) {
                std::string text;
                for (auto it = std::find(path.begin(), path.end(), target); it != path.end(); ++it) text += *it + " -> ";
                cycle = "steps form a cycle: " + text + target;
                return;
            }
            if (mark == Mark::none) visit(target);
        }
        path.pop_back();
        marks[id] = Mark::done;
    };
    for (const auto& id : ids) {
        if (cycle) break;
        if (marks[id] == Mark::none) visit(id);
    }
    return cycle;
}

// A step of a stored definition: found, and its `name` if it has one.
struct DefinedStep {
    std::optional<std::string> name;
};
std::optional<DefinedStep> defined_step(const std::string& definition, const std::string& step_id) {
    const auto d = json::parse(definition, nullptr, false);
    if (d.is_discarded() || !d.is_object()) return std::nullopt;
    const auto steps = d.find("steps");
    if (steps == d.end() || !steps->is_array()) return std::nullopt;
    for (const auto& step : *steps) {
        if (!step.is_object()) continue;
        const auto id = step.find("id");
        if (id == step.end() || !id->is_string() || id->get_ref<const std::string&>() != step_id) continue;
        DefinedStep found;
        if (const auto n = step.find("name"); n != step.end() && n->is_string()) found.name = n->get<std::string>();
        return found;
    }
    return std::nullopt;
}

bool valid_owner_type(const std::string& type) {
    return type == store::owner_type::k_global || type == store::owner_type::k_bot;
}

bool valid_run_status(const std::string& status) {
    for (const auto s : {rs::k_pending, rs::k_running, rs::k_paused, rs::k_completed, rs::k_failed, rs::k_crashed,
                         rs::k_cancelled}) {
        if (status == s) return true;
    }
    return false;
}

bool is_terminal(const std::string& status) {
    return status == rs::k_completed || status == rs::k_failed || status == rs::k_cancelled;
}

std::string run_state_message(const store::RunRow& run, std::string_view attempted) {
    return "run '" + run.id + "' is " + run.status + ": cannot " + std::string(attempted);
}

}  // namespace

// ---- LeaseTable

std::optional<std::int64_t> LeaseTable::expiry(const std::string& run_id) const {
    const auto it = m_expiry.find(run_id);
    if (it == m_expiry.end()) return std::nullopt;
    return it->second;
}

std::optional<std::int64_t> LeaseTable::earliest() const {
    std::optional<std::int64_t> first;
    for (const auto& [run, expires_at] : m_expiry) {
        if (!first || expires_at < *first) first = expires_at;
    }
    return first;
}

// ---- WorkflowHandler

WorkflowHandler::WorkflowHandler(store::Store& store, WorkflowOptions options)
    : m_store(store),
      m_queries(store.database()),
      m_lease_us(options.lease_us),
      m_clock(options.clock ? std::move(options.clock) : std::function<std::int64_t()>(store::now_us)) {}

store::Appended WorkflowHandler::append(OpContext& ctx, std::string stream, std::string_view type,
                                        const std::string& producer, std::string payload) {
    return ctx.batch.append({std::move(stream), std::string(type), producer, std::nullopt, std::move(payload)});
}

// ---- definitions

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const WorkflowPutRequest& r) {
    const std::string& me = ctx.me;
    const std::string owner_type = r.owner_type.value_or(std::string(store::owner_type::k_global));
    if (!valid_owner_type(owner_type)) {
        return WireError(Errc::invalid_field, "field 'owner_type' must be \"global\" or \"bot\"");
    }
    const bool by_bot = owner_type == store::owner_type::k_bot;
    if (by_bot && !r.owner_bot) return WireError(Errc::missing_field, "field 'owner_bot' is required for owner_type bot");
    if (!by_bot && r.owner_bot) {
        return WireError(Errc::invalid_field, "field 'owner_bot' is only allowed with owner_type \"bot\"");
    }
    std::string problem;
    const auto definition = to_json(r.definition, "definition", problem);
    if (!definition) return WireError(Errc::invalid_field, problem);
    if (!definition->is_object()) return WireError(Errc::invalid_field, "field 'definition' must be a map");
    if (auto rule = definition_problem(*definition)) return WireError(Errc::invalid_definition, *rule);

    const auto& name = (*definition)["name"].get_ref<const std::string&>();
    std::optional<std::string> given_id;
    if (const auto id = definition->find("id"); id != definition->end()) given_id = id->get<std::string>();
    const auto text = definition->dump();
    const auto owner_label = by_bot ? "bot '" + *r.owner_bot + "'" : std::string("global");

    ReplyBuilder b;
    if (const auto existing = m_queries.workflow_by_name(name, owner_type, r.owner_bot)) {
        if (given_id && *given_id != existing->id) {
            return WireError(Errc::conflict, "workflow '" + name + "' (" + owner_label + ") already exists with id '" +
                                                 existing->id + "', not '" + *given_id + "'");
        }
        const bool replace = r.replace.value_or(false);
        if (existing->archived_at && !replace) {
            return WireError(Errc::conflict, "workflow '" + name + "' (" + owner_label +
                                                 ") is archived; put it with replace: true to restore it");
        }
        if (!existing->archived_at && existing->definition == text) {
            b.field("workflow_id", existing->id);
            b.field("created", false);
            b.field("changed", false);
            return b;
        }
        if (!replace) {
            return WireError(Errc::conflict, "workflow '" + name + "' (" + owner_label +
                                                 ") already exists with a different definition; pass replace: true "
                                                 "to replace it");
        }
        const auto appended =
            append(ctx, store::stream::workflow(existing->id), et::k_workflow_put, me,
                   store::encode_payload(store::WorkflowPut{existing->id, name, owner_type, r.owner_bot, text, false}));
        b.field("workflow_id", existing->id);
        b.field("seq", appended.seq);
        b.field("created", false);
        b.field("changed", true);
        return b;
    }

    std::string id;
    if (given_id) {
        if (const auto taken = m_queries.workflow(*given_id)) {
            return WireError(Errc::conflict, "workflow id '" + *given_id + "' is already used by workflow '" +
                                                 taken->name + "' of another owner");
        }
        id = *given_id;
    } else {
        // "wf-<seq of its creating event>"; a suffix in the unlikely case a
        // client already chose that id.
        const auto base = "wf-" + std::to_string((ctx.last_seq() + 1));
        id = base;
        for (int n = 1; m_queries.workflow(id); ++n) id = base + "." + std::to_string(n);
    }
    const auto appended = append(ctx, store::stream::workflow(id), et::k_workflow_put, me,
                                 store::encode_payload(store::WorkflowPut{id, name, owner_type, r.owner_bot, text, true}));
    b.field("workflow_id", id);
    b.field("seq", appended.seq);
    b.field("created", true);
    b.field("changed", true);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext&, const WorkflowGetRequest& r) {
    if (r.workflow_id.has_value() == r.name.has_value()) {
        return WireError(r.workflow_id ? Errc::invalid_field : Errc::missing_field,
                         "workflow.get needs exactly one of 'workflow_id' or 'name'");
    }
    std::optional<store::WorkflowRow> found;
    if (r.workflow_id) {
        found = m_queries.workflow(*r.workflow_id);
        if (!found) return WireError(Errc::not_found, "no workflow with id '" + *r.workflow_id + "'");
    } else {
        const std::string owner_type = r.owner_type.value_or(std::string(store::owner_type::k_global));
        if (!valid_owner_type(owner_type)) {
            return WireError(Errc::invalid_field, "field 'owner_type' must be \"global\" or \"bot\"");
        }
        const bool by_bot = owner_type == store::owner_type::k_bot;
        if (by_bot && !r.owner_bot) {
            return WireError(Errc::missing_field, "field 'owner_bot' is required for owner_type bot");
        }
        if (!by_bot && r.owner_bot) {
            return WireError(Errc::invalid_field, "field 'owner_bot' is only allowed with owner_type \"bot\"");
        }
        found = m_queries.workflow_by_name(*r.name, owner_type, r.owner_bot);
        if (!found) {
            return WireError(Errc::not_found, "no workflow '" + *r.name + "' (" +
                                                  (by_bot ? "bot '" + *r.owner_bot + "'" : std::string("global")) +
                                                  ")");
        }
    }
    ReplyBuilder b;
    pack_workflow(b.key("workflow"), b.buffer(), *found);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext&, const WorkflowListRequest& r) {
    store::WorkflowFilter filter;
    if (r.owner_type && !valid_owner_type(*r.owner_type)) {
        return WireError(Errc::invalid_field, "field 'owner_type' must be \"global\" or \"bot\"");
    }
    if (r.owner_bot && r.owner_type && *r.owner_type != store::owner_type::k_bot) {
        return WireError(Errc::invalid_field, "field 'owner_bot' is only allowed with owner_type \"bot\"");
    }
    filter.owner_type = r.owner_bot ? std::string(store::owner_type::k_bot) : r.owner_type;
    filter.owner_bot = r.owner_bot;
    filter.include_archived = r.include_archived.value_or(false);
    const auto rows = m_queries.workflows(filter);
    ReplyBuilder b;
    auto& p = b.key("workflows");
    p.pack_array(static_cast<std::uint32_t>(rows.size()));
    for (const auto& w : rows) pack_workflow(p, b.buffer(), w);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const WorkflowDeleteRequest& r) {
    const std::string& me = ctx.me;
    const auto workflow = m_queries.workflow(r.workflow_id);
    if (!workflow) return WireError(Errc::not_found, "no workflow with id '" + r.workflow_id + "'");
    const bool archive = r.archive.value_or(false);
    ReplyBuilder b;
    b.field("workflow_id", r.workflow_id);
    if (archive) {
        b.field("deleted", false);
        b.field("archived", true);
        if (workflow->archived_at) {
            b.field("changed", false);  // already archived; nothing appended
            return b;
        }
        const auto appended = append(ctx, store::stream::workflow(r.workflow_id), et::k_workflow_archived, me,
                                     store::encode_payload(store::WorkflowRef{r.workflow_id}));
        b.field("changed", true);
        b.field("seq", appended.seq);
        return b;
    }
    if (m_queries.workflow_has_runs(r.workflow_id)) {
        return WireError(Errc::has_runs, "workflow '" + workflow->name + "' (" + r.workflow_id +
                                             ") has runs; delete it with archive: true to hide it and keep its runs");
    }
    const auto appended = append(ctx, store::stream::workflow(r.workflow_id), et::k_workflow_deleted, me,
                                 store::encode_payload(store::WorkflowRef{r.workflow_id}));
    b.field("deleted", true);
    b.field("archived", false);
    b.field("changed", true);
    b.field("seq", appended.seq);
    return b;
}

// ---- runs

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const RunStartRequest& r) {
    const std::string& me = ctx.me;
    const std::string status = r.status.value_or(std::string(rs::k_running));
    if (status != rs::k_running && status != rs::k_pending) {
        return WireError(Errc::invalid_field, "field 'status' must be \"pending\" or \"running\"");
    }
    const auto workflow = m_queries.workflow(r.workflow_id);
    if (!workflow) return WireError(Errc::not_found, "no workflow with id '" + r.workflow_id + "'");

    ReplyBuilder b;
    if (r.run_id) {
        if (const auto existing = m_queries.run(*r.run_id)) {
            if (existing->workflow_id != r.workflow_id) {
                return WireError(Errc::conflict, "run '" + *r.run_id + "' already exists for workflow '" +
                                                     existing->workflow_id + "'");
            }
            b.field("run_id", existing->id);
            b.field("seq", existing->start_seq);
            b.field("status", existing->status);
            b.field("duplicate", true);
            return b;
        }
    }
    if (workflow->archived_at) {
        return WireError(Errc::conflict, "workflow '" + workflow->name + "' (" + workflow->id + ") is archived");
    }
    std::string problem;
    std::optional<std::string> trigger_payload;
    if (r.trigger_payload) {
        const auto j = to_json(*r.trigger_payload, "trigger_payload", problem);
        if (!j) return WireError(Errc::invalid_field, problem);
        trigger_payload = j->dump();
    }
    std::string context(k_empty_context);
    if (r.context) {
        const auto j = to_json(*r.context, "context", problem);
        if (!j) return WireError(Errc::invalid_field, problem);
        context = j->dump();
    }
    std::string run_id;
    if (r.run_id) {
        run_id = *r.run_id;
    } else {
        const auto base = "run-" + std::to_string((ctx.last_seq() + 1));
        run_id = base;
        for (int n = 1; m_queries.run(run_id); ++n) run_id = base + "." + std::to_string(n);
    }
    const bool running = status == rs::k_running;
    store::RunStarted payload{run_id,
                              workflow->id,
                              workflow->name,
                              status,
                              r.trigger_type.value_or(std::string(k_default_trigger_type)),
                              std::move(trigger_payload),
                              std::move(context),
                              r.concurrency_key,
                              running ? std::optional<std::string>(me) : std::nullopt};
    const auto appended =
        append(ctx, store::stream::run(run_id), et::k_run_started, me, store::encode_payload(payload));
    b.field("run_id", run_id);
    b.field("seq", appended.seq);
    b.field("status", status);
    b.field("duplicate", false);
    if (running) {
        const auto expires_at = now() + m_lease_us;
        m_leases.grant(run_id, expires_at);
        b.field("lease_expires_at", expires_at);
    }
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const RunPauseRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (run->status != rs::k_running) return WireError(Errc::invalid_transition, run_state_message(*run, "pause"));
    const auto appended = append(ctx, store::stream::run(r.run_id), et::k_run_paused, me,
                                 store::encode_payload(store::RunRef{r.run_id}));
    m_leases.release(r.run_id);
    ReplyBuilder b;
    b.field("run_id", r.run_id);
    b.field("status", rs::k_paused);
    b.field("seq", appended.seq);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const RunResumeRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (run->status != rs::k_pending && run->status != rs::k_paused && run->status != rs::k_crashed) {
        return WireError(Errc::invalid_transition, run_state_message(*run, "resume"));
    }
    const auto appended = append(ctx, store::stream::run(r.run_id), et::k_run_resumed, me,
                                 store::encode_payload(store::RunResumed{r.run_id, me}));
    const auto expires_at = now() + m_lease_us;
    m_leases.grant(r.run_id, expires_at);
    ReplyBuilder b;
    b.field("run_id", r.run_id);
    b.field("status", rs::k_running);
    b.field("seq", appended.seq);
    b.field("lease_owner", me);
    b.field("lease_expires_at", expires_at);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const RunCompleteRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (run->status != rs::k_running) return WireError(Errc::invalid_transition, run_state_message(*run, "complete"));
    std::optional<std::string> context;
    if (r.context) {
        std::string problem;
        const auto j = to_json(*r.context, "context", problem);
        if (!j) return WireError(Errc::invalid_field, problem);
        context = j->dump();
    }
    const auto appended = append(ctx, store::stream::run(r.run_id), et::k_run_completed, me,
                                 store::encode_payload(store::RunCompleted{r.run_id, std::move(context)}));
    m_leases.release(r.run_id);
    ReplyBuilder b;
    b.field("run_id", r.run_id);
    b.field("status", rs::k_completed);
    b.field("seq", appended.seq);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const RunFailRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (is_terminal(run->status)) return WireError(Errc::invalid_transition, run_state_message(*run, "fail"));
    const auto appended = append(ctx, store::stream::run(r.run_id), et::k_run_failed, me,
                                 store::encode_payload(store::RunFailed{r.run_id, r.error}));
    m_leases.release(r.run_id);
    ReplyBuilder b;
    b.field("run_id", r.run_id);
    b.field("status", rs::k_failed);
    b.field("seq", appended.seq);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const RunCancelRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (is_terminal(run->status)) return WireError(Errc::invalid_transition, run_state_message(*run, "cancel"));
    ReplyBuilder b;
    b.field("run_id", r.run_id);
    // A running run belongs to its executor: anyone else only asks it to
    // stop; the executor learns of it from its next heartbeat and cancels.
    const bool by_executor = run->lease_owner && *run->lease_owner == me;
    if (run->status == rs::k_running && !by_executor) {
        b.field("status", run->status);
        b.field("cancel_requested", true);
        if (run->cancel_requested) {
            b.field("changed", false);  // already requested; nothing appended
            return b;
        }
        const auto appended = append(ctx, store::stream::run(r.run_id), et::k_run_cancel_requested, me,
                                     store::encode_payload(store::RunRef{r.run_id}));
        b.field("changed", true);
        b.field("seq", appended.seq);
        return b;
    }
    const auto appended = append(ctx, store::stream::run(r.run_id), et::k_run_cancelled, me,
                                 store::encode_payload(store::RunRef{r.run_id}));
    m_leases.release(r.run_id);
    b.field("status", rs::k_cancelled);
    b.field("cancel_requested", run->cancel_requested);
    b.field("changed", true);
    b.field("seq", appended.seq);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const RunCheckpointRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (run->status != rs::k_running && run->status != rs::k_paused) {
        return WireError(Errc::invalid_transition, run_state_message(*run, "checkpoint its context"));
    }
    std::string problem;
    const auto context = to_json(r.context, "context", problem);
    if (!context) return WireError(Errc::invalid_field, problem);
    const auto appended = append(ctx, store::stream::run(r.run_id), et::k_run_context, me,
                                 store::encode_payload(store::RunContext{r.run_id, context->dump()}));
    ReplyBuilder b;
    b.field("run_id", r.run_id);
    b.field("status", run->status);
    b.field("seq", appended.seq);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const RunHeartbeatRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (run->status != rs::k_running) {
        return WireError(Errc::invalid_transition, run_state_message(*run, "heartbeat (only running runs hold a lease)"));
    }
    if (!run->lease_owner || *run->lease_owner != me) {
        return WireError(Errc::not_lease_owner, "run '" + r.run_id + "' is held by '" + run->lease_owner.value_or("") +
                                                    "', not '" + me + "'");
    }
    const auto expires_at = now() + m_lease_us;
    m_leases.grant(r.run_id, expires_at);
    ReplyBuilder b;
    b.field("run_id", r.run_id);
    b.field("status", run->status);
    b.field("cancel_requested", run->cancel_requested);
    b.field("lease_expires_at", expires_at);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext&, const RunGetRequest& r) {
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    ReplyBuilder b;
    pack_run(b.key("run"), b.buffer(), *run);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext&, const RunListRequest& r) {
    if (r.status && !valid_run_status(*r.status)) {
        return WireError(Errc::invalid_field, "field 'status' must be one of pending, running, paused, completed, "
                                              "failed, crashed, cancelled");
    }
    const auto limit = r.limit.value_or(k_default_run_list_limit);
    if (limit == 0 || limit > k_max_run_list_limit) {
        return WireError(Errc::invalid_field, "field 'limit' must be 1 to " + std::to_string(k_max_run_list_limit));
    }
    ReplyBuilder b;
    pack_runs(b, "runs", m_queries.runs({r.workflow_id, r.status, limit}));
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext&, const RunStepsRequest& r) {
    if (!m_queries.run(r.run_id)) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    const auto steps = m_queries.steps(r.run_id);
    ReplyBuilder b;
    b.field("run_id", r.run_id);
    auto& p = b.key("steps");
    p.pack_array(static_cast<std::uint32_t>(steps.size()));
    for (const auto& s : steps) pack_step(p, b.buffer(), s);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext&, const RunCompletedStepsRequest& r) {
    if (!m_queries.run(r.run_id)) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    ReplyBuilder b;
    b.field("run_id", r.run_id);
    b.field("step_ids", m_queries.completed_step_ids(r.run_id));
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext&, const RunCrashedRequest&) {
    ReplyBuilder b;
    pack_runs(b, "runs", m_queries.crashed_runs());
    return b;
}

// ---- steps

Result<WorkflowHandler::StepTarget> WorkflowHandler::step_target(OpContext& ctx, const std::string& run_id,
                                                                 const std::string& step_id, std::string_view verb,
                                                                 bool allow_paused) {
    auto run = m_queries.run(run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + run_id + "'");
    if (run->status != rs::k_running && !(allow_paused && run->status == rs::k_paused)) {
        return WireError(Errc::invalid_transition,
                         run_state_message(*run, std::string(verb) + " step '" + step_id + "'"));
    }
    const auto workflow = m_queries.workflow(run->workflow_id);
    auto defined = workflow ? defined_step(workflow->definition, step_id) : std::nullopt;
    if (!defined) {
        return WireError(Errc::not_found, "workflow '" + run->workflow_name + "' has no step '" + step_id + "'");
    }
    return StepTarget{ctx.me, std::move(*run), std::move(defined->name), m_queries.latest_attempt(run_id, step_id)};
}

namespace {

std::string step_state_message(const store::RunRow& run, const std::string& step_id,
                               const std::optional<store::StepRow>& latest, std::string_view attempted) {
    std::string state = latest ? "is " + latest->status + " (attempt " + std::to_string(latest->attempt) + ")"
                               : std::string("was never started");
    return "step '" + step_id + "' of run '" + run.id + "' " + state + ": cannot " + std::string(attempted);
}

void step_reply(ReplyBuilder& b, const std::string& run_id, const std::string& step_id, std::uint64_t attempt,
                std::string_view status, store::Seq seq) {
    b.field("run_id", run_id);
    b.field("step_id", step_id);
    b.field("attempt", attempt);
    b.field("attempt_id", store::step_attempt_id(run_id, step_id, attempt));
    b.field("status", status);
    b.field("seq", seq);
}

}  // namespace

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const StepStartRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.start", false);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    const std::uint64_t next = latest ? latest->attempt + 1 : 1;
    ReplyBuilder b;
    if (r.attempt && latest && *r.attempt == latest->attempt && latest->status == ss::k_running) {
        // A retried start of the attempt that is running: answer as before.
        step_reply(b, r.run_id, r.step_id, latest->attempt, latest->status, latest->start_seq);
        b.field("duplicate", true);
        return b;
    }
    if (latest && latest->status != ss::k_failed) {
        return WireError(Errc::invalid_transition, step_state_message(run, r.step_id, latest, "start it again"));
    }
    if (r.attempt && *r.attempt != next) {
        return WireError(Errc::invalid_field, "field 'attempt' must be " + std::to_string(next) + " for step '" +
                                                  r.step_id + "' of run '" + r.run_id + "'");
    }
    std::optional<std::string> input;
    if (r.input) {
        std::string problem;
        const auto j = to_json(*r.input, "input", problem);
        if (!j) return WireError(Errc::invalid_field, problem);
        input = j->dump();
    }
    const auto appended =
        append(ctx, store::stream::run(r.run_id), et::k_step_started, me,
               store::encode_payload(store::StepStarted{r.run_id, r.step_id, r.step_name ? r.step_name : step_name,
                                                        next, std::move(input)}));
    step_reply(b, r.run_id, r.step_id, next, ss::k_running, appended.seq);
    b.field("duplicate", false);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const StepCompleteRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.complete", false);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (!latest || latest->status != ss::k_running) {
        return WireError(Errc::invalid_transition, step_state_message(run, r.step_id, latest, "complete it"));
    }
    std::optional<std::string> output;
    if (r.output) {
        std::string problem;
        const auto j = to_json(*r.output, "output", problem);
        if (!j) return WireError(Errc::invalid_field, problem);
        output = j->dump();
    }
    const auto appended =
        append(ctx, store::stream::run(r.run_id), et::k_step_completed, me,
               store::encode_payload(store::StepCompleted{r.run_id, r.step_id, latest->attempt, std::move(output)}));
    ReplyBuilder b;
    step_reply(b, r.run_id, r.step_id, latest->attempt, ss::k_completed, appended.seq);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const StepFailRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.fail", false);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (!latest || latest->status != ss::k_running) {
        return WireError(Errc::invalid_transition, step_state_message(run, r.step_id, latest, "fail it"));
    }
    const auto appended = append(ctx, store::stream::run(r.run_id), et::k_step_failed, me,
                                 store::encode_payload(store::StepFailed{r.run_id, r.step_id, latest->attempt, r.error,
                                                                         r.will_retry.value_or(false)}));
    ReplyBuilder b;
    step_reply(b, r.run_id, r.step_id, latest->attempt, ss::k_failed, appended.seq);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const StepSkipRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.skip", false);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (latest && latest->status != ss::k_failed) {
        return WireError(Errc::invalid_transition, step_state_message(run, r.step_id, latest, "skip it"));
    }
    const std::uint64_t attempt = latest ? latest->attempt + 1 : 1;
    const auto appended = append(
        ctx, store::stream::run(r.run_id), et::k_step_skipped, me,
        store::encode_payload(store::StepSkipped{r.run_id, r.step_id, step_name, attempt, r.reason}));
    ReplyBuilder b;
    step_reply(b, r.run_id, r.step_id, attempt, ss::k_skipped, appended.seq);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const StepWaitApprovalRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.wait_approval", false);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (!latest || latest->status != ss::k_running) {
        return WireError(Errc::invalid_transition,
                         step_state_message(run, r.step_id, latest, "make it wait for approval"));
    }
    const auto appended = append(ctx, store::stream::run(r.run_id), et::k_step_waiting_approval, me,
                                 store::encode_payload(store::StepRef{r.run_id, r.step_id, latest->attempt}));
    ReplyBuilder b;
    step_reply(b, r.run_id, r.step_id, latest->attempt, ss::k_waiting_approval, appended.seq);
    return b;
}

Result<ReplyBuilder> WorkflowHandler::op(OpContext& ctx, const StepApproveRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.approve", true);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (!latest || latest->status != ss::k_waiting_approval) {
        return WireError(Errc::invalid_transition, step_state_message(run, r.step_id, latest, "approve it"));
    }
    const auto appended =
        append(ctx, store::stream::run(r.run_id), et::k_step_approved, me,
               store::encode_payload(store::StepApproved{r.run_id, r.step_id, latest->attempt, me}));
    ReplyBuilder b;
    step_reply(b, r.run_id, r.step_id, latest->attempt, ss::k_completed, appended.seq);
    b.field("approved_by", me);
    return b;
}

// ---- leases

std::size_t WorkflowHandler::expire_leases(store::Batch& batch, std::int64_t now_us) {
    // Reconcile with the projection first: a lease whose run is not running
    // goes; a running run without a lease (its lease change was rolled back)
    // gets a fresh one rather than being declared crashed.
    const auto running = m_queries.running_run_ids();
    const std::set<std::string> running_set(running.begin(), running.end());
    std::vector<std::string> stale;
    for (const auto& [run_id, expires_at] : m_leases.all()) {
        if (!running_set.contains(run_id)) stale.push_back(run_id);
    }
    for (const auto& run_id : stale) m_leases.release(run_id);
    for (const auto& run_id : running) {
        if (!m_leases.expiry(run_id)) m_leases.grant(run_id, now_us + m_lease_us);
    }

    std::vector<std::string> expired;
    for (const auto& [run_id, expires_at] : m_leases.all()) {
        if (expires_at <= now_us) expired.push_back(run_id);
    }
    for (const auto& run_id : expired) {
        const auto run = m_queries.run(run_id);
        store::RunCrashed payload{run_id, m_queries.running_attempt_ids(run_id),
                                  run ? run->lease_owner : std::nullopt};
        batch.append({store::stream::run(run_id), std::string(et::k_run_crashed), std::string(k_daemon_producer),
                      std::nullopt, store::encode_payload(payload)});
        m_leases.release(run_id);
    }
    return expired.size();
}

void WorkflowHandler::grant_grace(std::int64_t now_us) {
    m_leases.clear();
    for (const auto& run_id : m_queries.running_run_ids()) m_leases.grant(run_id, now_us + m_lease_us);
}

}  // namespace botbus::bus
