// Read side of the workflow projections: definitions, runs and step attempts.
// Concurrency: single-threaded, on the Store's thread. Inside an open Batch
// the answers include that batch's appends.
// Limitations: JSON documents come back as the JSON text the projections
// hold; callers convert them.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

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
    explicit WorkflowQueries(SQLite::Database& db);

    std::optional<WorkflowRow> workflow(const std::string& id);
    // owner_bot is ignored (treated as none) for owner_type "global".
    std::optional<WorkflowRow> workflow_by_name(const std::string& name, const std::string& owner_type,
                                                const std::optional<std::string>& owner_bot);
    std::vector<WorkflowRow> workflows(const WorkflowFilter& filter);  // ordered by name, then owner
    bool workflow_has_runs(const std::string& workflow_id);

    std::optional<RunRow> run(const std::string& id);
    std::vector<RunRow> runs(const RunFilter& filter);  // newest first (by the seq of run.started)
    std::vector<RunRow> crashed_runs();                 // newest first
    std::vector<std::string> running_run_ids();         // ordered by id

    std::vector<StepRow> steps(const std::string& run_id);  // in start order
    std::optional<StepRow> latest_attempt(const std::string& run_id, const std::string& step_id);
    // The step ids whose latest attempt completed or was skipped, in the
    // start order of those attempts: what a resumed run skips.
    std::vector<std::string> completed_step_ids(const std::string& run_id);
    // Ids of the run's step attempts that are running, in start order.
    std::vector<std::string> running_attempt_ids(const std::string& run_id);

private:
    SQLite::Statement m_workflow;
    SQLite::Statement m_workflow_by_name;
    SQLite::Statement m_workflows;
    SQLite::Statement m_workflow_has_runs;
    SQLite::Statement m_run;
    SQLite::Statement m_runs;
    SQLite::Statement m_crashed_runs;
    SQLite::Statement m_running_run_ids;
    SQLite::Statement m_steps;
    SQLite::Statement m_latest_attempt;
    SQLite::Statement m_completed_step_ids;
    SQLite::Statement m_running_attempt_ids;
};

}  // namespace botbus::store
