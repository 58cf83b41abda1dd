// The step ops: step.start, step.complete, step.fail, step.skip,
// step.wait_approval, step.approve, and the checks they share.
#include <string>
#include <utility>

#include "bus/core/workflow_handler.hpp"
#include "bus/core/workflow_support.hpp"
#include "store/workflow_payloads.hpp"

namespace botbus::bus {

using namespace workflow_support;
namespace rs = store::run_status;
namespace ss = store::step_status;

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

StepReply step_reply(const std::string& run_id, const std::string& step_id, std::uint64_t attempt,
                     std::string_view status, store::Seq seq) {
    return StepReply{run_id,          step_id, attempt, store::step_attempt_id(run_id, step_id, attempt),
                     std::string(status), seq, std::nullopt, std::nullopt};
}

}  // namespace

Result<StepReply> WorkflowHandler::op(OpContext& ctx, const StepStartRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.start", false);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (auto refused = holds_lease(ctx, run, "change its steps")) return std::move(*refused);
    const std::uint64_t next = latest ? latest->attempt + 1 : 1;
    if (r.attempt && latest && *r.attempt == latest->attempt && latest->status == ss::k_running) {
        // A retried start of the attempt that is running: answer as before.
        auto reply = step_reply(r.run_id, r.step_id, latest->attempt, latest->status, latest->start_seq);
        reply.duplicate = true;
        return reply;
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
        append(ctx, store::stream::run(r.run_id), store::EventType::step_started, me,
               store::encode_payload(store::StepStarted{r.run_id, r.step_id, r.step_name ? r.step_name : step_name,
                                                        next, std::move(input)}));
    auto reply = step_reply(r.run_id, r.step_id, next, ss::k_running, appended.seq);
    reply.duplicate = false;
    return reply;
}

Result<StepReply> WorkflowHandler::op(OpContext& ctx, const StepCompleteRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.complete", false);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (auto refused = holds_lease(ctx, run, "change its steps")) return std::move(*refused);
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
        append(ctx, store::stream::run(r.run_id), store::EventType::step_completed, me,
               store::encode_payload(store::StepCompleted{r.run_id, r.step_id, latest->attempt, std::move(output)}));
    return step_reply(r.run_id, r.step_id, latest->attempt, ss::k_completed, appended.seq);
}

Result<StepReply> WorkflowHandler::op(OpContext& ctx, const StepFailRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.fail", false);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (auto refused = holds_lease(ctx, run, "change its steps")) return std::move(*refused);
    if (!latest || latest->status != ss::k_running) {
        return WireError(Errc::invalid_transition, step_state_message(run, r.step_id, latest, "fail it"));
    }
    const auto appended = append(ctx, store::stream::run(r.run_id), store::EventType::step_failed, me,
                                 store::encode_payload(store::StepFailed{r.run_id, r.step_id, latest->attempt, r.error,
                                                                         r.will_retry.value_or(false)}));
    return step_reply(r.run_id, r.step_id, latest->attempt, ss::k_failed, appended.seq);
}

Result<StepReply> WorkflowHandler::op(OpContext& ctx, const StepSkipRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.skip", false);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (auto refused = holds_lease(ctx, run, "change its steps")) return std::move(*refused);
    if (latest && latest->status != ss::k_failed) {
        return WireError(Errc::invalid_transition, step_state_message(run, r.step_id, latest, "skip it"));
    }
    const std::uint64_t attempt = latest ? latest->attempt + 1 : 1;
    const auto appended = append(
        ctx, store::stream::run(r.run_id), store::EventType::step_skipped, me,
        store::encode_payload(store::StepSkipped{r.run_id, r.step_id, step_name, attempt, r.reason}));
    return step_reply(r.run_id, r.step_id, attempt, ss::k_skipped, appended.seq);
}

Result<StepReply> WorkflowHandler::op(OpContext& ctx, const StepWaitApprovalRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.wait_approval", false);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (auto refused = holds_lease(ctx, run, "change its steps")) return std::move(*refused);
    if (!latest || latest->status != ss::k_running) {
        return WireError(Errc::invalid_transition,
                         step_state_message(run, r.step_id, latest, "make it wait for approval"));
    }
    const auto appended = append(ctx, store::stream::run(r.run_id), store::EventType::step_waiting_approval, me,
                                 store::encode_payload(store::StepRef{r.run_id, r.step_id, latest->attempt}));
    return step_reply(r.run_id, r.step_id, latest->attempt, ss::k_waiting_approval, appended.seq);
}

Result<StepReply> WorkflowHandler::op(OpContext& ctx, const StepApproveRequest& r) {
    auto target = step_target(ctx, r.run_id, r.step_id, "step.approve", true);
    if (!target) return target.take_error();
    const auto& [me, run, step_name, latest] = *target;
    if (auto refused = may_decide(ctx, run, "approve step '" + r.step_id + "'")) return std::move(*refused);
    if (!latest || latest->status != ss::k_waiting_approval) {
        return WireError(Errc::invalid_transition, step_state_message(run, r.step_id, latest, "approve it"));
    }
    const auto appended =
        append(ctx, store::stream::run(r.run_id), store::EventType::step_approved, me,
               store::encode_payload(store::StepApproved{r.run_id, r.step_id, latest->attempt, me}));
    auto reply = step_reply(r.run_id, r.step_id, latest->attempt, ss::k_completed, appended.seq);
    reply.approved_by = me;
    return reply;
}

}  // namespace botbus::bus
