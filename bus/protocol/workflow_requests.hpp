// The workflow ops' requests (definitions, runs, steps), declared as
// requests.hpp declares the rest; `Request` (requests.hpp) lists them all.
// JSON documents (definition, context, input, output, trigger_payload)
// travel as msgpack values that must convert to JSON: string map keys, no
// binary or ext, finite floats.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bus/protocol/values.hpp"

namespace botbus::bus {

struct WorkflowPutRequest {
    static constexpr std::string_view k_op = "workflow.put";
    static constexpr bool k_needs_identity = true;
    PackedValue definition;                 // a map: {name, id?, steps: [{id, name?, depends_on?}], ...}
    std::optional<std::string> owner_type;  // "global" (default) or "bot"
    std::optional<std::string> owner_bot;   // required iff owner_type is "bot"
    std::optional<bool> replace;            // replace a different definition under the same name and owner
    template <typename F> void fields(F& f) {
        f.value("definition", definition);
        f.opt_text("owner_type", owner_type);
        f.opt_name("owner_bot", owner_bot);
        f.opt_flag("replace", replace);
    }
};
struct WorkflowGetRequest {
    static constexpr std::string_view k_op = "workflow.get";
    std::optional<std::string> workflow_id;  // by id, or
    std::optional<std::string> name;         // by name and owner
    std::optional<std::string> owner_type;
    std::optional<std::string> owner_bot;
    template <typename F> void fields(F& f) {
        f.opt_name("workflow_id", workflow_id);
        f.opt_name("name", name);
        f.opt_text("owner_type", owner_type);
        f.opt_name("owner_bot", owner_bot);
    }
};
struct WorkflowListRequest {
    static constexpr std::string_view k_op = "workflow.list";
    std::optional<std::string> owner_type;
    std::optional<std::string> owner_bot;
    std::optional<bool> include_archived;
    std::optional<std::string> after = {};            // the last workflow's name, and
    std::optional<std::string> after_owner_bot = {};  // its owner_bot (none for a global one)
    std::optional<std::uint64_t> limit = {};
    template <typename F> void fields(F& f) {
        f.opt_text("owner_type", owner_type);
        f.opt_name("owner_bot", owner_bot);
        f.opt_flag("include_archived", include_archived);
        f.opt_name("after", after);
        f.opt_name("after_owner_bot", after_owner_bot);
        f.opt_u64("limit", limit);
    }
};
struct WorkflowDeleteRequest {
    static constexpr std::string_view k_op = "workflow.delete";
    static constexpr bool k_needs_identity = true;
    std::string workflow_id;
    std::optional<bool> archive;
    template <typename F> void fields(F& f) { f.name("workflow_id", workflow_id); f.opt_flag("archive", archive); }
};
struct RunStartRequest {
    static constexpr std::string_view k_op = "run.start";
    static constexpr bool k_needs_identity = true;
    std::string workflow_id;
    std::optional<std::string> run_id;        // client-chosen: makes a retried start idempotent
    std::optional<std::string> status;        // "pending" or "running" (default)
    std::optional<std::string> trigger_type;  // default "manual"
    std::optional<PackedValue> trigger_payload;
    std::optional<PackedValue> context;  // default {}
    std::optional<std::string> concurrency_key;
    template <typename F> void fields(F& f) {
        f.name("workflow_id", workflow_id);
        f.opt_name("run_id", run_id);
        f.opt_text("status", status);
        f.opt_name("trigger_type", trigger_type);
        f.opt_value("trigger_payload", trigger_payload);
        f.opt_value("context", context);
        f.opt_key("concurrency_key", concurrency_key);
    }
};
struct RunPauseRequest {
    static constexpr std::string_view k_op = "run.pause";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunResumeRequest {
    static constexpr std::string_view k_op = "run.resume";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunCompleteRequest {
    static constexpr std::string_view k_op = "run.complete";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    std::optional<PackedValue> context;  // the final context; default: keep the last checkpoint
    template <typename F> void fields(F& f) { f.name("run_id", run_id); f.opt_value("context", context); }
};
struct RunFailRequest {
    static constexpr std::string_view k_op = "run.fail";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    std::string error;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); f.text("error", error); }
};
struct RunCancelRequest {
    static constexpr std::string_view k_op = "run.cancel";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunCheckpointRequest {
    static constexpr std::string_view k_op = "run.checkpoint";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    PackedValue context;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); f.value("context", context); }
};
struct RunHeartbeatRequest {
    static constexpr std::string_view k_op = "run.heartbeat";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunGetRequest {
    static constexpr std::string_view k_op = "run.get";
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunListRequest {
    static constexpr std::string_view k_op = "run.list";
    std::optional<std::string> workflow_id;
    std::optional<std::string> status;
    std::optional<std::uint64_t> limit;  // 1..1000, default 100
    std::optional<std::uint64_t> before = {};  // a start_seq: runs started before it (newest first)
    template <typename F> void fields(F& f) {
        f.opt_name("workflow_id", workflow_id);
        f.opt_text("status", status);
        f.opt_u64("limit", limit);
        f.opt_u64("before", before);
    }
};
struct RunStepsRequest {
    static constexpr std::string_view k_op = "run.steps";
    std::string run_id;
    std::optional<std::uint64_t> after = {};  // a start_seq: attempts started after it
    std::optional<std::uint64_t> limit = {};
    template <typename F> void fields(F& f) {
        f.name("run_id", run_id); f.opt_u64("after", after); f.opt_u64("limit", limit);
    }
};
struct RunCompletedStepsRequest {
    static constexpr std::string_view k_op = "run.completed_steps";
    std::string run_id;
    std::optional<std::uint64_t> after = {};  // the reply's last_start_seq
    std::optional<std::uint64_t> limit = {};
    template <typename F> void fields(F& f) {
        f.name("run_id", run_id); f.opt_u64("after", after); f.opt_u64("limit", limit);
    }
};
struct RunCrashedRequest {
    static constexpr std::string_view k_op = "run.crashed";
    std::optional<std::uint64_t> before = {};  // a start_seq: runs started before it (newest first)
    std::optional<std::uint64_t> limit = {};
    template <typename F> void fields(F& f) { f.opt_u64("before", before); f.opt_u64("limit", limit); }
};
struct StepStartRequest {
    static constexpr std::string_view k_op = "step.start";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    std::string step_id;
    std::optional<std::string> step_name;  // default: the definition's step name
    std::optional<std::uint64_t> attempt;  // default: previous attempts + 1
    std::optional<PackedValue> input;
    template <typename F> void fields(F& f) {
        f.name("run_id", run_id);
        f.name_part("step_id", step_id);
        f.opt_text("step_name", step_name);
        f.opt_u64("attempt", attempt);
        f.opt_value("input", input);
    }
};
struct StepCompleteRequest {
    static constexpr std::string_view k_op = "step.complete";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    std::string step_id;
    std::optional<PackedValue> output;
    template <typename F> void fields(F& f) {
        f.name("run_id", run_id);
        f.name_part("step_id", step_id);
        f.opt_value("output", output);
    }
};
struct StepFailRequest {
    static constexpr std::string_view k_op = "step.fail";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    std::string step_id;
    std::string error;
    std::optional<bool> will_retry;
    template <typename F> void fields(F& f) {
        f.name("run_id", run_id);
        f.name_part("step_id", step_id);
        f.text("error", error);
        f.opt_flag("will_retry", will_retry);
    }
};
struct StepSkipRequest {
    static constexpr std::string_view k_op = "step.skip";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    std::string step_id;
    std::optional<std::string> reason;
    template <typename F> void fields(F& f) {
        f.name("run_id", run_id);
        f.name_part("step_id", step_id);
        f.opt_text("reason", reason);
    }
};
struct StepWaitApprovalRequest {
    static constexpr std::string_view k_op = "step.wait_approval";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    std::string step_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); f.name_part("step_id", step_id); }
};
struct StepApproveRequest {
    static constexpr std::string_view k_op = "step.approve";
    static constexpr bool k_needs_identity = true;
    std::string run_id;
    std::string step_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); f.name_part("step_id", step_id); }
};

}  // namespace botbus::bus
