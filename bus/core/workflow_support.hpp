// What the workflow ops share: JSON documents on the wire (checked on the
// way in, converted back on the way out), stored rows as the protocol's
// declared replies, the definition rules, and status checks. Internal to
// bus/core's workflow_*.cpp and run_ops.cpp / step_ops.cpp.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/protocol/codec.hpp"
#include "store/workflow_queries.hpp"

namespace botbus::bus::workflow_support {

inline constexpr std::string_view k_default_trigger_type = "manual";
inline constexpr std::string_view k_empty_context = "{}";

// The JSON form of a msgpack value sent in `field`; on failure, the message.
std::optional<nlohmann::json> to_json(const PackedValue& value, std::string_view field, std::string& problem);
// A stored JSON text as a msgpack value, none when absent or damaged.
std::optional<PackedValue> json_value(const std::optional<std::string>& text);

WorkflowInfo workflow_info(const store::WorkflowRow& w);
RunInfo run_info(const store::RunRow& r);
RunListReply run_list(const std::vector<store::RunRow>& runs);
StepInfo step_info(const store::StepRow& s);

// The rule a definition breaks, or nothing when it is valid.
std::optional<std::string> definition_problem(const nlohmann::json& d);

// A step of a stored definition: found, and its `name` if it has one.
struct DefinedStep {
    std::optional<std::string> name;
};
std::optional<DefinedStep> defined_step(const std::string& definition, const std::string& step_id);

// The bots a stored definition names in `approvers` (none when it has none).
std::vector<std::string> definition_approvers(const std::string& definition);

bool valid_owner_type(const std::string& type);
bool valid_run_status(const std::string& status);
bool is_terminal(const std::string& status);
std::string run_state_message(const store::RunRow& run, std::string_view attempted);

}  // namespace botbus::bus::workflow_support
