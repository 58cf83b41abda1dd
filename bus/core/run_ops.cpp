// The run ops: run.start, run.pause, run.resume, run.complete, run.fail,
// run.cancel, run.checkpoint, run.heartbeat, run.get, run.list, run.steps,
// run.completed_steps, run.crashed.
#include <string>
#include <utility>

#include "bus/core/paging.hpp"
#include "bus/core/workflow_handler.hpp"
#include "bus/core/workflow_support.hpp"
#include "store/workflow_payloads.hpp"

namespace botbus::bus {

using namespace workflow_support;
namespace rs = store::run_status;
namespace ss = store::step_status;

// ---- runs

Result<RunStartReply> WorkflowHandler::op(OpContext& ctx, const RunStartRequest& r) {
    const std::string& me = ctx.me;
    const std::string status = r.status.value_or(std::string(rs::k_running));
    if (status != rs::k_running && status != rs::k_pending) {
        return WireError(Errc::invalid_field, "field 'status' must be \"pending\" or \"running\"");
    }
    const auto workflow = m_queries.workflow(r.workflow_id);
    if (!workflow) return WireError(Errc::not_found, "no workflow with id '" + r.workflow_id + "'");

    if (r.run_id) {
        if (const auto existing = m_queries.run(*r.run_id)) {
            if (existing->workflow_id != r.workflow_id) {
                return WireError(Errc::conflict, "run '" + *r.run_id + "' already exists for workflow '" +
                                                     existing->workflow_id + "'");
            }
            return RunStartReply{existing->id, existing->start_seq, existing->status, true, std::nullopt};
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
        append(ctx, store::stream::run(run_id), store::EventType::run_started, me, store::encode_payload(payload));
    RunStartReply reply{run_id, appended.seq, status, false, std::nullopt};
    if (running) {
        reply.lease_expires_at = now() + m_lease_us;
        grant_lease(ctx, run_id, *reply.lease_expires_at);
    }
    return reply;
}

Result<RunStatusReply> WorkflowHandler::op(OpContext& ctx, const RunPauseRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (run->status != rs::k_running) return WireError(Errc::invalid_transition, run_state_message(*run, "pause"));
    if (auto refused = holds_lease(ctx, *run, "pause it")) return std::move(*refused);
    const auto appended = append(ctx, store::stream::run(r.run_id), store::EventType::run_paused, me,
                                 store::encode_payload(store::RunRef{r.run_id}));
    ctx.batch.drop_lease(r.run_id);
    return RunStatusReply{r.run_id, std::string(rs::k_paused), appended.seq};
}

Result<RunResumeReply> WorkflowHandler::op(OpContext& ctx, const RunResumeRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (run->status != rs::k_pending && run->status != rs::k_paused && run->status != rs::k_crashed) {
        return WireError(Errc::invalid_transition, run_state_message(*run, "resume"));
    }
    // A pending run waits for any executor to take it; a paused or crashed
    // one goes back to its owner.
    if (run->status != rs::k_pending) {
        if (auto refused = may_resume(ctx, *run)) return std::move(*refused);
    }
    const auto appended = append(ctx, store::stream::run(r.run_id), store::EventType::run_resumed, me,
                                 store::encode_payload(store::RunResumed{r.run_id, me}));
    const auto expires_at = now() + m_lease_us;
    grant_lease(ctx, r.run_id, expires_at);
    return RunResumeReply{r.run_id, std::string(rs::k_running), appended.seq, me, expires_at};
}

Result<RunStatusReply> WorkflowHandler::op(OpContext& ctx, const RunCompleteRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (run->status != rs::k_running) return WireError(Errc::invalid_transition, run_state_message(*run, "complete"));
    if (auto refused = holds_lease(ctx, *run, "complete it")) return std::move(*refused);
    std::optional<std::string> context;
    if (r.context) {
        std::string problem;
        const auto j = to_json(*r.context, "context", problem);
        if (!j) return WireError(Errc::invalid_field, problem);
        context = j->dump();
    }
    const auto appended = append(ctx, store::stream::run(r.run_id), store::EventType::run_completed, me,
                                 store::encode_payload(store::RunCompleted{r.run_id, std::move(context)}));
    ctx.batch.drop_lease(r.run_id);
    return RunStatusReply{r.run_id, std::string(rs::k_completed), appended.seq};
}

Result<RunStatusReply> WorkflowHandler::op(OpContext& ctx, const RunFailRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (is_terminal(run->status)) return WireError(Errc::invalid_transition, run_state_message(*run, "fail"));
    if (auto refused = holds_lease(ctx, *run, "fail it")) return std::move(*refused);
    const auto appended = append(ctx, store::stream::run(r.run_id), store::EventType::run_failed, me,
                                 store::encode_payload(store::RunFailed{r.run_id, r.error}));
    ctx.batch.drop_lease(r.run_id);
    return RunStatusReply{r.run_id, std::string(rs::k_failed), appended.seq};
}

Result<RunCancelReply> WorkflowHandler::op(OpContext& ctx, const RunCancelRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (is_terminal(run->status)) return WireError(Errc::invalid_transition, run_state_message(*run, "cancel"));
    if (auto refused = may_decide(ctx, *run, "cancel")) return std::move(*refused);
    // A running run belongs to its executor: anyone else only asks it to
    // stop; the executor learns of it from its next heartbeat and cancels.
    const bool by_executor = run->lease_owner && *run->lease_owner == me;
    if (run->status == rs::k_running && !by_executor) {
        if (run->cancel_requested) {
            return RunCancelReply{r.run_id, run->status, true, false, std::nullopt};  // already requested
        }
        const auto appended = append(ctx, store::stream::run(r.run_id), store::EventType::run_cancel_requested, me,
                                     store::encode_payload(store::RunRef{r.run_id}));
        return RunCancelReply{r.run_id, run->status, true, true, appended.seq};
    }
    const auto appended = append(ctx, store::stream::run(r.run_id), store::EventType::run_cancelled, me,
                                 store::encode_payload(store::RunRef{r.run_id}));
    ctx.batch.drop_lease(r.run_id);
    return RunCancelReply{r.run_id, std::string(rs::k_cancelled), run->cancel_requested, true, appended.seq};
}

Result<RunStatusReply> WorkflowHandler::op(OpContext& ctx, const RunCheckpointRequest& r) {
    const std::string& me = ctx.me;
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    if (run->status != rs::k_running && run->status != rs::k_paused) {
        return WireError(Errc::invalid_transition, run_state_message(*run, "checkpoint its context"));
    }
    if (auto refused = holds_lease(ctx, *run, "checkpoint its context")) return std::move(*refused);
    std::string problem;
    const auto context = to_json(r.context, "context", problem);
    if (!context) return WireError(Errc::invalid_field, problem);
    const auto appended = append(ctx, store::stream::run(r.run_id), store::EventType::run_context, me,
                                 store::encode_payload(store::RunContext{r.run_id, context->dump()}));
    return RunStatusReply{r.run_id, run->status, appended.seq};
}

Result<RunHeartbeatReply> WorkflowHandler::op(OpContext& ctx, const RunHeartbeatRequest& r) {
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
    grant_lease(ctx, r.run_id, expires_at);
    return RunHeartbeatReply{r.run_id, run->status, run->cancel_requested, expires_at};
}

Result<RunGetReply> WorkflowHandler::op(OpContext&, const RunGetRequest& r) {
    const auto run = m_queries.run(r.run_id);
    if (!run) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    return RunGetReply{run_info(*run)};
}

Result<RunListReply> WorkflowHandler::op(OpContext&, const RunListRequest& r) {
    if (r.status && !valid_run_status(*r.status)) {
        return WireError(Errc::invalid_field, "field 'status' must be one of pending, running, paused, completed, "
                                              "failed, crashed, cancelled");
    }
    const auto limit = page_limit(r.limit);
    if (!limit) return limit.error();
    auto rows = m_queries.runs({r.workflow_id, r.status, r.before}, page_query(*limit));
    const bool more = fit_page(rows, *limit);
    auto reply = run_list(rows);
    reply.more = more;
    return reply;
}

Result<RunStepsReply> WorkflowHandler::op(OpContext&, const RunStepsRequest& r) {
    if (!m_queries.run(r.run_id)) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    const auto limit = page_limit(r.limit);
    if (!limit) return limit.error();
    auto rows = m_queries.steps(r.run_id, r.after.value_or(0), page_query(*limit));
    RunStepsReply reply{r.run_id, {}};
    reply.more = fit_page(rows, *limit);
    for (const auto& s : rows) reply.steps.push_back(step_info(s));
    return reply;
}

Result<RunCompletedStepsReply> WorkflowHandler::op(OpContext&, const RunCompletedStepsRequest& r) {
    if (!m_queries.run(r.run_id)) return WireError(Errc::not_found, "no run '" + r.run_id + "'");
    const auto limit = page_limit(r.limit);
    if (!limit) return limit.error();
    auto rows = m_queries.completed_steps(r.run_id, r.after.value_or(0), page_query(*limit));
    RunCompletedStepsReply reply{r.run_id, {}};
    reply.more = fit_page(rows, *limit);
    for (auto& step : rows) reply.step_ids.push_back(std::move(step.step_id));
    if (!rows.empty()) reply.last_start_seq = rows.back().start_seq;
    return reply;
}

Result<RunListReply> WorkflowHandler::op(OpContext&, const RunCrashedRequest& r) {
    const auto limit = page_limit(r.limit);
    if (!limit) return limit.error();
    auto rows = m_queries.crashed_runs(r.before, page_query(*limit));
    const bool more = fit_page(rows, *limit);
    auto reply = run_list(rows);
    reply.more = more;
    return reply;
}

}  // namespace botbus::bus
