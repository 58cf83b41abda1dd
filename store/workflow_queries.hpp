// Read side of the workflow projections: definitions, runs and step
// attempts; implemented per backend (store/sqlite/workflow_queries.hpp).
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

struct WorkflowFilter {
    std::optional<std::string> owner_type;
    std::optional<std::string> owner_bot;
    bool include_archived = false;
};

struct RunFilter {
    std::optional<std::string> workflow_id;
    std::optional<std::string> status;
    std::size_t limit = 100;
};

class WorkflowQueries {
public:
    virtual ~WorkflowQueries() = default;

    virtual std::optional<WorkflowRow> workflow(const std::string& id) = 0;
    // owner_bot is ignored (treated as none) for owner_type "global".
    virtual std::optional<WorkflowRow> workflow_by_name(const std::string& name, const std::string& owner_type,
                                                        const std::optional<std::string>& owner_bot) = 0;
    virtual std::vector<WorkflowRow> workflows(const WorkflowFilter& filter) = 0;  // ordered by name, then owner
    virtual bool workflow_has_runs(const std::string& workflow_id) = 0;

    virtual std::optional<RunRow> run(const std::string& id) = 0;
    virtual std::vector<RunRow> runs(const RunFilter& filter) = 0;  // newest first (by the seq of run.started)
    virtual std::vector<RunRow> crashed_runs() = 0;                 // newest first
    virtual std::vector<std::string> running_run_ids() = 0;         // ordered by id

    virtual std::vector<StepRow> steps(const std::string& run_id) = 0;  // in start order
    virtual std::optional<StepRow> latest_attempt(const std::string& run_id, const std::string& step_id) = 0;
    // The step ids whose latest attempt completed or was skipped, in the
    // start order of those attempts: what a resumed run skips.
    virtual std::vector<std::string> completed_step_ids(const std::string& run_id) = 0;
    // Ids of the run's step attempts that are running, in start order.
    virtual std::vector<std::string> running_attempt_ids(const std::string& run_id) = 0;
};

}  // namespace botbus::store
