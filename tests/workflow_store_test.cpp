// Unit tests of the workflow projections in the store: the events applied by
// the Projector, the schema's rules, and the rebuild/compare tools.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <optional>
#include <string>
#include <vector>

#include "store/sqlite/rebuild.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/workflow_payloads.hpp"
#include "store/workflow_queries.hpp"

namespace store = botbus::store;

namespace {

class WorkflowProjections : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};
    store::WorkflowQueries& m_queries = m_store.workflows();

    template <typename Payload>
    store::Appended append(std::string stream, store::EventType type, const Payload& payload,
                           std::string producer = "exec") {
        auto batch = m_store.begin();
        const auto appended = batch.append(
            {std::move(stream), type, std::move(producer), std::nullopt, store::encode_payload(payload)});
        batch.commit();
        return appended;
    }

    void put_workflow(const std::string& id, const std::string& name, const std::string& definition,
                      std::optional<std::string> owner_bot = std::nullopt) {
        append(store::stream::workflow(id), store::EventType::workflow_put,
               store::WorkflowPut{id, name, owner_bot ? "bot" : "global", owner_bot, definition, true});
    }

    std::vector<std::string> completed_ids(const std::string& run_id) {
        std::vector<std::string> ids;
        for (const auto& step : m_queries.completed_steps(run_id, 0, {})) ids.push_back(step.step_id);
        return ids;
    }

    void start_run(const std::string& id, const std::string& workflow_id) {
        append(store::stream::run(id), store::EventType::run_started,
               store::RunStarted{id, workflow_id, "deploy", "running", "manual", std::nullopt, "{}", std::nullopt,
                                 "exec"});
    }
};

TEST_F(WorkflowProjections, WorkflowPutInsertsThenReplacesKeepingCreatedAt) {
    put_workflow("wf-1", "deploy", R"({"name":"deploy","steps":[{"id":"a"}]})");
    const auto first = m_queries.workflow("wf-1");
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->name, "deploy");
    EXPECT_EQ(first->owner_type, "global");
    EXPECT_FALSE(first->owner_bot.has_value());
    EXPECT_EQ(first->created_at, first->updated_at);

    const auto replaced =
        append(store::stream::workflow("wf-1"), store::EventType::workflow_put,
               store::WorkflowPut{"wf-1", "deploy", "global", std::nullopt, R"({"name":"deploy","steps":[]})", false});
    const auto second = m_queries.workflow("wf-1");
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->definition, R"({"name":"deploy","steps":[]})");
    EXPECT_EQ(second->created_at, first->created_at);
    EXPECT_EQ(second->updated_at, replaced.ts_us);
    EXPECT_EQ(second->last_seq, replaced.seq);
}

TEST_F(WorkflowProjections, NameIsUniquePerOwnerInTheSchema) {
    put_workflow("wf-1", "deploy", "{}");
    put_workflow("wf-2", "deploy", "{}", "alice");
    put_workflow("wf-3", "deploy", "{}", "bob");
    EXPECT_EQ(m_queries.workflow_by_name("deploy", "bot", "bob")->id, "wf-3");
    EXPECT_EQ(m_queries.workflow_by_name("deploy", "global", std::nullopt)->id, "wf-1");
    // The handler checks first; the index is the backstop.
    EXPECT_THROW(put_workflow("wf-4", "deploy", "{}", "alice"), SQLite::Exception);
    EXPECT_FALSE(m_queries.workflow("wf-4").has_value());
}

TEST_F(WorkflowProjections, RunAndStepEventsMoveTheRows) {
    put_workflow("wf-1", "deploy", "{}");
    start_run("r1", "wf-1");
    append(store::stream::run("r1"), store::EventType::step_started,
           store::StepStarted{"r1", "a", "Step A", 1, R"({"x":1})"});
    append(store::stream::run("r1"), store::EventType::step_failed, store::StepFailed{"r1", "a", 1, "boom", true});
    append(store::stream::run("r1"), store::EventType::step_started,
           store::StepStarted{"r1", "a", "Step A", 2, std::nullopt});
    append(store::stream::run("r1"), store::EventType::step_completed,
           store::StepCompleted{"r1", "a", 2, R"({"y":2})"});
    append(store::stream::run("r1"), store::EventType::step_skipped,
           store::StepSkipped{"r1", "b", std::nullopt, 1, "not needed"});
    append(store::stream::run("r1"), store::EventType::step_started,
           store::StepStarted{"r1", "c", std::nullopt, 1, std::nullopt});
    append(store::stream::run("r1"), store::EventType::step_waiting_approval, store::StepRef{"r1", "c", 1});
    EXPECT_EQ(completed_ids("r1"), (std::vector<std::string>{"a", "b"}));
    append(store::stream::run("r1"), store::EventType::step_approved, store::StepApproved{"r1", "c", 1, "boss"});
    EXPECT_EQ(completed_ids("r1"), (std::vector<std::string>{"a", "b", "c"}));

    const auto steps = m_queries.steps("r1", 0, {});
    ASSERT_EQ(steps.size(), 4U);
    EXPECT_EQ(steps[0].id, "r1:a:1");
    EXPECT_EQ(steps[0].status, "failed");
    EXPECT_EQ(steps[0].error, std::optional<std::string>("boom"));
    EXPECT_TRUE(steps[0].will_retry);
    EXPECT_EQ(steps[1].id, "r1:a:2");
    EXPECT_EQ(steps[1].output, std::optional<std::string>(R"({"y":2})"));
    EXPECT_EQ(steps[2].status, "skipped");
    EXPECT_EQ(steps[2].skip_reason, std::optional<std::string>("not needed"));
    EXPECT_EQ(steps[3].approved_by, std::optional<std::string>("boss"));
    EXPECT_EQ(steps[3].status, "completed");

    append(store::stream::run("r1"), store::EventType::run_crashed,
           store::RunCrashed{"r1", {"r1:c:1"}, "exec"}, "botbusd");
    auto run = m_queries.run("r1");
    EXPECT_EQ(run->status, "crashed");
    EXPECT_FALSE(run->lease_owner.has_value());
    EXPECT_EQ(m_queries.crashed_runs(std::nullopt, {}).size(), 1U);
    append(store::stream::run("r1"), store::EventType::run_resumed, store::RunResumed{"r1", "rescuer"});
    append(store::stream::run("r1"), store::EventType::run_context, store::RunContext{"r1", R"({"k":1})"});
    append(store::stream::run("r1"), store::EventType::run_cancel_requested, store::RunRef{"r1"});
    run = m_queries.run("r1");
    EXPECT_EQ(run->status, "running");
    EXPECT_EQ(run->lease_owner, std::optional<std::string>("rescuer"));
    EXPECT_EQ(run->context, R"({"k":1})");
    EXPECT_TRUE(run->cancel_requested);
    EXPECT_FALSE(run->completed_at.has_value());
    const auto done = append(store::stream::run("r1"), store::EventType::run_completed,
                             store::RunCompleted{"r1", std::nullopt});
    run = m_queries.run("r1");
    EXPECT_EQ(run->status, "completed");
    EXPECT_EQ(run->context, R"({"k":1})");  // no final context: the checkpoint stays
    EXPECT_EQ(run->completed_at, std::optional<std::int64_t>(done.ts_us));
    EXPECT_EQ(run->last_seq, done.seq);
    EXPECT_TRUE(m_queries.workflow_has_runs("wf-1"));
}

TEST_F(WorkflowProjections, RebuildFromTheLogGivesIdenticalRows) {
    put_workflow("wf-1", "deploy", "{}");
    start_run("r1", "wf-1");
    append(store::stream::run("r1"), store::EventType::step_started,
           store::StepStarted{"r1", "a", std::nullopt, 1, std::nullopt});
    append(store::stream::run("r1"), store::EventType::run_paused, store::RunRef{"r1"});
    put_workflow("wf-2", "gone", "{}");
    append(store::stream::workflow("wf-2"), store::EventType::workflow_deleted, store::WorkflowRef{"wf-2"});

    SQLite::Database rebuilt(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    EXPECT_EQ(store::rebuild_projections(m_store, rebuilt), 6U);
    EXPECT_TRUE(store::compare_projections(m_store.database(), rebuilt).empty());
}

TEST_F(WorkflowProjections, CompareReportsTheTableRowAndColumnThatDiffer) {
    put_workflow("wf-1", "deploy", "{}");
    start_run("r1", "wf-1");
    SQLite::Database rebuilt(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    store::rebuild_projections(m_store, rebuilt);
    rebuilt.exec("UPDATE workflow_runs SET status = 'paused'");
    rebuilt.exec("DELETE FROM workflows");
    const auto differences = store::compare_projections(m_store.database(), rebuilt);
    ASSERT_EQ(differences.size(), 2U);
    EXPECT_NE(differences[0].find("workflows"), std::string::npos) << differences[0];
    EXPECT_NE(differences[0].find("only live"), std::string::npos) << differences[0];
    EXPECT_NE(differences[1].find("workflow_runs"), std::string::npos) << differences[1];
    EXPECT_NE(differences[1].find("status"), std::string::npos) << differences[1];
    EXPECT_NE(differences[1].find("'paused'"), std::string::npos) << differences[1];
}

}  // namespace
