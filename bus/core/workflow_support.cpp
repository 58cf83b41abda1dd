#include "bus/core/workflow_support.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string_view>
#include <unordered_map>

#include "store/workflow_payloads.hpp"

namespace botbus::bus::workflow_support {

using nlohmann::json;
namespace rs = store::run_status;

// ---- JSON documents on the wire

namespace {

// Whether `text` is well-formed UTF-8 (RFC 3629): no stray continuation
// bytes, no truncated or overlong sequences, no surrogates, nothing past
// U+10FFFF. json::dump() throws on anything else, so it is refused on the
// way in rather than failing the request later.
bool is_utf8(std::string_view text) {
    std::size_t i = 0;
    const auto byte = [&](std::size_t at) { return static_cast<unsigned char>(text[at]); };
    while (i < text.size()) {
        const unsigned char lead = byte(i);
        if (lead < 0x80) {
            ++i;
            continue;
        }
        std::size_t length = 0;
        unsigned char low = 0x80;  // the range the second byte must be in
        unsigned char high = 0xbf;
        if (lead >= 0xc2 && lead <= 0xdf) {
            length = 2;
        } else if (lead >= 0xe0 && lead <= 0xef) {
            length = 3;
            if (lead == 0xe0) low = 0xa0;   // overlong
            if (lead == 0xed) high = 0x9f;  // surrogates
        } else if (lead >= 0xf0 && lead <= 0xf4) {
            length = 4;
            if (lead == 0xf0) low = 0x90;   // overlong
            if (lead == 0xf4) high = 0x8f;  // past U+10FFFF
        } else {
            return false;  // a continuation byte, or an overlong or impossible lead
        }
        if (text.size() - i < length) return false;
        if (byte(i + 1) < low || byte(i + 1) > high) return false;
        for (std::size_t k = 2; k < length; ++k) {
            if ((byte(i + k) & 0xc0) != 0x80) return false;
        }
        i += length;
    }
    return true;
}

// What keeps a JSON value from round-tripping: binary/ext values (msgpack
// bin and ext have no JSON form), non-finite floats (JSON has none), and
// strings or map keys that are not UTF-8 (JSON text is UTF-8).
std::optional<std::string> not_json(const json& value) {
    if (value.is_binary()) return "a binary or ext value";
    if (value.is_number_float() && !std::isfinite(value.get<double>())) return "a non-finite float";
    if (value.is_string() && !is_utf8(value.get_ref<const std::string&>())) return "a string that is not UTF-8";
    if (value.is_object()) {
        for (auto item = value.begin(); item != value.end(); ++item) {
            if (!is_utf8(item.key())) return "a map key that is not UTF-8";
            if (auto problem = not_json(item.value())) return problem;
        }
    } else if (value.is_array()) {
        for (const auto& item : value) {
            if (auto problem = not_json(item)) return problem;
        }
    }
    return std::nullopt;
}

}  // namespace

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

// A stored JSON text as a msgpack value, none when absent. The text is the
// daemon's own json::dump(), so it parses; none covers a damaged row.
std::optional<PackedValue> json_value(const std::optional<std::string>& text) {
    if (!text) return std::nullopt;
    const auto j = json::parse(*text, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    const auto bytes = json::to_msgpack(j);
    return PackedValue{std::string(bytes.begin(), bytes.end())};
}

WorkflowInfo workflow_info(const store::WorkflowRow& w) {
    return WorkflowInfo{w.id,         w.name,       w.owner_type,            w.owner_bot, json_value(w.definition),
                        w.created_at, w.updated_at, w.archived_at.has_value(), w.archived_at};
}

RunInfo run_info(const store::RunRow& r) {
    return RunInfo{r.id,
                   r.workflow_id,
                   r.workflow_name,
                   r.status,
                   r.trigger_type,
                   json_value(r.trigger_payload),
                   json_value(r.context),
                   r.started_at,
                   r.completed_at,
                   r.error,
                   r.concurrency_key,
                   r.lease_owner,
                   r.cancel_requested,
                   r.start_seq,
                   r.last_seq};
}

RunListReply run_list(const std::vector<store::RunRow>& runs) {
    RunListReply reply;
    for (const auto& r : runs) reply.runs.push_back(run_info(r));
    return reply;
}

StepInfo step_info(const store::StepRow& s) {
    return StepInfo{s.id,          s.run_id,      s.step_id,      s.step_name,  s.status,
                    s.attempt,     s.id,          json_value(s.input), json_value(s.output), s.error,
                    s.will_retry,  s.skip_reason, s.approved_by,  s.started_at, s.completed_at,
                    s.start_seq,   s.last_seq};
}

// ---- definitions

// The rule a definition breaks, or nothing when it is valid: a `name`, an
// optional `id` (both names), and a non-empty `steps` array of maps with
// unique `id`s (names without ':'), an optional string `name`, and an
// optional `depends_on` array naming other steps, without cycles; and an
// optional `approvers` array of bot names (who may approve and cancel).
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
    if (const auto approvers = d.find("approvers"); approvers != d.end()) {
        const auto problem = "the definition's 'approvers' must be an array of bot names";
        if (!approvers->is_array()) return problem;
        for (const auto& bot : *approvers) {
            if (!bot.is_string() || !is_valid_name(bot.get_ref<const std::string&>())) return problem;
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

std::vector<std::string> definition_approvers(const std::string& definition) {
    std::vector<std::string> bots;
    const auto d = json::parse(definition, nullptr, false);
    if (d.is_discarded() || !d.is_object()) return bots;
    const auto approvers = d.find("approvers");
    if (approvers == d.end() || !approvers->is_array()) return bots;
    for (const auto& bot : *approvers) {
        if (bot.is_string()) bots.push_back(bot.get<std::string>());
    }
    return bots;
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

}  // namespace botbus::bus::workflow_support
