#include "store/sql/workflow_queries.hpp"

#include <limits>

#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::ResetOnExit;
using detail::bind_optional;
using detail::optional_text;
using detail::optional_int;
using detail::to_sql_int;

namespace {

constexpr const char* k_workflow_columns =
    "SELECT id, name, owner_type, owner_bot_id, definition, created_at, updated_at, archived_at, last_seq"
    " FROM workflows";

constexpr const char* k_run_columns =
    "SELECT id, workflow_id, workflow_name, status, trigger_type, trigger_payload, context, started_at,"
    " completed_at, error, concurrency_key, lease_owner, cancel_requested, start_seq, last_seq,"
    " owner_bot FROM workflow_runs";

constexpr const char* k_step_columns =
    "SELECT id, run_id, step_id, step_name, status, attempt, input, output, error, will_retry, skip_reason,"
    " approved_by, started_at, completed_at, start_seq, last_seq FROM workflow_steps";

// The latest attempt of each step of run ?1.
constexpr const char* k_latest_attempts =
    " WHERE run_id = ?1 AND attempt = (SELECT MAX(attempt) FROM workflow_steps l"
    " WHERE l.run_id = workflow_steps.run_id AND l.step_id = workflow_steps.step_id)";

WorkflowRow read_workflow(sql::Statement& row) {
    WorkflowRow w;
    w.id = row.getColumn(0).getString();
    w.name = row.getColumn(1).getString();
    w.owner_type = row.getColumn(2).getString();
    w.owner_bot = optional_text(row.getColumn(3));
    w.definition = row.getColumn(4).getString();
    w.created_at = row.getColumn(5).getInt64();
    w.updated_at = row.getColumn(6).getInt64();
    w.archived_at = optional_int(row.getColumn(7));
    w.last_seq = static_cast<Seq>(row.getColumn(8).getInt64());
    return w;
}

RunRow read_run(sql::Statement& row) {
    RunRow r;
    r.id = row.getColumn(0).getString();
    r.workflow_id = row.getColumn(1).getString();
    r.workflow_name = row.getColumn(2).getString();
    r.status = row.getColumn(3).getString();
    r.trigger_type = row.getColumn(4).getString();
    r.trigger_payload = optional_text(row.getColumn(5));
    r.context = row.getColumn(6).getString();
    r.started_at = row.getColumn(7).getInt64();
    r.completed_at = optional_int(row.getColumn(8));
    r.error = optional_text(row.getColumn(9));
    r.concurrency_key = optional_text(row.getColumn(10));
    r.lease_owner = optional_text(row.getColumn(11));
    r.cancel_requested = row.getColumn(12).getInt() != 0;
    r.start_seq = static_cast<Seq>(row.getColumn(13).getInt64());
    r.last_seq = static_cast<Seq>(row.getColumn(14).getInt64());
    r.owner = optional_text(row.getColumn(15));
    return r;
}

StepRow read_step(sql::Statement& row) {
    StepRow s;
    s.id = row.getColumn(0).getString();
    s.run_id = row.getColumn(1).getString();
    s.step_id = row.getColumn(2).getString();
    s.step_name = optional_text(row.getColumn(3));
    s.status = row.getColumn(4).getString();
    s.attempt = static_cast<std::uint64_t>(row.getColumn(5).getInt64());
    s.input = optional_text(row.getColumn(6));
    s.output = optional_text(row.getColumn(7));
    s.error = optional_text(row.getColumn(8));
    s.will_retry = row.getColumn(9).getInt() != 0;
    s.skip_reason = optional_text(row.getColumn(10));
    s.approved_by = optional_text(row.getColumn(11));
    s.started_at = row.getColumn(12).getInt64();
    s.completed_at = optional_int(row.getColumn(13));
    s.start_seq = static_cast<Seq>(row.getColumn(14).getInt64());
    s.last_seq = static_cast<Seq>(row.getColumn(15).getInt64());
    return s;
}

// Fills a page of rows from a bound statement with `read`.
template <typename Row>
std::vector<Row> rows_page(sql::Statement& statement, const Page& page, Row (*read)(sql::Statement&)) {
    std::vector<Row> rows;
    read_page(rows, page, [&](auto& out) {
        if (!statement.executeStep()) return false;
        out.push_back(read(statement));
        return true;
    });
    return rows;
}

// A seq bound that is above every seq.
constexpr std::int64_t k_past_every_seq = std::numeric_limits<std::int64_t>::max();

std::vector<std::string> first_column(sql::Statement& statement) {
    std::vector<std::string> values;
    while (statement.executeStep()) values.push_back(statement.getColumn(0).getString());
    return values;
}

}  // namespace

SqlWorkflowQueries::SqlWorkflowQueries(sql::Connection& db)
    : m_workflow(db, std::string(k_workflow_columns) + " WHERE id = ?"),
      m_workflow_by_name(db, std::string(k_workflow_columns) +
                                 " WHERE name = ?1 AND owner_type = ?2 AND COALESCE(owner_bot_id, '') = ?3"),
      m_workflows(db, std::string(k_workflow_columns) +
                          " WHERE (CAST(?1 AS TEXT) IS NULL OR owner_type = ?1) AND (CAST(?2 AS TEXT) IS NULL OR owner_bot_id = ?2)"
                          " AND (?3 OR archived_at IS NULL)"
                          " AND (name, owner_type, COALESCE(owner_bot_id, '')) > (?4, ?5, ?6)"
                          " ORDER BY name, owner_type, COALESCE(owner_bot_id, '') LIMIT ?7"),
      m_workflow_has_runs(db, "SELECT 1 FROM workflow_runs WHERE workflow_id = ? LIMIT 1"),
      m_run(db, std::string(k_run_columns) + " WHERE id = ?"),
      m_runs(db, std::string(k_run_columns) +
                     " WHERE (CAST(?1 AS TEXT) IS NULL OR workflow_id = ?1) AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) AND start_seq < ?4"
                     " ORDER BY start_seq DESC LIMIT ?3"),
      m_crashed_runs(db, std::string(k_run_columns) +
                             " WHERE status = 'crashed' AND start_seq < ?1 ORDER BY start_seq DESC LIMIT ?2"),
      m_running_run_ids(db, "SELECT id FROM workflow_runs WHERE status = 'running' ORDER BY id"),
      m_steps(db, std::string(k_step_columns) + " WHERE run_id = ?1 AND start_seq > ?2 ORDER BY start_seq LIMIT ?3"),
      m_latest_attempt(db, std::string(k_step_columns) +
                               " WHERE run_id = ?1 AND step_id = ?2 ORDER BY attempt DESC LIMIT 1"),
      m_completed_steps(db, std::string("SELECT step_id, start_seq FROM workflow_steps") + k_latest_attempts +
                                " AND status IN ('completed', 'skipped') AND start_seq > ?2 ORDER BY start_seq LIMIT ?3"),
      m_running_attempt_ids(db,
                            "SELECT id FROM workflow_steps WHERE run_id = ? AND status = 'running' ORDER BY start_seq"),
      m_leases(db) {
}

std::optional<WorkflowRow> SqlWorkflowQueries::workflow(const std::string& id) {
    ResetOnExit reset{m_workflow};
    m_workflow.bind(1, id);
    if (!m_workflow.executeStep()) return std::nullopt;
    return read_workflow(m_workflow);
}

std::optional<WorkflowRow> SqlWorkflowQueries::workflow_by_name(const std::string& name, const std::string& owner_type,
                                                             const std::optional<std::string>& owner_bot) {
    ResetOnExit reset{m_workflow_by_name};
    m_workflow_by_name.bind(1, name);
    m_workflow_by_name.bind(2, owner_type);
    m_workflow_by_name.bind(3, owner_type == "bot" ? owner_bot.value_or("") : std::string());
    if (!m_workflow_by_name.executeStep()) return std::nullopt;
    return read_workflow(m_workflow_by_name);
}

std::vector<WorkflowRow> SqlWorkflowQueries::workflows(const WorkflowFilter& filter, const Page& page) {
    ResetOnExit reset{m_workflows};
    bind_optional(m_workflows, 1, filter.owner_type);
    bind_optional(m_workflows, 2, filter.owner_bot);
    m_workflows.bind(3, filter.include_archived ? 1 : 0);
    const auto after = filter.after.value_or(WorkflowKey{});  // ("", "", "") is below every workflow
    m_workflows.bind(4, after.name);
    m_workflows.bind(5, after.owner_type);
    m_workflows.bind(6, after.owner_bot);
    m_workflows.bind(7, to_sql_int(page.limit));
    return rows_page(m_workflows, page, read_workflow);
}

bool SqlWorkflowQueries::workflow_has_runs(const std::string& workflow_id) {
    ResetOnExit reset{m_workflow_has_runs};
    m_workflow_has_runs.bind(1, workflow_id);
    return m_workflow_has_runs.executeStep();
}

std::optional<RunRow> SqlWorkflowQueries::run(const std::string& id) {
    ResetOnExit reset{m_run};
    m_run.bind(1, id);
    if (!m_run.executeStep()) return std::nullopt;
    return read_run(m_run);
}

std::vector<RunRow> SqlWorkflowQueries::runs(const RunFilter& filter, const Page& page) {
    ResetOnExit reset{m_runs};
    bind_optional(m_runs, 1, filter.workflow_id);
    bind_optional(m_runs, 2, filter.status);
    m_runs.bind(3, to_sql_int(page.limit));
    m_runs.bind(4, filter.before ? to_sql_int(*filter.before) : k_past_every_seq);
    return rows_page(m_runs, page, read_run);
}

std::vector<RunRow> SqlWorkflowQueries::crashed_runs(std::optional<Seq> before, const Page& page) {
    ResetOnExit reset{m_crashed_runs};
    m_crashed_runs.bind(1, before ? to_sql_int(*before) : k_past_every_seq);
    m_crashed_runs.bind(2, to_sql_int(page.limit));
    return rows_page(m_crashed_runs, page, read_run);
}

std::vector<std::string> SqlWorkflowQueries::running_run_ids() {
    ResetOnExit reset{m_running_run_ids};
    return first_column(m_running_run_ids);
}

std::vector<StepRow> SqlWorkflowQueries::steps(const std::string& run_id, Seq after, const Page& page) {
    ResetOnExit reset{m_steps};
    m_steps.bind(1, run_id);
    m_steps.bind(2, to_sql_int(after));
    m_steps.bind(3, to_sql_int(page.limit));
    return rows_page(m_steps, page, read_step);
}

std::optional<StepRow> SqlWorkflowQueries::latest_attempt(const std::string& run_id, const std::string& step_id) {
    ResetOnExit reset{m_latest_attempt};
    m_latest_attempt.bind(1, run_id);
    m_latest_attempt.bind(2, step_id);
    if (!m_latest_attempt.executeStep()) return std::nullopt;
    return read_step(m_latest_attempt);
}

std::vector<CompletedStep> SqlWorkflowQueries::completed_steps(const std::string& run_id, Seq after,
                                                                   const Page& page) {
    ResetOnExit reset{m_completed_steps};
    m_completed_steps.bind(1, run_id);
    m_completed_steps.bind(2, to_sql_int(after));
    m_completed_steps.bind(3, to_sql_int(page.limit));
    return rows_page(m_completed_steps, page, +[](sql::Statement& row) {
        return CompletedStep{row.getColumn(0).getString(), static_cast<Seq>(row.getColumn(1).getInt64())};
    });
}

std::vector<std::string> SqlWorkflowQueries::running_attempt_ids(const std::string& run_id) {
    ResetOnExit reset{m_running_attempt_ids};
    m_running_attempt_ids.bind(1, run_id);
    return first_column(m_running_attempt_ids);
}

}  // namespace botbus::store
