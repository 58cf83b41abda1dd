// The workflow ops: definitions, runs and step attempts as events on the log,
// checked against the projected state machine, plus the runs' leases.
//
// Operation: CommandHandler's dispatch calls the op overload here for every
// workflow request, inside the daemon's open batch. Each op validates its request against the projections
// (which include earlier requests of the same batch) and either appends its
// events and replies, or replies with an error and appends nothing.
// Leases: a running run is held by its lease_owner (the bot that started or
// resumed it), who renews the lease with run.heartbeat. Heartbeats are not
// logged, so lease expiries live in memory only (LeaseTable); the server
// calls expire_leases from a timer, which appends run.crashed (producer
// "botbusd") for every running run whose lease has expired, and grant_grace
// once at start-up.
// Concurrency: runs on the server's loop thread only, like CommandHandler.
// Limitations: lease changes made by a batch that is later rolled back stay
// in memory; expire_leases reconciles the table with the projection (drops
// leases of runs that are not running, gives a fresh lease to running runs
// without one), so the worst case is one extra lease period.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "bus/protocol/codec.hpp"
#include "bus/core/handler.hpp"
#include "store/store.hpp"
#include "store/workflow_queries.hpp"

namespace botbus::bus {

// In-memory lease expiries of running runs, keyed by run id.
class LeaseTable {
public:
    void grant(const std::string& run_id, std::int64_t expires_at) { m_expiry[run_id] = expires_at; }
    void release(const std::string& run_id) { m_expiry.erase(run_id); }
    void clear() { m_expiry.clear(); }
    std::optional<std::int64_t> expiry(const std::string& run_id) const;
    std::optional<std::int64_t> earliest() const;
    const std::map<std::string, std::int64_t>& all() const { return m_expiry; }

private:
    std::map<std::string, std::int64_t> m_expiry;
};

class WorkflowHandler {
public:
    // `acl` (the CommandHandler's) names the admins and the default policy.
    WorkflowHandler(store::Store& store, WorkflowOptions options, const AclIndex& acl);

    // The handler overloads for the workflow ops, called by CommandHandler's
    // dispatch (which has checked the identity where the op needs one).
    Result<WorkflowPutReply> op(OpContext&, const WorkflowPutRequest&);
    Result<WorkflowGetReply> op(OpContext&, const WorkflowGetRequest&);
    Result<WorkflowListReply> op(OpContext&, const WorkflowListRequest&);
    Result<WorkflowDeleteReply> op(OpContext&, const WorkflowDeleteRequest&);
    Result<RunStartReply> op(OpContext&, const RunStartRequest&);
    Result<RunStatusReply> op(OpContext&, const RunPauseRequest&);
    Result<RunResumeReply> op(OpContext&, const RunResumeRequest&);
    Result<RunStatusReply> op(OpContext&, const RunCompleteRequest&);
    Result<RunStatusReply> op(OpContext&, const RunFailRequest&);
    Result<RunCancelReply> op(OpContext&, const RunCancelRequest&);
    Result<RunStatusReply> op(OpContext&, const RunCheckpointRequest&);
    Result<RunHeartbeatReply> op(OpContext&, const RunHeartbeatRequest&);
    Result<RunGetReply> op(OpContext&, const RunGetRequest&);
    Result<RunListReply> op(OpContext&, const RunListRequest&);
    Result<RunStepsReply> op(OpContext&, const RunStepsRequest&);
    Result<RunCompletedStepsReply> op(OpContext&, const RunCompletedStepsRequest&);
    Result<RunListReply> op(OpContext&, const RunCrashedRequest&);
    Result<StepReply> op(OpContext&, const StepStartRequest&);
    Result<StepReply> op(OpContext&, const StepCompleteRequest&);
    Result<StepReply> op(OpContext&, const StepFailRequest&);
    Result<StepReply> op(OpContext&, const StepSkipRequest&);
    Result<StepReply> op(OpContext&, const StepWaitApprovalRequest&);
    Result<StepReply> op(OpContext&, const StepApproveRequest&);

    std::size_t expire_leases(store::Batch& batch, std::int64_t now_us);
    void grant_grace(std::int64_t now_us);
    std::optional<std::int64_t> next_lease_expiry() const { return m_leases.earliest(); }
    void set_lease_duration(std::int64_t lease_us) { m_lease_us = lease_us; }
    std::int64_t lease_duration() const { return m_lease_us; }
    // The lease expiry of a run, when it holds one.
    std::optional<std::int64_t> lease_expiry(const std::string& run_id) const { return m_leases.expiry(run_id); }

    store::WorkflowQueries& queries() { return m_queries; }

private:
    // What every step op checks first: the run in status running (or
    // paused, when allowed), and a step its workflow defines.
    // Limitations: it parses the workflow's definition JSON and runs three
    // queries (run, workflow, latest attempt) for every step op.
    struct StepTarget {
        std::string me;
        store::RunRow run;
        std::optional<std::string> step_name;  // the definition's name for the step
        std::optional<store::StepRow> latest;  // the step's latest attempt
    };
    Result<StepTarget> step_target(OpContext&, const std::string& run_id, const std::string& step_id,
                                   std::string_view verb, bool allow_paused);
    // Who may do what (docs/PROTOCOL.md, "Permissions"; run_permissions.cpp).
    // Under the default policy allow only the lease holder's hold and a
    // definition's approvers restrict; the owner rules below apply under deny.
    // Changing a run: the bot holding its lease; when none does (pending,
    // paused, crashed), its owner, its definition's owner or an admin.
    Check holds_lease(const OpContext&, const store::RunRow& run, std::string_view verb);
    // Resuming a paused or crashed run (a pending one is anyone's): the
    // run's owner (previous lease owner or starter), its definition's
    // owner, or an admin.
    Check may_resume(const OpContext&, const store::RunRow& run);
    // Cancelling and approving: the definition's approvers, the run's owner
    // or lease holder, or an admin.
    Check may_decide(const OpContext&, const store::RunRow& run, std::string_view verb);
    // Putting or deleting a definition: a bot-owned one by its owner bot, a
    // global one by anyone under the default policy allow; admins always.
    Check may_change_definition(const OpContext&, const std::string& owner_type,
                                const std::optional<std::string>& owner_bot, std::string_view verb) const;
    // The bot that owns the run's definition, if a bot does.
    std::optional<std::string> definition_owner(const store::RunRow& run);
    store::Appended append(OpContext&, std::string stream, store::EventType type, const std::string& producer,
                           std::string payload);
    std::int64_t now() const { return m_clock(); }

    store::Store& m_store;
    store::WorkflowQueries& m_queries;
    std::int64_t m_lease_us;
    std::function<std::int64_t()> m_clock;
    LeaseTable m_leases;
    const AclIndex& m_acl;
};

}  // namespace botbus::bus
