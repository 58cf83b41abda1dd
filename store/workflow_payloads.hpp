// Payload shapes of the workflow event types. Like payloads.hpp, these are
// the log's stored format: add fields only as optional, never change a
// field's meaning. JSON documents (definitions, contexts, inputs, outputs)
// are carried as JSON text, exactly as the projections store them, so a
// replay writes the same bytes the daemon wrote.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/payloads.hpp"

namespace botbus::store {

// Owner types and statuses, as the projection tables spell them.
namespace owner_type {
inline constexpr std::string_view k_global = "global";
inline constexpr std::string_view k_bot = "bot";
}  // namespace owner_type

namespace run_status {
inline constexpr std::string_view k_pending = "pending";
inline constexpr std::string_view k_running = "running";
inline constexpr std::string_view k_paused = "paused";
inline constexpr std::string_view k_completed = "completed";
inline constexpr std::string_view k_failed = "failed";
inline constexpr std::string_view k_crashed = "crashed";
inline constexpr std::string_view k_cancelled = "cancelled";
}  // namespace run_status

namespace step_status {
inline constexpr std::string_view k_pending = "pending";
inline constexpr std::string_view k_running = "running";
inline constexpr std::string_view k_completed = "completed";
inline constexpr std::string_view k_failed = "failed";
inline constexpr std::string_view k_skipped = "skipped";
inline constexpr std::string_view k_waiting_approval = "waiting_approval";
}  // namespace step_status

// workflow.put: creates (created = true) or replaces a definition.
struct WorkflowPut {
    std::string id;
    std::string name;
    std::string owner_type;
    std::optional<std::string> owner_bot;
    std::string definition;  // JSON text
    bool created = false;
    MSGPACK_DEFINE_MAP(id, name, owner_type, owner_bot, definition, created)
};

// workflow.deleted and workflow.archived.
struct WorkflowRef {
    std::string id;
    MSGPACK_DEFINE_MAP(id)
};

struct RunStarted {
    std::string run_id;
    std::string workflow_id;
    std::string workflow_name;
    std::string status;  // pending or running
    std::string trigger_type;
    std::optional<std::string> trigger_payload;  // JSON text
    std::string context;                         // JSON text
    std::optional<std::string> concurrency_key;
    std::optional<std::string> lease_owner;  // set when started running
    MSGPACK_DEFINE_MAP(run_id, workflow_id, workflow_name, status, trigger_type, trigger_payload, context,
                       concurrency_key, lease_owner)
};

// run.paused, run.cancel_requested, run.cancelled.
struct RunRef {
    std::string run_id;
    MSGPACK_DEFINE_MAP(run_id)
};

// run.resumed: the resuming bot takes the lease.
struct RunResumed {
    std::string run_id;
    std::string lease_owner;
    MSGPACK_DEFINE_MAP(run_id, lease_owner)
};

struct RunCompleted {
    std::string run_id;
    std::optional<std::string> context;  // final context, JSON text; absent keeps the last one
    MSGPACK_DEFINE_MAP(run_id, context)
};

struct RunFailed {
    std::string run_id;
    std::string error;
    MSGPACK_DEFINE_MAP(run_id, error)
};

// run.context: a checkpoint.
struct RunContext {
    std::string run_id;
    std::string context;  // JSON text
    MSGPACK_DEFINE_MAP(run_id, context)
};

// run.crashed, appended by the daemon (producer "botbusd") when a lease
// expires. The step attempts that were running keep their rows.
struct RunCrashed {
    std::string run_id;
    std::vector<std::string> running_steps;  // step attempt ids
    std::optional<std::string> lease_owner;  // the executor that stopped heartbeating
    MSGPACK_DEFINE_MAP(run_id, running_steps, lease_owner)
};

struct StepStarted {
    std::string run_id;
    std::string step_id;
    std::optional<std::string> step_name;
    std::uint64_t attempt = 1;
    std::optional<std::string> input;  // JSON text
    MSGPACK_DEFINE_MAP(run_id, step_id, step_name, attempt, input)
};

struct StepCompleted {
    std::string run_id;
    std::string step_id;
    std::uint64_t attempt = 1;
    std::optional<std::string> output;  // JSON text
    MSGPACK_DEFINE_MAP(run_id, step_id, attempt, output)
};

struct StepFailed {
    std::string run_id;
    std::string step_id;
    std::uint64_t attempt = 1;
    std::string error;
    bool will_retry = false;
    MSGPACK_DEFINE_MAP(run_id, step_id, attempt, error, will_retry)
};

// step.skipped: creates the row of attempt `attempt` in status skipped.
struct StepSkipped {
    std::string run_id;
    std::string step_id;
    std::optional<std::string> step_name;
    std::uint64_t attempt = 1;
    std::optional<std::string> reason;
    MSGPACK_DEFINE_MAP(run_id, step_id, step_name, attempt, reason)
};

// step.waiting_approval.
struct StepRef {
    std::string run_id;
    std::string step_id;
    std::uint64_t attempt = 1;
    MSGPACK_DEFINE_MAP(run_id, step_id, attempt)
};

// step.approved: the attempt waiting for approval becomes completed.
struct StepApproved {
    std::string run_id;
    std::string step_id;
    std::uint64_t attempt = 1;
    std::string approved_by;
    MSGPACK_DEFINE_MAP(run_id, step_id, attempt, approved_by)
};

// "<run_id>:<step_id>:<attempt>": a step attempt's row id and idempotency key.
inline std::string step_attempt_id(const std::string& run_id, const std::string& step_id, std::uint64_t attempt) {
    return run_id + ':' + step_id + ':' + std::to_string(attempt);
}

}  // namespace botbus::store
