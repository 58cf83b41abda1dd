// Read side of the workflow projections: definitions, runs and step
// attempts; implemented per backend (store/sql/workflow_queries.hpp).
// Guarantees (every method): inside an open Batch, answers from that
// transaction, so the batch's own appends are included; outside one, each
// call reads one consistent snapshot of the committed state. A call never
// opens, commits or ends the caller's batch. Throws the backend's exception
// on a storage error (inside a batch the caller then rolls back).
// Concurrency: single-threaded, on the Store's thread.
// Limitations: JSON documents come back as the JSON text the projections
// hold; callers convert them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/event.hpp"
#include "store/page.hpp"

namespace botbus::store {

struct WorkflowRow {
    std::string id;
    std::string name;
    std::string owner_type;  // "global" or "bot"
    std::optional<std::string> owner_bot;
    std::string definition;  // JSON text
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
    std::optional<std::int64_t> archived_at;
    Seq last_seq = 0;
};

struct RunRow {
    std::string id;
    std::string workflow_id;
    std::string workflow_name;
    std::string status;
    std::string trigger_type;
    std::optional<std::string> trigger_payload;  // JSON text
    std::string context;                         // JSON text
    std::int64_t started_at = 0;
    std::optional<std::int64_t> completed_at;
    std::optional<std::string> error;
    std::optional<std::string> concurrency_key;
    std::optional<std::string> lease_owner;
    bool cancel_requested = false;
    Seq start_seq = 0;
    Seq last_seq = 0;
    // The bot that started the run or last resumed it (its previous lease
    // owner once none holds it).
    std::optional<std::string> owner;
};

struct StepRow {
    std::string id;  // also the idempotency key: "<run_id>:<step_id>:<attempt>"
    std::string run_id;
    std::string step_id;
    std::optional<std::string> step_name;
    std::string status;
    std::uint64_t attempt = 0;
    std::optional<std::string> input;   // JSON text
    std::optional<std::string> output;  // JSON text
    std::optional<std::string> error;
    bool will_retry = false;
    std::optional<std::string> skip_reason;
    std::optional<std::string> approved_by;
    std::int64_t started_at = 0;
    std::optional<std::int64_t> completed_at;
    Seq start_seq = 0;
    Seq last_seq = 0;
};

// A step whose latest attempt completed or was skipped, and when that
// attempt started (its key in the list).
struct CompletedStep {
    std::string step_id;
    Seq start_seq = 0;
};

// What rows weigh against Page::max_bytes: their variable parts plus an
// allowance for the fixed ones.
inline std::size_t row_bytes(const WorkflowRow& row) {
    return row.id.size() + row.name.size() + row.definition.size() + (row.owner_bot ? row.owner_bot->size() : 0) + 160;
}
inline std::size_t row_bytes(const RunRow& row) {
    return row.id.size() + row.workflow_id.size() + row.workflow_name.size() + row.trigger_type.size() +
           (row.trigger_payload ? row.trigger_payload->size() : 0) + row.context.size() +
           (row.error ? row.error->size() : 0) + (row.concurrency_key ? row.concurrency_key->size() : 0) +
           (row.lease_owner ? row.lease_owner->size() : 0) + 256;
}
inline std::size_t row_bytes(const StepRow& row) {
    return 2 * row.id.size() + row.run_id.size() + row.step_id.size() + (row.step_name ? row.step_name->size() : 0) +
           (row.input ? row.input->size() : 0) + (row.output ? row.output->size() : 0) +
           (row.error ? row.error->size() : 0) + (row.skip_reason ? row.skip_reason->size() : 0) +
           (row.approved_by ? row.approved_by->size() : 0) + 256;
}
inline std::size_t row_bytes(const CompletedStep& row) { return row.step_id.size() + 1; }

// A workflow's place in workflows()'s order: name, then owner type, then
// owner bot ("" for a global workflow).
struct WorkflowKey {
    std::string name;
    std::string owner_type;
    std::string owner_bot;
};

struct WorkflowFilter {
    std::optional<std::string> owner_type;
    std::optional<std::string> owner_bot;
    bool include_archived = false;
    std::optional<WorkflowKey> after;  // only workflows after this one
};

struct RunFilter {
    std::optional<std::string> workflow_id;
    std::optional<std::string> status;
    std::optional<Seq> before;  // only runs whose start_seq is below this
};

class WorkflowQueries {
public:
    virtual ~WorkflowQueries() = default;

    virtual std::optional<WorkflowRow> workflow(const std::string& id) = 0;
    // owner_bot is ignored (treated as none) for owner_type "global".
    virtual std::optional<WorkflowRow> workflow_by_name(const std::string& name, const std::string& owner_type,
                                                        const std::optional<std::string>& owner_bot) = 0;
    // The lists page by key (page.hpp): each reads on from the key its
    // filter or cursor gives, exclusive.
    virtual std::vector<WorkflowRow> workflows(const WorkflowFilter& filter, const Page& page) = 0;  // by WorkflowKey
    virtual bool workflow_has_runs(const std::string& workflow_id) = 0;

    virtual std::optional<RunRow> run(const std::string& id) = 0;
    // Newest first (by start_seq, the seq of run.started).
    virtual std::vector<RunRow> runs(const RunFilter& filter, const Page& page) = 0;
    // Newest first; only runs whose start_seq is below `before`, when given.
    virtual std::vector<RunRow> crashed_runs(std::optional<Seq> before, const Page& page) = 0;
    virtual std::vector<std::string> running_run_ids() = 0;         // ordered by id

    // The attempts that started after seq `after`, in start order.
    virtual std::vector<StepRow> steps(const std::string& run_id, Seq after, const Page& page) = 0;
    virtual std::optional<StepRow> latest_attempt(const std::string& run_id, const std::string& step_id) = 0;
    // The steps whose latest attempt completed or was skipped, in the start
    // order of those attempts (those that started after seq `after`): what
    // a resumed run skips.
    virtual std::vector<CompletedStep> completed_steps(const std::string& run_id, Seq after, const Page& page) = 0;
    // Ids of the run's step attempts that are running, in start order.
    virtual std::vector<std::string> running_attempt_ids(const std::string& run_id) = 0;

    // The leases of running runs (Batch::put_lease): until when a run is
    // held, the earliest lease to run out, and those that ran out at or
    // before `now_us` (earliest first, at most `limit`).
    virtual std::optional<std::int64_t> lease_expiry(const std::string& run_id) = 0;
    virtual std::optional<std::int64_t> earliest_lease_expiry() = 0;
    virtual std::vector<std::string> leases_due(std::int64_t now_us, std::size_t limit) = 0;
};

}  // namespace botbus::store
