// WorkflowQueries over the SQLite projections (workflows, workflow_runs,
// workflow_steps).
// Concurrency: single-threaded, on the SqliteStore's connection.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "store/workflow_queries.hpp"

namespace botbus::store {

class SqliteWorkflowQueries final : public WorkflowQueries {
public:
    explicit SqliteWorkflowQueries(SQLite::Database& db);

    std::optional<WorkflowRow> workflow(const std::string& id) override;
    std::optional<WorkflowRow> workflow_by_name(const std::string& name, const std::string& owner_type,
                                                const std::optional<std::string>& owner_bot) override;
    std::vector<WorkflowRow> workflows(const WorkflowFilter& filter, const Page& page) override;
    bool workflow_has_runs(const std::string& workflow_id) override;
    std::optional<RunRow> run(const std::string& id) override;
    std::vector<RunRow> runs(const RunFilter& filter, const Page& page) override;
    std::vector<RunRow> crashed_runs(std::optional<Seq> before, const Page& page) override;
    std::vector<std::string> running_run_ids() override;
    std::vector<StepRow> steps(const std::string& run_id, Seq after, const Page& page) override;
    std::optional<StepRow> latest_attempt(const std::string& run_id, const std::string& step_id) override;
    std::vector<CompletedStep> completed_steps(const std::string& run_id, Seq after, const Page& page) override;
    std::vector<std::string> running_attempt_ids(const std::string& run_id) override;

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
    SQLite::Statement m_completed_steps;
    SQLite::Statement m_running_attempt_ids;
};

}  // namespace botbus::store
