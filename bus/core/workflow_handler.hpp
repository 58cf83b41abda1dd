// The workflow ops: definitions, runs and step attempts as events on the log,
// checked against the projected state machine, plus the runs' leases.
//
// Operation: CommandHandler's dispatch calls the op overload here for every
// workflow request, inside the daemon's open batch. Each op validates its request against the projections
// (which include earlier requests of the same batch) and either appends its
// events and replies, or replies with an error and appends nothing.
// Leases: a running run is held by its lease_owner (the bot that started or
// resumed it), who renews the lease with run.heartbeat. Heartbeats are not
// logged, so lease expiries are written beside the log (Batch::put_lease, the
// run_leases table) in the request's batch: they roll back with it, survive a
// restart, and are shared by every node on one log, so an executor may
// heartbeat through any of them. The server calls expire_leases from a timer
// (on one node of a cluster: the leader), which appends run.crashed
// (producer "botbusd") for every running run whose lease ran out, and
// grant_grace when it starts leading: the lease check may have been
// unwatched meanwhile, so every running run gets a full lease period first.
// Concurrency: runs on the server's loop thread only, like CommandHandler.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "bus/protocol/codec.hpp"
#include "bus/core/handler.hpp"
#include "store/store.hpp"
#include "store/workflow_queries.hpp"

namespace botbus::bus {

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
    void grant_grace(store::Batch& batch, std::int64_t now_us);
    // Whether an op granted or renewed a lease since the last call: the
    // server's lease timer may have to be set earlier.
    bool take_leases_granted() { return std::exchange(m_leases_granted, false); }
    std::optional<std::int64_t> next_lease_expiry() const { return m_queries.earliest_lease_expiry(); }
    void set_lease_duration(std::int64_t lease_us) { m_lease_us = lease_us; }
    std::int64_t lease_duration() const { return m_lease_us; }

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
    void grant_lease(OpContext& ctx, const std::string& run_id, std::int64_t expires_at) {
        ctx.batch.put_lease(run_id, expires_at);
        m_leases_granted = true;
    }

    store::Store& m_store;
    store::WorkflowQueries& m_queries;
    std::int64_t m_lease_us;
    std::function<std::int64_t()> m_clock;
    const AclIndex& m_acl;
    bool m_leases_granted = false;
};

}  // namespace botbus::bus
