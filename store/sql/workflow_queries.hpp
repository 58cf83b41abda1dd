// WorkflowQueries over the projection tables (either engine) (workflows, workflow_runs,
// workflow_steps).
// Concurrency: single-threaded, on the SqliteStore's connection.
#pragma once

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"
#include "store/sql/run_leases.hpp"

#include "store/workflow_queries.hpp"

namespace botbus::store {

class SqlWorkflowQueries final : public WorkflowQueries {
public:
    explicit SqlWorkflowQueries(sql::Connection& db);

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
    std::optional<std::int64_t> lease_expiry(const std::string& run_id) override { return m_leases.expiry(run_id); }
    std::optional<std::int64_t> earliest_lease_expiry() override { return m_leases.earliest(); }
    std::vector<std::string> leases_due(std::int64_t now_us, std::size_t limit) override {
        return m_leases.due(now_us, limit);
    }
    // The lease rows' writes, for the store's Batch::put_lease and kin.
    RunLeases& leases() { return m_leases; }

private:
    sql::Statement m_workflow;
    sql::Statement m_workflow_by_name;
    sql::Statement m_workflows;
    sql::Statement m_workflow_has_runs;
    sql::Statement m_run;
    sql::Statement m_runs;
    sql::Statement m_crashed_runs;
    sql::Statement m_running_run_ids;
    sql::Statement m_steps;
    sql::Statement m_latest_attempt;
    sql::Statement m_completed_steps;
    sql::Statement m_running_attempt_ids;
    RunLeases m_leases;
};

}  // namespace botbus::store
