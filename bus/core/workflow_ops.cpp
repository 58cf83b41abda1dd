// The workflow definition ops: workflow.put, workflow.get, workflow.list,
// workflow.delete.
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

// ---- definitions

Result<WorkflowPutReply> WorkflowHandler::op(OpContext& ctx, const WorkflowPutRequest& r) {
    const std::string& me = ctx.me;
    const std::string owner_type = r.owner_type.value_or(std::string(store::owner_type::k_global));
    if (!valid_owner_type(owner_type)) {
        return WireError(Errc::invalid_field, "field 'owner_type' must be \"global\" or \"bot\"");
    }
    const bool by_bot = owner_type == store::owner_type::k_bot;
    if (by_bot && !r.owner_bot) return WireError(Errc::missing_field, "field 'owner_bot' is required for owner_type bot");
    if (!by_bot && r.owner_bot) {
        return WireError(Errc::invalid_field, "field 'owner_bot' is only allowed with owner_type \"bot\"");
    }
    if (auto refused = may_change_definition(ctx, owner_type, r.owner_bot, "put")) return std::move(*refused);
    std::string problem;
    const auto definition = to_json(r.definition, "definition", problem);
    if (!definition) return WireError(Errc::invalid_field, problem);
    if (!definition->is_object()) return WireError(Errc::invalid_field, "field 'definition' must be a map");
    if (auto rule = definition_problem(*definition)) return WireError(Errc::invalid_definition, *rule);

    const auto& name = (*definition)["name"].get_ref<const std::string&>();
    std::optional<std::string> given_id;
    if (const auto id = definition->find("id"); id != definition->end()) given_id = id->get<std::string>();
    const auto text = definition->dump();
    const auto owner_label = by_bot ? "bot '" + *r.owner_bot + "'" : std::string("global");

    if (const auto existing = m_queries.workflow_by_name(name, owner_type, r.owner_bot)) {
        if (given_id && *given_id != existing->id) {
            return WireError(Errc::conflict, "workflow '" + name + "' (" + owner_label + ") already exists with id '" +
                                                 existing->id + "', not '" + *given_id + "'");
        }
        const bool replace = r.replace.value_or(false);
        if (existing->archived_at && !replace) {
            return WireError(Errc::conflict, "workflow '" + name + "' (" + owner_label +
                                                 ") is archived; put it with replace: true to restore it");
        }
        if (!existing->archived_at && existing->definition == text) {
            return WorkflowPutReply{existing->id, std::nullopt, false, false};
        }
        if (!replace) {
            return WireError(Errc::conflict, "workflow '" + name + "' (" + owner_label +
                                                 ") already exists with a different definition; pass replace: true "
                                                 "to replace it");
        }
        const auto appended =
            append(ctx, store::stream::workflow(existing->id), store::EventType::workflow_put, me,
                   store::encode_payload(store::WorkflowPut{existing->id, name, owner_type, r.owner_bot, text, false}));
        return WorkflowPutReply{existing->id, appended.seq, false, true};
    }

    std::string id;
    if (given_id) {
        if (const auto taken = m_queries.workflow(*given_id)) {
            return WireError(Errc::conflict, "workflow id '" + *given_id + "' is already used by workflow '" +
                                                 taken->name + "' of another owner");
        }
        id = *given_id;
    } else {
        // "wf-<seq of its creating event>"; a suffix in the unlikely case a
        // client already chose that id.
        const auto base = "wf-" + std::to_string((ctx.last_seq() + 1));
        id = base;
        for (int n = 1; m_queries.workflow(id); ++n) id = base + "." + std::to_string(n);
    }
    const auto appended = append(ctx, store::stream::workflow(id), store::EventType::workflow_put, me,
                                 store::encode_payload(store::WorkflowPut{id, name, owner_type, r.owner_bot, text, true}));
    return WorkflowPutReply{id, appended.seq, true, true};
}

Result<WorkflowGetReply> WorkflowHandler::op(OpContext&, const WorkflowGetRequest& r) {
    if (r.workflow_id.has_value() == r.name.has_value()) {
        return WireError(r.workflow_id ? Errc::invalid_field : Errc::missing_field,
                         "workflow.get needs exactly one of 'workflow_id' or 'name'");
    }
    std::optional<store::WorkflowRow> found;
    if (r.workflow_id) {
        found = m_queries.workflow(*r.workflow_id);
        if (!found) return WireError(Errc::not_found, "no workflow with id '" + *r.workflow_id + "'");
    } else {
        const std::string owner_type = r.owner_type.value_or(std::string(store::owner_type::k_global));
        if (!valid_owner_type(owner_type)) {
            return WireError(Errc::invalid_field, "field 'owner_type' must be \"global\" or \"bot\"");
        }
        const bool by_bot = owner_type == store::owner_type::k_bot;
        if (by_bot && !r.owner_bot) {
            return WireError(Errc::missing_field, "field 'owner_bot' is required for owner_type bot");
        }
        if (!by_bot && r.owner_bot) {
            return WireError(Errc::invalid_field, "field 'owner_bot' is only allowed with owner_type \"bot\"");
        }
        found = m_queries.workflow_by_name(*r.name, owner_type, r.owner_bot);
        if (!found) {
            return WireError(Errc::not_found, "no workflow '" + *r.name + "' (" +
                                                  (by_bot ? "bot '" + *r.owner_bot + "'" : std::string("global")) +
                                                  ")");
        }
    }
    return WorkflowGetReply{workflow_info(*found)};
}

Result<WorkflowListReply> WorkflowHandler::op(OpContext&, const WorkflowListRequest& r) {
    store::WorkflowFilter filter;
    if (r.owner_type && !valid_owner_type(*r.owner_type)) {
        return WireError(Errc::invalid_field, "field 'owner_type' must be \"global\" or \"bot\"");
    }
    if (r.owner_bot && r.owner_type && *r.owner_type != store::owner_type::k_bot) {
        return WireError(Errc::invalid_field, "field 'owner_bot' is only allowed with owner_type \"bot\"");
    }
    filter.owner_type = r.owner_bot ? std::string(store::owner_type::k_bot) : r.owner_type;
    filter.owner_bot = r.owner_bot;
    filter.include_archived = r.include_archived.value_or(false);
    if (r.after_owner_bot && !r.after) {
        return WireError(Errc::invalid_field, "field 'after_owner_bot' goes with 'after' (the last workflow's name)");
    }
    if (r.after) {
        // The last workflow's key: a bot's when it names the owner bot, else the global one's.
        filter.after = store::WorkflowKey{*r.after,
                                          std::string(r.after_owner_bot ? store::owner_type::k_bot
                                                                        : store::owner_type::k_global),
                                          r.after_owner_bot.value_or("")};
    }
    const auto limit = page_limit(r.limit);
    if (!limit) return limit.error();
    auto rows = m_queries.workflows(filter, page_query(*limit));
    WorkflowListReply reply;
    reply.more = fit_page(rows, *limit);
    for (const auto& w : rows) reply.workflows.push_back(workflow_info(w));
    return reply;
}

Result<WorkflowDeleteReply> WorkflowHandler::op(OpContext& ctx, const WorkflowDeleteRequest& r) {
    const std::string& me = ctx.me;
    const auto workflow = m_queries.workflow(r.workflow_id);
    if (!workflow) return WireError(Errc::not_found, "no workflow with id '" + r.workflow_id + "'");
    if (auto refused = may_change_definition(ctx, workflow->owner_type, workflow->owner_bot, "delete")) {
        return std::move(*refused);
    }
    const bool archive = r.archive.value_or(false);
    if (archive) {
        if (workflow->archived_at) {
            return WorkflowDeleteReply{r.workflow_id, false, true, false, std::nullopt};  // nothing appended
        }
        const auto appended = append(ctx, store::stream::workflow(r.workflow_id), store::EventType::workflow_archived, me,
                                     store::encode_payload(store::WorkflowRef{r.workflow_id}));
        return WorkflowDeleteReply{r.workflow_id, false, true, true, appended.seq};
    }
    if (m_queries.workflow_has_runs(r.workflow_id)) {
        return WireError(Errc::has_runs, "workflow '" + workflow->name + "' (" + r.workflow_id +
                                             ") has runs; delete it with archive: true to hide it and keep its runs");
    }
    const auto appended = append(ctx, store::stream::workflow(r.workflow_id), store::EventType::workflow_deleted, me,
                                 store::encode_payload(store::WorkflowRef{r.workflow_id}));
    return WorkflowDeleteReply{r.workflow_id, true, false, true, appended.seq};
}

}  // namespace botbus::bus
