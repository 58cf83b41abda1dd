// Who may change a workflow definition or a run: the checks the workflow
// ops make before they append (docs/PROTOCOL.md, "Permissions").
#include <algorithm>
#include <string>
#include <vector>

#include "bus/core/workflow_handler.hpp"
#include "bus/core/workflow_support.hpp"
#include "store/workflow_payloads.hpp"

namespace botbus::bus {
namespace {

bool is(const std::optional<std::string>& bot, const std::string& me) { return bot && *bot == me; }

}  // namespace

std::optional<std::string> WorkflowHandler::definition_owner(const store::RunRow& run) {
    const auto workflow = m_queries.workflow(run.workflow_id);
    if (!workflow || workflow->owner_type != store::owner_type::k_bot) return std::nullopt;
    return workflow->owner_bot;
}

Check WorkflowHandler::holds_lease(const OpContext& ctx, const store::RunRow& run, std::string_view verb) {
    if (run.lease_owner) {
        if (*run.lease_owner == ctx.me) return std::nullopt;
        return WireError(Errc::not_lease_owner, "run '" + run.id + "' is held by '" + *run.lease_owner + "', not '" +
                                                    ctx.me + "': only the lease holder may " + std::string(verb));
    }
    // With no lease holder, unless owners_only anyone may (as before).
    if (!m_acl.policy().owners_only) return std::nullopt;
    if (is(run.owner, ctx.me) || m_acl.is_admin(&ctx.me) || is(definition_owner(run), ctx.me)) return std::nullopt;
    return WireError(Errc::not_lease_owner, "no bot holds the lease of run '" + run.id + "' (" + run.status +
                                                "): only its owner '" + run.owner.value_or("") +
                                                "', its definition's owner or an admin may " + std::string(verb) +
                                                ", not '" + ctx.me + "'");
}

Check WorkflowHandler::may_resume(const OpContext& ctx, const store::RunRow& run) {
    if (!m_acl.policy().owners_only) return std::nullopt;  // anyone, as before
    if (is(run.owner, ctx.me) || m_acl.is_admin(&ctx.me) || is(definition_owner(run), ctx.me)) return std::nullopt;
    return WireError(Errc::forbidden, "bot '" + ctx.me + "' may not resume run '" + run.id + "' (only its owner '" +
                                          run.owner.value_or("") + "', its definition's owner or an admin)");
}

Check WorkflowHandler::may_decide(const OpContext& ctx, const store::RunRow& run, std::string_view verb) {
    if (is(run.owner, ctx.me) || is(run.lease_owner, ctx.me) || m_acl.is_admin(&ctx.me)) return std::nullopt;
    const auto workflow = m_queries.workflow(run.workflow_id);
    const auto approvers =
        workflow ? workflow_support::definition_approvers(workflow->definition) : std::vector<std::string>{};
    if (std::find(approvers.begin(), approvers.end(), ctx.me) != approvers.end()) return std::nullopt;
    // A definition that names no approvers leaves it open, as before, unless
    // owners_only.
    if (approvers.empty() && !m_acl.policy().owners_only) return std::nullopt;
    return WireError(Errc::forbidden, "bot '" + ctx.me + "' may not " + std::string(verb) + " in run '" + run.id +
                                          "' (only the definition's approvers, the run's owner or an admin)");
}

Check WorkflowHandler::may_change_definition(const OpContext& ctx, const std::string& owner_type,
                                             const std::optional<std::string>& owner_bot,
                                             std::string_view verb) const {
    if (m_acl.is_admin(&ctx.me)) return std::nullopt;
    if (owner_type == store::owner_type::k_bot) {
        if (!m_acl.policy().owners_only || is(owner_bot, ctx.me)) return std::nullopt;  // else: as before
        return WireError(Errc::forbidden, "bot '" + ctx.me + "' may not " + std::string(verb) + " a workflow of bot '" +
                                              owner_bot.value_or("") + "' (only that bot or an admin)");
    }
    if (m_acl.policy().default_allow) return std::nullopt;
    return WireError(Errc::forbidden, "bot '" + ctx.me + "' may not " + std::string(verb) +
                                          " a global workflow (the default policy is deny: admins only)");
}

}  // namespace botbus::bus
