// The replies of the workflow, run and step ops, declared once. JSON
// documents (definition, trigger_payload, context, input, output) travel as
// packed msgpack values; the core converts them from their stored JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bus/protocol/shape.hpp"
#include "bus/protocol/values.hpp"

namespace botbus::bus {

#define BOTBUS_SHAPE_EQ(T) bool operator==(const T&) const = default

struct WorkflowInfo {
    std::string id;
    std::string name;
    std::string owner_type;
    std::optional<std::string> owner_bot;
    std::optional<PackedValue> definition;  // nil only for a damaged row
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
    bool archived = false;
    std::optional<std::int64_t> archived_at;
    template <typename F> void fields(F& f) {
        f.req("id", id);
        f.req("name", name);
        f.req("owner_type", owner_type);
        f.nil_or("owner_bot", owner_bot);
        f.nil_or("definition", definition);
        f.req("created_at", created_at);
        f.req("updated_at", updated_at);
        f.req("archived", archived);
        f.nil_or("archived_at", archived_at);
    }
    BOTBUS_SHAPE_EQ(WorkflowInfo);
};

struct RunInfo {
    std::string id;
    std::string workflow_id;
    std::string workflow_name;
    std::string status;
    std::string trigger_type;
    std::optional<PackedValue> trigger_payload;
    std::optional<PackedValue> context;
    std::int64_t started_at = 0;
    std::optional<std::int64_t> completed_at;
    std::optional<std::string> error;
    std::optional<std::string> concurrency_key;
    std::optional<std::string> lease_owner;
    bool cancel_requested = false;
    std::uint64_t start_seq = 0;
    std::uint64_t last_seq = 0;
    template <typename F> void fields(F& f) {
        f.req("id", id);
        f.req("workflow_id", workflow_id);
        f.req("workflow_name", workflow_name);
        f.req("status", status);
        f.req("trigger_type", trigger_type);
        f.nil_or("trigger_payload", trigger_payload);
        f.nil_or("context", context);
        f.req("started_at", started_at);
        f.nil_or("completed_at", completed_at);
        f.nil_or("error", error);
        f.nil_or("concurrency_key", concurrency_key);
        f.nil_or("lease_owner", lease_owner);
        f.req("cancel_requested", cancel_requested);
        f.req("start_seq", start_seq);
        f.req("last_seq", last_seq);
    }
    BOTBUS_SHAPE_EQ(RunInfo);
};

// One attempt of a step.
struct StepInfo {
    std::string id;  // "<run_id>:<step_id>:<attempt>"
    std::string run_id;
    std::string step_id;
    std::optional<std::string> step_name;
    std::string status;
    std::uint64_t attempt = 0;
    std::string idempotency_key;  // the id again
    std::optional<PackedValue> input;
    std::optional<PackedValue> output;
    std::optional<std::string> error;
    bool will_retry = false;
    std::optional<std::string> skip_reason;
    std::optional<std::string> approved_by;
    std::int64_t started_at = 0;
    std::optional<std::int64_t> completed_at;
    std::uint64_t start_seq = 0;
    std::uint64_t last_seq = 0;
    template <typename F> void fields(F& f) {
        f.req("id", id);
        f.req("run_id", run_id);
        f.req("step_id", step_id);
        f.nil_or("step_name", step_name);
        f.req("status", status);
        f.req("attempt", attempt);
        f.req("idempotency_key", idempotency_key);
        f.nil_or("input", input);
        f.nil_or("output", output);
        f.nil_or("error", error);
        f.req("will_retry", will_retry);
        f.nil_or("skip_reason", skip_reason);
        f.nil_or("approved_by", approved_by);
        f.req("started_at", started_at);
        f.nil_or("completed_at", completed_at);
        f.req("start_seq", start_seq);
        f.req("last_seq", last_seq);
    }
    BOTBUS_SHAPE_EQ(StepInfo);
};

struct WorkflowPutReply {
    std::string workflow_id;
    std::optional<std::uint64_t> seq;  // absent: the same definition was there; nothing appended
    bool created = false;
    bool changed = false;
    template <typename F> void fields(F& f) {
        f.req("workflow_id", workflow_id);
        f.opt("seq", seq);
        f.req("created", created);
        f.req("changed", changed);
    }
    BOTBUS_SHAPE_EQ(WorkflowPutReply);
};

struct WorkflowGetReply {
    WorkflowInfo workflow;
    template <typename F> void fields(F& f) { f.req("workflow", workflow); }
    BOTBUS_SHAPE_EQ(WorkflowGetReply);
};

struct WorkflowListReply {
    std::vector<WorkflowInfo> workflows;
    bool more = false;  // paging: docs/PROTOCOL.md, "Paging"
    template <typename F> void fields(F& f) { f.req("workflows", workflows); f.req("more", more); }
    BOTBUS_SHAPE_EQ(WorkflowListReply);
};

struct WorkflowDeleteReply {
    std::string workflow_id;
    bool deleted = false;
    bool archived = false;
    bool changed = false;
    std::optional<std::uint64_t> seq;
    template <typename F> void fields(F& f) {
        f.req("workflow_id", workflow_id);
        f.req("deleted", deleted);
        f.req("archived", archived);
        f.req("changed", changed);
        f.opt("seq", seq);
    }
    BOTBUS_SHAPE_EQ(WorkflowDeleteReply);
};

struct RunStartReply {
    std::string run_id;
    std::uint64_t seq = 0;
    std::string status;
    bool duplicate = false;
    std::optional<std::int64_t> lease_expires_at;  // a run started running
    template <typename F> void fields(F& f) {
        f.req("run_id", run_id);
        f.req("seq", seq);
        f.req("status", status);
        f.req("duplicate", duplicate);
        f.opt("lease_expires_at", lease_expires_at);
    }
    BOTBUS_SHAPE_EQ(RunStartReply);
};

// run.pause, run.complete, run.fail, run.checkpoint: {run_id, status, seq}
struct RunStatusReply {
    std::string run_id;
    std::string status;
    std::uint64_t seq = 0;
    template <typename F> void fields(F& f) {
        f.req("run_id", run_id);
        f.req("status", status);
        f.req("seq", seq);
    }
    BOTBUS_SHAPE_EQ(RunStatusReply);
};

struct RunResumeReply {
    std::string run_id;
    std::string status;
    std::uint64_t seq = 0;
    std::string lease_owner;
    std::int64_t lease_expires_at = 0;
    template <typename F> void fields(F& f) {
        f.req("run_id", run_id);
        f.req("status", status);
        f.req("seq", seq);
        f.req("lease_owner", lease_owner);
        f.req("lease_expires_at", lease_expires_at);
    }
    BOTBUS_SHAPE_EQ(RunResumeReply);
};

struct RunCancelReply {
    std::string run_id;
    std::string status;
    bool cancel_requested = false;
    bool changed = false;
    std::optional<std::uint64_t> seq;
    template <typename F> void fields(F& f) {
        f.req("run_id", run_id);
        f.req("status", status);
        f.req("cancel_requested", cancel_requested);
        f.req("changed", changed);
        f.opt("seq", seq);
    }
    BOTBUS_SHAPE_EQ(RunCancelReply);
};

struct RunHeartbeatReply {
    std::string run_id;
    std::string status;
    bool cancel_requested = false;
    std::int64_t lease_expires_at = 0;
    template <typename F> void fields(F& f) {
        f.req("run_id", run_id);
        f.req("status", status);
        f.req("cancel_requested", cancel_requested);
        f.req("lease_expires_at", lease_expires_at);
    }
    BOTBUS_SHAPE_EQ(RunHeartbeatReply);
};

struct RunGetReply {
    RunInfo run;
    template <typename F> void fields(F& f) { f.req("run", run); }
    BOTBUS_SHAPE_EQ(RunGetReply);
};

// run.list, run.crashed
struct RunListReply {
    std::vector<RunInfo> runs;
    bool more = false;
    template <typename F> void fields(F& f) { f.req("runs", runs); f.req("more", more); }
    BOTBUS_SHAPE_EQ(RunListReply);
};

struct RunStepsReply {
    std::string run_id;
    std::vector<StepInfo> steps;
    bool more = false;
    template <typename F> void fields(F& f) { f.req("run_id", run_id); f.req("steps", steps); f.req("more", more); }
    BOTBUS_SHAPE_EQ(RunStepsReply);
};

struct RunCompletedStepsReply {
    std::string run_id;
    std::vector<std::string> step_ids;
    bool more = false;
    std::optional<std::uint64_t> last_start_seq = {};  // of the last step id's attempt: the next page's `after`
    template <typename F> void fields(F& f) {
        f.req("run_id", run_id);
        f.req("step_ids", step_ids);
        f.req("more", more);
        f.opt("last_start_seq", last_start_seq);
    }
    BOTBUS_SHAPE_EQ(RunCompletedStepsReply);
};

// Every step op: {run_id, step_id, attempt, attempt_id, status, seq,
// duplicate? (step.start), approved_by? (step.approve)}
struct StepReply {
    std::string run_id;
    std::string step_id;
    std::uint64_t attempt = 0;
    std::string attempt_id;
    std::string status;
    std::uint64_t seq = 0;
    std::optional<bool> duplicate;
    std::optional<std::string> approved_by;
    template <typename F> void fields(F& f) {
        f.req("run_id", run_id);
        f.req("step_id", step_id);
        f.req("attempt", attempt);
        f.req("attempt_id", attempt_id);
        f.req("status", status);
        f.req("seq", seq);
        f.opt("duplicate", duplicate);
        f.opt("approved_by", approved_by);
    }
    BOTBUS_SHAPE_EQ(StepReply);
};

#undef BOTBUS_SHAPE_EQ

}  // namespace botbus::bus
