// Unit tests of the workflow ops through bus::CommandHandler on a :memory:
// store: the seed's WorkflowRepository behaviours, then the rules the log
// adds (the run and step state machine, idempotent starts, approvals,
// cancels, leases), and a seeded random lifecycle whose rebuilt projections
// must equal the live ones. Time is a fake clock; nothing sleeps.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bus/protocol/codec.hpp"
#include "bus/core/handler.hpp"
#include "bus/core/workflow_handler.hpp"
#include "store/sqlite/rebuild.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "handler_support.hpp"
#include "store/workflow_payloads.hpp"

using namespace botbus::bus;
namespace store = botbus::store;
using nlohmann::json;

namespace {

constexpr std::int64_t k_lease = 10'000'000;  // 10 s
constexpr std::int64_t k_start = 1'700'000'000'000'000;

using botbus::testing::as;
using botbus::testing::k_anonymous;

PackedValue packed(const json& value) {
    const auto bytes = json::to_msgpack(value);
    return PackedValue{std::string(bytes.begin(), bytes.end())};
}

json deploy_definition(const std::string& name = "deploy") {
    return json{{"name", name},
                {"steps",
                 {{{"id", "build"}, {"name", "Build"}},
                  {{"id", "test"}, {"depends_on", {"build"}}},
                  {{"id", "gate"}, {"name", "Approval gate"}, {"depends_on", {"test"}}},
                  {{"id", "ship"}, {"depends_on", {"gate"}}}}}};
}

class WorkflowTest : public ::testing::Test {
protected:
    std::int64_t m_now = k_start;
    store::SqliteStore m_store{{":memory:", store::Durability::full}};
    ServerCounters m_counters;
    CommandHandler m_handler{m_store, m_counters, WorkflowOptions{k_lease, [this] { return m_now; }}};

    Reply call(const Session& session, Request request) {
        return botbus::testing::call_in_batch(m_handler, m_store, session, std::move(request));
    }

    // The request must succeed; returns the reply as JSON.
    json ok(const Session& session, Request request) {
        const auto op = op_of(request);
        const auto reply = call(session, std::move(request));
        EXPECT_TRUE(reply.ok) << op_name(op) << " failed: " << reply.error_name << ": " << reply.message;
        return as_json(reply);
    }

    // The request must fail with `code`, say `message_part`, and append nothing.
    void expect_error(const Session& session, Request request, Errc code, const std::string& message_part = {}) {
        const auto op = op_of(request);
        const auto before = event_count();
        const auto reply = call(session, std::move(request));
        EXPECT_FALSE(reply.ok) << op_name(op) << " should have failed";
        EXPECT_EQ(reply.error_name, errc_name(code)) << op_name(op) << ": " << reply.message;
        EXPECT_FALSE(reply.message.empty());
        if (!message_part.empty()) {
            EXPECT_NE(reply.message.find(message_part), std::string::npos)
                << "'" << reply.message << "' should mention '" << message_part << "'";
        }
        EXPECT_EQ(event_count(), before) << op_name(op) << " appended events although it failed";
    }

    static json as_json(const Reply& reply) {
        msgpack::sbuffer buffer;
        msgpack::pack(buffer, reply.handle.get());
        return json::from_msgpack(std::string(buffer.data(), buffer.size()));
    }

    std::int64_t event_count() { return m_store.stats().event_count; }
    std::vector<std::string> event_types_after(store::Seq after) {
        std::vector<std::string> types;
        for (const auto& e : m_store.read_range(after, 1000)) types.emplace_back(store::event_type_name(e.type));
        return types;
    }

    std::string put(const json& definition, const std::string& by = "alice",
                    std::optional<std::string> owner_bot = std::nullopt, bool replace = false) {
        WorkflowPutRequest r{packed(definition), std::nullopt, owner_bot, std::nullopt};
        if (owner_bot) r.owner_type = "bot";
        if (replace) r.replace = true;
        return ok(as(by), r).value("workflow_id", "");
    }
    std::string start(const std::string& workflow_id, const std::string& by = "exec",
                      std::optional<std::string> run_id = std::nullopt, std::optional<std::string> status = std::nullopt) {
        RunStartRequest r;
        r.workflow_id = workflow_id;
        r.run_id = std::move(run_id);
        r.status = std::move(status);
        return ok(as(by), r).value("run_id", "");
    }
    json run(const std::string& run_id) { return ok(k_anonymous, RunGetRequest{run_id})["run"]; }
    json steps(const std::string& run_id) { return ok(k_anonymous, RunStepsRequest{run_id})["steps"]; }
    std::vector<std::string> completed_steps(const std::string& run_id) {
        return ok(k_anonymous, RunCompletedStepsRequest{run_id})["step_ids"].get<std::vector<std::string>>();
    }
    std::vector<std::string> run_ids(RunListRequest request) {
        std::vector<std::string> ids;
        const auto reply = ok(k_anonymous, std::move(request));
        for (const auto& r : reply["runs"]) ids.push_back(r["id"].get<std::string>());
        return ids;
    }
    std::vector<std::string> workflow_names(WorkflowListRequest request) {
        std::vector<std::string> names;
        const auto reply = ok(k_anonymous, std::move(request));
        for (const auto& w : reply["workflows"]) {
            names.push_back(w["name"].get<std::string>() + "/" + (w["owner_bot"].is_null() ? "" : w["owner_bot"].get<std::string>()));
        }
        return names;
    }
    json step_start(const std::string& run_id, const std::string& step_id, const std::string& by = "exec",
                    std::optional<json> input = std::nullopt) {
        StepStartRequest r;
        r.run_id = run_id;
        r.step_id = step_id;
        if (input) r.input = packed(*input);
        return ok(as(by), r);
    }
    json step_complete(const std::string& run_id, const std::string& step_id, std::optional<json> output = std::nullopt,
                       const std::string& by = "exec") {
        StepCompleteRequest r{run_id, step_id, std::nullopt};
        if (output) r.output = packed(*output);
        return ok(as(by), r);
    }
};

// ---- the seed's WorkflowRepository behaviours

using WorkflowRepository = WorkflowTest;

TEST_F(WorkflowRepository, SavesADefinitionAndGetsItBackWhole) {
    auto definition = deploy_definition();
    definition["timeout_s"] = 30;
    definition["labels"] = {{"team", "infra"}};
    const auto id = put(definition);
    EXPECT_FALSE(id.empty());

    const auto w = ok(k_anonymous, WorkflowGetRequest{id, std::nullopt, std::nullopt, std::nullopt})["workflow"];
    EXPECT_EQ(w["id"], id);
    EXPECT_EQ(w["name"], "deploy");
    EXPECT_EQ(w["owner_type"], "global");
    EXPECT_TRUE(w["owner_bot"].is_null());
    EXPECT_EQ(w["definition"], definition);
    EXPECT_EQ(w["created_at"], w["updated_at"]);
    EXPECT_GT(w["created_at"].get<std::int64_t>(), 0);
    EXPECT_FALSE(w["archived"].get<bool>());
}

TEST_F(WorkflowRepository, UpsertWithReplaceUpdatesTheDefinitionUnderTheSameId) {
    const auto id = put(deploy_definition());
    const auto first = ok(k_anonymous, WorkflowGetRequest{id, std::nullopt, std::nullopt, std::nullopt})["workflow"];

    auto changed = deploy_definition();
    changed["steps"].push_back({{"id", "notify"}, {"depends_on", {"ship"}}});
    const auto reply = ok(as("alice"), WorkflowPutRequest{packed(changed), std::nullopt, std::nullopt, true});
    EXPECT_EQ(reply["workflow_id"], id);
    EXPECT_FALSE(reply["created"].get<bool>());
    EXPECT_TRUE(reply["changed"].get<bool>());

    const auto w = ok(k_anonymous, WorkflowGetRequest{id, std::nullopt, std::nullopt, std::nullopt})["workflow"];
    EXPECT_EQ(w["definition"], changed);
    EXPECT_EQ(w["created_at"], first["created_at"]);
    EXPECT_GE(w["updated_at"].get<std::int64_t>(), first["updated_at"].get<std::int64_t>());

    // Putting the same definition again changes nothing and appends nothing.
    const auto before = event_count();
    const auto same = ok(as("alice"), WorkflowPutRequest{packed(changed), std::nullopt, std::nullopt, std::nullopt});
    EXPECT_FALSE(same["changed"].get<bool>());
    EXPECT_EQ(same["workflow_id"], id);
    EXPECT_EQ(event_count(), before);
}

TEST_F(WorkflowRepository, GetsByNameAndOwner) {
    const auto global = put(deploy_definition());
    const auto alices = put(deploy_definition(), "alice", "alice");
    ASSERT_NE(global, alices);
    EXPECT_EQ(ok(k_anonymous, WorkflowGetRequest{std::nullopt, "deploy", std::nullopt, std::nullopt})["workflow"]["id"],
              global);
    const auto w = ok(k_anonymous, WorkflowGetRequest{std::nullopt, "deploy", "bot", "alice"})["workflow"];
    EXPECT_EQ(w["id"], alices);
    EXPECT_EQ(w["owner_type"], "bot");
    EXPECT_EQ(w["owner_bot"], "alice");
    expect_error(k_anonymous, WorkflowGetRequest{std::nullopt, "deploy", "bot", "bob"}, Errc::not_found, "deploy");
    expect_error(k_anonymous, WorkflowGetRequest{"wf-404", std::nullopt, std::nullopt, std::nullopt}, Errc::not_found);
}

TEST_F(WorkflowRepository, ListsAllWorkflowsOrderedByName) {
    put(deploy_definition("zeta"));
    put(deploy_definition("alpha"), "bob", "bob");
    put(deploy_definition("mid"));
    EXPECT_EQ(workflow_names({}), (std::vector<std::string>{"alpha/bob", "mid/", "zeta/"}));
}

TEST_F(WorkflowRepository, ListsWorkflowsByOwner) {
    put(deploy_definition("zeta"));
    put(deploy_definition("beta"), "bob", "bob");
    put(deploy_definition("alpha"), "bob", "bob");
    put(deploy_definition("gamma"), "carol", "carol");
    EXPECT_EQ(workflow_names({"bot", "bob", std::nullopt}), (std::vector<std::string>{"alpha/bob", "beta/bob"}));
    EXPECT_EQ(workflow_names({std::nullopt, "carol", std::nullopt}), (std::vector<std::string>{"gamma/carol"}));
    EXPECT_EQ(workflow_names({"global", std::nullopt, std::nullopt}), (std::vector<std::string>{"zeta/"}));
    EXPECT_EQ(workflow_names({"bot", std::nullopt, std::nullopt}),
              (std::vector<std::string>{"alpha/bob", "beta/bob", "gamma/carol"}));
}

TEST_F(WorkflowRepository, DeletesAWorkflowWithoutRuns) {
    const auto id = put(deploy_definition());
    const auto before = m_store.last_seq();
    const auto reply = ok(as("alice"), WorkflowDeleteRequest{id, std::nullopt});
    EXPECT_TRUE(reply["deleted"].get<bool>());
    EXPECT_EQ(event_types_after(before), (std::vector<std::string>{"workflow.deleted"}));
    expect_error(k_anonymous, WorkflowGetRequest{id, std::nullopt, std::nullopt, std::nullopt}, Errc::not_found);
    EXPECT_TRUE(workflow_names({}).empty());
    expect_error(as("alice"), WorkflowDeleteRequest{id, std::nullopt}, Errc::not_found);
}

TEST_F(WorkflowRepository, CreatesAndGetsARun) {
    const auto wf = put(deploy_definition());
    RunStartRequest r;
    r.workflow_id = wf;
    r.trigger_type = "webhook";
    r.trigger_payload = packed({{"ref", "main"}});
    r.context = packed({{"env", "prod"}});
    r.concurrency_key = "deploy-prod";
    const auto started = ok(as("exec"), r);
    EXPECT_FALSE(started["duplicate"].get<bool>());
    EXPECT_EQ(started["status"], "running");
    EXPECT_EQ(started["lease_expires_at"], k_start + k_lease);
    const auto id = started["run_id"].get<std::string>();
    EXPECT_EQ(id, "run-" + std::to_string(started["seq"].get<std::uint64_t>()));

    const auto got = run(id);
    EXPECT_EQ(got["id"], id);
    EXPECT_EQ(got["workflow_id"], wf);
    EXPECT_EQ(got["workflow_name"], "deploy");
    EXPECT_EQ(got["status"], "running");
    EXPECT_EQ(got["trigger_type"], "webhook");
    EXPECT_EQ(got["trigger_payload"], (json{{"ref", "main"}}));
    EXPECT_EQ(got["context"], (json{{"env", "prod"}}));
    EXPECT_GT(got["started_at"].get<std::int64_t>(), 0);
    EXPECT_TRUE(got["completed_at"].is_null());
    EXPECT_TRUE(got["error"].is_null());
    EXPECT_EQ(got["concurrency_key"], "deploy-prod");
    EXPECT_EQ(got["lease_owner"], "exec");
    EXPECT_FALSE(got["cancel_requested"].get<bool>());

    const auto defaults = run(start(wf));
    EXPECT_EQ(defaults["trigger_type"], "manual");
    EXPECT_TRUE(defaults["trigger_payload"].is_null());
    EXPECT_EQ(defaults["context"], json::object());
    expect_error(k_anonymous, RunGetRequest{"run-404"}, Errc::not_found, "run-404");
}

TEST_F(WorkflowRepository, CompletedRunKeepsItsFinalContext) {
    const auto id = start(put(deploy_definition()));
    ok(as("exec"), RunCheckpointRequest{id, packed({{"progress", 1}})});
    EXPECT_EQ(run(id)["context"], (json{{"progress", 1}}));
    ok(as("exec"), RunCompleteRequest{id, packed({{"result", "shipped"}, {"n", 3}})});
    const auto got = run(id);
    EXPECT_EQ(got["status"], "completed");
    EXPECT_EQ(got["context"], (json{{"result", "shipped"}, {"n", 3}}));
    EXPECT_FALSE(got["completed_at"].is_null());
    EXPECT_TRUE(got["lease_owner"].is_null());
}

TEST_F(WorkflowRepository, FailedRunKeepsItsError) {
    const auto id = start(put(deploy_definition()));
    ok(as("exec"), RunFailRequest{id, "disk full"});
    const auto got = run(id);
    EXPECT_EQ(got["status"], "failed");
    EXPECT_EQ(got["error"], "disk full");
    EXPECT_FALSE(got["completed_at"].is_null());
}

TEST_F(WorkflowRepository, ListsRunsNewestFirstByWorkflowAndStatus) {
    const auto a = put(deploy_definition("a"));
    const auto b = put(deploy_definition("b"));
    const auto r1 = start(a);
    const auto r2 = start(b);
    const auto r3 = start(a, "exec", std::nullopt, "pending");
    const auto r4 = start(a);
    ok(as("exec"), RunCompleteRequest{r4, std::nullopt});
    EXPECT_EQ(run_ids({}), (std::vector<std::string>{r4, r3, r2, r1}));
    EXPECT_EQ(run_ids({a, std::nullopt, std::nullopt}), (std::vector<std::string>{r4, r3, r1}));
    EXPECT_EQ(run_ids({a, "running", std::nullopt}), (std::vector<std::string>{r1}));
    EXPECT_EQ(run_ids({std::nullopt, "pending", std::nullopt}), (std::vector<std::string>{r3}));
    EXPECT_EQ(run_ids({std::nullopt, std::nullopt, 2}), (std::vector<std::string>{r4, r3}));
    expect_error(k_anonymous, RunListRequest{std::nullopt, "sleeping", std::nullopt}, Errc::invalid_field);
    expect_error(k_anonymous, RunListRequest{std::nullopt, std::nullopt, 0}, Errc::invalid_field);
    expect_error(k_anonymous, RunListRequest{std::nullopt, std::nullopt, 1001}, Errc::invalid_field);
}

TEST_F(WorkflowRepository, CrashedRunQueryListsRunsWhoseLeaseExpired) {
    const auto wf = put(deploy_definition());
    const auto crashed = start(wf);
    const auto paused = start(wf);
    ok(as("exec"), RunPauseRequest{paused});
    EXPECT_TRUE(ok(k_anonymous, RunCrashedRequest{})["runs"].empty());

    m_now += k_lease;
    const auto fresh = start(wf);  // its lease runs from the new now
    auto batch = m_store.begin();
    EXPECT_EQ(m_handler.expire_leases(batch, m_now), 1U);
    batch.commit();
    const auto runs = ok(k_anonymous, RunCrashedRequest{})["runs"];
    ASSERT_EQ(runs.size(), 1U);
    EXPECT_EQ(runs[0]["id"], crashed);
    EXPECT_EQ(runs[0]["status"], "crashed");
    EXPECT_EQ(run(fresh)["status"], "running");
    EXPECT_EQ(run(paused)["status"], "paused");
}

TEST_F(WorkflowRepository, CreatesAndListsStepLogsInStartOrder) {
    const auto id = start(put(deploy_definition()));
    const auto build = step_start(id, "build", "exec", json{{"target", "x86"}});
    EXPECT_EQ(build["attempt"], 1);
    EXPECT_EQ(build["attempt_id"], id + ":build:1");
    step_complete(id, "build");
    step_start(id, "test");
    const auto list = steps(id);
    ASSERT_EQ(list.size(), 2U);
    EXPECT_EQ(list[0]["id"], id + ":build:1");
    EXPECT_EQ(list[0]["idempotency_key"], id + ":build:1");
    EXPECT_EQ(list[0]["run_id"], id);
    EXPECT_EQ(list[0]["step_id"], "build");
    EXPECT_EQ(list[0]["step_name"], "Build");  // from the definition
    EXPECT_EQ(list[0]["status"], "completed");
    EXPECT_EQ(list[0]["input"], (json{{"target", "x86"}}));
    EXPECT_EQ(list[1]["step_id"], "test");
    EXPECT_TRUE(list[1]["step_name"].is_null());
    EXPECT_EQ(list[1]["status"], "running");
    EXPECT_TRUE(list[1]["completed_at"].is_null());
    EXPECT_LT(list[0]["start_seq"].get<std::uint64_t>(), list[1]["start_seq"].get<std::uint64_t>());
}

TEST_F(WorkflowRepository, CompletedStepKeepsItsOutput) {
    const auto id = start(put(deploy_definition()));
    step_start(id, "build");
    step_complete(id, "build", json{{"artifact", "app.tar"}, {"bytes", 1024}});
    const auto list = steps(id);
    ASSERT_EQ(list.size(), 1U);
    EXPECT_EQ(list[0]["status"], "completed");
    EXPECT_EQ(list[0]["output"], (json{{"artifact", "app.tar"}, {"bytes", 1024}}));
    EXPECT_FALSE(list[0]["completed_at"].is_null());
}

TEST_F(WorkflowRepository, CompletedStepIdsAreTheLatestCompletedOrSkippedAttempts) {
    const auto id = start(put(deploy_definition()));
    step_start(id, "build");
    step_complete(id, "build");
    step_start(id, "test");
    ok(as("exec"), StepFailRequest{id, "test", "flaky", true});
    ok(as("exec"), StepSkipRequest{id, "gate", "no approval needed"});
    step_start(id, "ship");
    EXPECT_EQ(completed_steps(id), (std::vector<std::string>{"build", "gate"}));
    step_start(id, "test");
    step_complete(id, "test");
    EXPECT_EQ(completed_steps(id), (std::vector<std::string>{"build", "gate", "test"}));
}

// ---- definitions: owners and validation

TEST_F(WorkflowTest, NameIsUniquePerOwnerAndADifferentDefinitionIsAConflict) {
    const auto global = put(deploy_definition());
    const auto bob = put(deploy_definition(), "bob", "bob");
    const auto carol = put(deploy_definition(), "carol", "carol");
    EXPECT_NE(global, bob);
    EXPECT_NE(bob, carol);

    auto other = deploy_definition();
    other["steps"].erase(3);
    expect_error(as("bob"), WorkflowPutRequest{packed(other), "bot", "bob", std::nullopt}, Errc::conflict, "replace");
    expect_error(as("bob"), WorkflowPutRequest{packed(other), std::nullopt, std::nullopt, false}, Errc::conflict);
    // A client-chosen id that another workflow holds is a conflict too.
    auto with_id = deploy_definition("other");
    with_id["id"] = bob;
    expect_error(as("bob"), WorkflowPutRequest{packed(with_id), std::nullopt, std::nullopt, std::nullopt},
                 Errc::conflict, bob);
    with_id["id"] = "my-flow";
    EXPECT_EQ(put(with_id), "my-flow");
    // Owner fields must agree with each other.
    expect_error(as("bob"), WorkflowPutRequest{packed(other), "bot", std::nullopt, std::nullopt}, Errc::missing_field);
    expect_error(as("bob"), WorkflowPutRequest{packed(other), "global", "bob", std::nullopt}, Errc::invalid_field);
    expect_error(as("bob"), WorkflowPutRequest{packed(other), "team", std::nullopt, std::nullopt}, Errc::invalid_field);
    expect_error(k_anonymous, WorkflowPutRequest{packed(other), std::nullopt, std::nullopt, std::nullopt},
                 Errc::not_identified);
}

TEST_F(WorkflowTest, DefinitionsBreakingARuleAreInvalidDefinitionsNamingTheProblem) {
    auto put_error = [this](const json& d, const std::string& part) {
        expect_error(as("alice"), WorkflowPutRequest{packed(d), std::nullopt, std::nullopt, std::nullopt},
                     Errc::invalid_definition, part);
    };
    json missing_name = deploy_definition();
    missing_name.erase("name");
    put_error(missing_name, "name");
    put_error(json{{"name", "x"}, {"steps", json::array()}}, "steps");
    put_error(json{{"name", "x"}}, "steps");
    put_error(json{{"name", "bad name"}, {"steps", {{{"id", "a"}}}}}, "name");
    put_error(json{{"name", "x"}, {"steps", {{{"id", "a"}}, {{"id", "a"}}}}}, "duplicate step id 'a'");
    put_error(json{{"name", "x"}, {"steps", {{{"id", "a"}, {"depends_on", {"nope"}}}}}}, "unknown step 'nope'");
    put_error(json{{"name", "x"},
                   {"steps",
                    {{{"id", "a"}, {"depends_on", {"c"}}},
                     {{"id", "b"}, {"depends_on", {"a"}}},
                     {{"id", "c"}, {"depends_on", {"b"}}}}}},
              "cycle: a -> c -> b -> a");
    put_error(json{{"name", "x"}, {"steps", {{{"id", "a"}, {"depends_on", {"a"}}}}}}, "a -> a");
    put_error(json{{"name", "x"}, {"steps", {{{"id", "a:b"}}}}}, "no ':'");
    put_error(json{{"name", "x"}, {"steps", {"a"}}}, "step 0");
    // Not a map, or not representable as JSON: a field error.
    expect_error(as("alice"), WorkflowPutRequest{pack_as_value(std::string("x")), std::nullopt, std::nullopt, std::nullopt},
                 Errc::invalid_field, "definition");
    std::map<int, int> int_keys{{1, 2}};
    expect_error(as("alice"), WorkflowPutRequest{pack_as_value(int_keys), std::nullopt, std::nullopt, std::nullopt},
                 Errc::invalid_field, "definition");
}

TEST_F(WorkflowTest, ValuesWithoutAJsonFormAreRejected) {
    const auto id = start(put(deploy_definition()));
    msgpack::sbuffer bin;
    msgpack::packer<msgpack::sbuffer>(bin).pack_bin(3).pack_bin_body("abc", 3);
    expect_error(as("exec"), RunCheckpointRequest{id, PackedValue{std::string(bin.data(), bin.size())}},
                 Errc::invalid_field, "binary");
    expect_error(as("exec"), RunCheckpointRequest{id, pack_as_value(std::numeric_limits<double>::infinity())},
                 Errc::invalid_field, "non-finite");
}

// ---- the state machine

TEST_F(WorkflowTest, IllegalTransitionsAreRefusedNamingTheStateAndAppendNothing) {
    const auto wf = put(deploy_definition());
    const auto id = start(wf);
    expect_error(as("exec"), StepCompleteRequest{id, "build", std::nullopt}, Errc::invalid_transition,
                 "never started");
    expect_error(as("exec"), StepStartRequest{"run-404", "build", std::nullopt, std::nullopt, std::nullopt},
                 Errc::not_found, "run-404");
    expect_error(as("exec"), StepStartRequest{id, "deploy-everything", std::nullopt, std::nullopt, std::nullopt},
                 Errc::not_found, "deploy-everything");
    expect_error(as("exec"), RunResumeRequest{id}, Errc::invalid_transition, "running");

    ok(as("exec"), RunPauseRequest{id});
    expect_error(as("exec"), RunPauseRequest{id}, Errc::invalid_transition, "is paused: cannot pause");
    expect_error(as("exec"), StepStartRequest{id, "build", std::nullopt, std::nullopt, std::nullopt},
                 Errc::invalid_transition, "paused");
    expect_error(as("exec"), RunCompleteRequest{id, std::nullopt}, Errc::invalid_transition, "paused");
    expect_error(as("exec"), RunHeartbeatRequest{id}, Errc::invalid_transition, "paused");

    ok(as("exec"), RunResumeRequest{id});
    step_start(id, "build");
    expect_error(as("exec"), StepStartRequest{id, "build", std::nullopt, std::nullopt, std::nullopt},
                 Errc::invalid_transition, "is running (attempt 1)");
    step_complete(id, "build");
    expect_error(as("exec"), StepStartRequest{id, "build", std::nullopt, std::nullopt, std::nullopt},
                 Errc::invalid_transition, "completed");
    expect_error(as("exec"), StepSkipRequest{id, "build", std::nullopt}, Errc::invalid_transition, "completed");
    expect_error(as("exec"), StepApproveRequest{id, "build"}, Errc::invalid_transition, "completed");

    ok(as("exec"), RunCompleteRequest{id, std::nullopt});
    const std::string finished = "run '" + id + "' is completed";
    expect_error(as("exec"), RunPauseRequest{id}, Errc::invalid_transition, finished);
    expect_error(as("exec"), RunResumeRequest{id}, Errc::invalid_transition, finished);
    expect_error(as("exec"), RunCompleteRequest{id, std::nullopt}, Errc::invalid_transition, finished);
    expect_error(as("exec"), RunFailRequest{id, "late"}, Errc::invalid_transition, finished);
    expect_error(as("exec"), RunCancelRequest{id}, Errc::invalid_transition, finished);
    expect_error(as("exec"), RunCheckpointRequest{id, packed(json::object())}, Errc::invalid_transition, finished);
    expect_error(as("exec"), StepStartRequest{id, "test", std::nullopt, std::nullopt, std::nullopt},
                 Errc::invalid_transition, finished);
    expect_error(as("exec"), RunPauseRequest{"run-404"}, Errc::not_found);
    expect_error(k_anonymous, RunPauseRequest{id}, Errc::not_identified);
}

TEST_F(WorkflowTest, RetriedStartWithTheSameRunIdReturnsTheRunAndAppendsNothing) {
    const auto wf = put(deploy_definition());
    const auto first = ok(as("exec"), RunStartRequest{wf, "nightly-42", std::nullopt, std::nullopt, std::nullopt,
                                                      std::nullopt, std::nullopt});
    EXPECT_EQ(first["run_id"], "nightly-42");
    EXPECT_FALSE(first["duplicate"].get<bool>());
    const auto before = event_count();
    const auto again = ok(as("exec"), RunStartRequest{wf, "nightly-42", std::nullopt, std::nullopt, std::nullopt,
                                                      std::nullopt, std::nullopt});
    EXPECT_TRUE(again["duplicate"].get<bool>());
    EXPECT_EQ(again["seq"], first["seq"]);
    EXPECT_EQ(again["status"], "running");
    EXPECT_EQ(event_count(), before);

    const auto other = put(deploy_definition("other"));
    expect_error(as("exec"), RunStartRequest{other, "nightly-42", std::nullopt, std::nullopt, std::nullopt,
                                             std::nullopt, std::nullopt},
                 Errc::conflict, wf);
}

TEST_F(WorkflowTest, PendingRunStartsWithoutALeaseAndResumeTakesIt) {
    const auto id = start(put(deploy_definition()), "scheduler", std::nullopt, "pending");
    EXPECT_TRUE(run(id)["lease_owner"].is_null());
    EXPECT_FALSE(m_handler.next_lease_expiry().has_value());
    const auto resumed = ok(as("exec"), RunResumeRequest{id});
    EXPECT_EQ(resumed["lease_owner"], "exec");
    EXPECT_EQ(run(id)["lease_owner"], "exec");
    EXPECT_EQ(m_handler.next_lease_expiry(), k_start + k_lease);
}

TEST_F(WorkflowTest, ApprovalMovesTheGateToCompletedSoAResumedRunSkipsIt) {
    auto definition = deploy_definition();
    definition["approvers"] = {"manager"};  // issue 12: approvals come from the bots the definition names
    const auto id = start(put(definition));
    step_start(id, "build");
    step_complete(id, "build");
    step_start(id, "test");
    step_complete(id, "test");
    step_start(id, "gate");
    ok(as("exec"), StepWaitApprovalRequest{id, "gate"});
    ok(as("exec"), RunPauseRequest{id});
    EXPECT_EQ(steps(id)[2]["status"], "waiting_approval");
    EXPECT_EQ(completed_steps(id), (std::vector<std::string>{"build", "test"}));

    const auto approved = ok(as("manager"), StepApproveRequest{id, "gate"});  // allowed while paused
    EXPECT_EQ(approved["approved_by"], "manager");
    expect_error(as("manager"), StepApproveRequest{id, "gate"}, Errc::invalid_transition, "completed");

    ok(as("exec"), RunResumeRequest{id});
    const auto skip_set = completed_steps(id);
    EXPECT_EQ(skip_set, (std::vector<std::string>{"build", "test", "gate"}));
    const auto gate = steps(id)[2];
    EXPECT_EQ(gate["status"], "completed");
    EXPECT_EQ(gate["approved_by"], "manager");
    // The resumed executor goes past the gate.
    step_start(id, "ship");
    step_complete(id, "ship");
    ok(as("exec"), RunCompleteRequest{id, std::nullopt});
}

TEST_F(WorkflowTest, CancelRequestReachesTheExecutorThroughItsHeartbeat) {
    auto definition = deploy_definition();
    definition["approvers"] = {"ops"};  // issue 12: who may cancel besides the run's owner
    const auto id = start(put(definition), "exec");
    EXPECT_FALSE(ok(as("exec"), RunHeartbeatRequest{id})["cancel_requested"].get<bool>());

    const auto requested = ok(as("ops"), RunCancelRequest{id});
    EXPECT_EQ(requested["status"], "running");
    EXPECT_TRUE(requested["cancel_requested"].get<bool>());
    const auto before = event_count();
    EXPECT_FALSE(ok(as("ops"), RunCancelRequest{id})["changed"].get<bool>());  // asked already
    EXPECT_EQ(event_count(), before);

    const auto beat = ok(as("exec"), RunHeartbeatRequest{id});
    EXPECT_TRUE(beat["cancel_requested"].get<bool>());
    EXPECT_EQ(beat["status"], "running");
    const auto cancelled = ok(as("exec"), RunCancelRequest{id});
    EXPECT_EQ(cancelled["status"], "cancelled");
    const auto got = run(id);
    EXPECT_EQ(got["status"], "cancelled");
    EXPECT_TRUE(got["cancel_requested"].get<bool>());
    EXPECT_FALSE(got["completed_at"].is_null());
    EXPECT_FALSE(m_handler.next_lease_expiry().has_value());

    // A run that is not running is cancelled at once, by any bot allowed to cancel.
    auto other = deploy_definition("b");
    other["approvers"] = {"ops"};
    const auto paused = start(put(other), "exec");
    ok(as("exec"), RunPauseRequest{paused});
    EXPECT_EQ(ok(as("ops"), RunCancelRequest{paused})["status"], "cancelled");
}

TEST_F(WorkflowTest, HeartbeatFromABotWithoutTheLeaseIsNotLeaseOwner) {
    const auto id = start(put(deploy_definition()), "exec");
    expect_error(as("intruder"), RunHeartbeatRequest{id}, Errc::not_lease_owner, "exec");
    expect_error(k_anonymous, RunHeartbeatRequest{id}, Errc::not_identified);
    expect_error(as("exec"), RunHeartbeatRequest{"run-404"}, Errc::not_found);
    m_now += 1'000'000;
    const auto beat = ok(as("exec"), RunHeartbeatRequest{id});
    EXPECT_EQ(beat["lease_expires_at"], m_now + k_lease);
    EXPECT_EQ(m_handler.next_lease_expiry(), m_now + k_lease);
}

TEST_F(WorkflowTest, ExpiredLeasesCrashOnlyExpiredRunningRunsAndAnotherBotCanResume) {
    const auto wf = put(deploy_definition());
    const auto stale = start(wf, "exec");
    const auto beating = start(wf, "exec");
    const auto paused = start(wf, "exec");
    const auto done = start(wf, "exec");
    ok(as("exec"), RunPauseRequest{paused});
    ok(as("exec"), RunCompleteRequest{done, std::nullopt});
    step_start(stale, "build");
    step_start(stale, "test");  // nothing checks depends_on order: the executor's job
    step_complete(stale, "test");

    m_now += k_lease - 1;
    ok(as("exec"), RunHeartbeatRequest{beating});
    {
        auto batch = m_store.begin();
        EXPECT_EQ(m_handler.expire_leases(batch, m_now), 0U);  // not yet: expiry is at k_start + k_lease
        batch.commit();
    }
    m_now += 1;
    EXPECT_EQ(m_handler.next_lease_expiry(), m_now);
    const auto before = m_store.last_seq();
    {
        auto batch = m_store.begin();
        EXPECT_EQ(m_handler.expire_leases(batch, m_now), 1U);
        batch.commit();
    }
    const auto events = m_store.read_range(before, 10);
    ASSERT_EQ(events.size(), 1U);
    EXPECT_EQ(events[0].type, store::EventType::run_crashed);
    EXPECT_EQ(events[0].producer, "botbusd");
    EXPECT_EQ(events[0].stream, "run/" + stale);
    msgpack::object_handle keep;
    const auto payload = store::decode_payload<store::RunCrashed>(events[0].type, events[0].payload, keep);
    EXPECT_EQ(payload.running_steps, (std::vector<std::string>{stale + ":build:1"}));
    EXPECT_EQ(payload.lease_owner, std::optional<std::string>("exec"));

    EXPECT_EQ(run(stale)["status"], "crashed");
    EXPECT_TRUE(run(stale)["lease_owner"].is_null());
    EXPECT_EQ(run(beating)["status"], "running");
    EXPECT_EQ(run(paused)["status"], "paused");
    EXPECT_EQ(steps(stale)[0]["status"], "running");  // step rows keep their state
    expect_error(as("exec"), RunHeartbeatRequest{stale}, Errc::invalid_transition, "crashed");

    // Another executor takes over: it holds the lease now, the old one does not.
    const auto resumed = ok(as("rescuer"), RunResumeRequest{stale});
    EXPECT_EQ(resumed["lease_owner"], "rescuer");
    EXPECT_EQ(run(stale)["lease_owner"], "rescuer");
    ok(as("rescuer"), RunHeartbeatRequest{stale});
    expect_error(as("exec"), RunHeartbeatRequest{stale}, Errc::not_lease_owner, "rescuer");
    EXPECT_EQ(completed_steps(stale), (std::vector<std::string>{"test"}));
}

TEST_F(WorkflowTest, LeasesOutliveTheHandlerAndGraceGivesEveryRunningRunAFullPeriod) {
    const auto wf = put(deploy_definition());
    const auto a = start(wf, "exec");
    m_now += 5'000'000;
    const auto b = start(wf, "exec");
    const auto p = start(wf, "exec");
    ok(as("exec"), RunPauseRequest{p});

    // A new handler stands for a restarted daemon (or another node on the
    // same log): the leases are in the store, not in the old handler.
    CommandHandler restarted{m_store, m_counters, WorkflowOptions{k_lease, [this] { return m_now - 5'000'000; }}};
    EXPECT_EQ(restarted.next_lease_expiry(), k_start + k_lease);  // a's, granted before the restart
    m_now += 60'000'000;  // the daemon was down for a minute
    {
        auto batch = m_store.begin();
        restarted.grant_grace(batch, m_now);
        batch.commit();
    }
    // The handler's clock lags 5 s: grace holds runs for a period from the
    // time it is given, whatever its own clock says.
    EXPECT_EQ(restarted.next_lease_expiry(), m_now + k_lease);
    {
        auto batch = m_store.begin();
        EXPECT_EQ(restarted.expire_leases(batch, m_now + k_lease - 1), 0U);
        batch.commit();
    }
    {
        auto batch = m_store.begin();
        EXPECT_EQ(restarted.expire_leases(batch, m_now + k_lease), 2U);
        batch.commit();
    }
    EXPECT_EQ(run(a)["status"], "crashed");
    EXPECT_EQ(run(b)["status"], "crashed");
    EXPECT_EQ(run(p)["status"], "paused");
    EXPECT_FALSE(restarted.next_lease_expiry().has_value());
}

TEST_F(WorkflowTest, ALeaseWrittenByABatchThatRollsBackIsNotKept) {
    const auto id = start(put(deploy_definition()), "exec");
    {
        auto batch = m_store.begin();
        batch.put_lease(id, m_now + 10 * k_lease);
        batch.drop_lease("some-other-run");
        EXPECT_EQ(m_store.workflows().lease_expiry(id), m_now + 10 * k_lease);
    }  // dropped without a commit: rolled back
    EXPECT_EQ(m_store.workflows().lease_expiry(id), m_now + k_lease);
    EXPECT_EQ(m_handler.next_lease_expiry(), m_now + k_lease);
}

TEST_F(WorkflowTest, RetryAfterAFailureGetsItsOwnRowWithAttemptTwo) {
    const auto id = start(put(deploy_definition()));
    step_start(id, "build");
    ok(as("exec"), StepFailRequest{id, "build", "compiler crashed", true});
    expect_error(as("exec"), StepStartRequest{id, "build", std::nullopt, 5, std::nullopt}, Errc::invalid_field, "2");
    const auto retry = ok(as("exec"), StepStartRequest{id, "build", std::nullopt, 2, std::nullopt});
    EXPECT_EQ(retry["attempt"], 2);
    EXPECT_EQ(retry["attempt_id"], id + ":build:2");
    // A retried step.start of the running attempt answers as before.
    const auto before = event_count();
    const auto again = ok(as("exec"), StepStartRequest{id, "build", std::nullopt, 2, std::nullopt});
    EXPECT_TRUE(again["duplicate"].get<bool>());
    EXPECT_EQ(again["seq"], retry["seq"]);
    EXPECT_EQ(event_count(), before);
    step_complete(id, "build", json{{"ok", true}});

    const auto list = steps(id);
    ASSERT_EQ(list.size(), 2U);
    EXPECT_EQ(list[0]["attempt"], 1);
    EXPECT_EQ(list[0]["status"], "failed");
    EXPECT_EQ(list[0]["error"], "compiler crashed");
    EXPECT_TRUE(list[0]["will_retry"].get<bool>());
    EXPECT_EQ(list[1]["attempt"], 2);
    EXPECT_EQ(list[1]["status"], "completed");
    EXPECT_EQ(list[1]["output"], (json{{"ok", true}}));
    EXPECT_EQ(completed_steps(id), (std::vector<std::string>{"build"}));
}

TEST_F(WorkflowTest, DeletingAWorkflowWithRunsIsHasRunsUnlessArchived) {
    const auto wf = put(deploy_definition());
    const auto id = start(wf);
    ok(as("exec"), RunCompleteRequest{id, packed({{"done", true}})});
    expect_error(as("alice"), WorkflowDeleteRequest{wf, std::nullopt}, Errc::has_runs, "archive");
    expect_error(as("alice"), WorkflowDeleteRequest{wf, false}, Errc::has_runs);

    const auto archived = ok(as("alice"), WorkflowDeleteRequest{wf, true});
    EXPECT_TRUE(archived["archived"].get<bool>());
    EXPECT_FALSE(archived["deleted"].get<bool>());
    EXPECT_TRUE(workflow_names({}).empty());
    EXPECT_EQ(workflow_names({std::nullopt, std::nullopt, true}), (std::vector<std::string>{"deploy/"}));
    const auto w = ok(k_anonymous, WorkflowGetRequest{wf, std::nullopt, std::nullopt, std::nullopt})["workflow"];
    EXPECT_TRUE(w["archived"].get<bool>());
    // Its runs stay readable.
    EXPECT_EQ(run(id)["context"], (json{{"done", true}}));
    EXPECT_EQ(run_ids({wf, std::nullopt, std::nullopt}), (std::vector<std::string>{id}));
    // No new runs; a put with replace restores it.
    expect_error(as("exec"), RunStartRequest{wf, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
                                             std::nullopt},
                 Errc::conflict, "archived");
    expect_error(as("alice"), WorkflowPutRequest{packed(deploy_definition()), std::nullopt, std::nullopt, std::nullopt},
                 Errc::conflict, "archived");
    EXPECT_EQ(put(deploy_definition(), "alice", std::nullopt, true), wf);
    EXPECT_EQ(workflow_names({}), (std::vector<std::string>{"deploy/"}));
}

// ---- property: random lifecycles, then the rebuild equals the live rows

// Allowed run status changes (the transition table).
bool allowed_run_change(const std::string& from, const std::string& to) {
    static const std::set<std::pair<std::string, std::string>> k_allowed{
        {"pending", "running"},  {"pending", "cancelled"}, {"pending", "failed"},  {"running", "paused"},
        {"running", "completed"}, {"running", "failed"},   {"running", "crashed"}, {"running", "cancelled"},
        {"paused", "running"},   {"paused", "cancelled"},  {"paused", "failed"},   {"crashed", "running"},
        {"crashed", "failed"},   {"crashed", "cancelled"},
    };
    return from == to || k_allowed.contains({from, to});
}

TEST_F(WorkflowTest, RandomLifecyclesRejectInvalidRequestsAndRebuildToTheSameRows) {
    std::mt19937 rng(20240611);
    auto pick = [&rng](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };
    const std::vector<std::string> bots{"exec-a", "exec-a", "exec-a", "exec-b", "ops"};
    const std::vector<std::string> step_ids{"build", "test", "gate", "ship", "nope"};
    std::vector<std::string> workflows{put(deploy_definition("w0")), put(deploy_definition("w1")),
                                       put(deploy_definition("w2"), "ops", "ops")};
    // Some messaging rows too: the rebuild covers every projection.
    ok(as("ops"), SubscribeRequest{"runs", std::nullopt});
    ok(as("ops"), PublishRequest{"runs", std::nullopt, pack_as_value(std::string("starting")), std::nullopt, std::nullopt});
    ok(as("ops"), SendRequest{"exec-a", std::nullopt, pack_as_value(std::string("go")), std::nullopt, std::nullopt, std::nullopt});
    ok(as("exec-a"), AckRequest{m_store.last_seq(), std::nullopt});
    // 10 run slots, so each run sees many requests; a slot whose run
    // finished moves on to a fresh run id (about 30 to 60 runs in all).
    std::vector<int> generation(10, 0);
    auto slot_run = [&generation](std::size_t slot) {
        return "r" + std::to_string(slot) + "." + std::to_string(generation[slot]);
    };
    std::map<std::string, std::string> status;  // run id -> last status seen

    auto random_request = [&]() -> Request {
        const auto run_id = slot_run(pick(generation.size()));
        const auto& step_id = step_ids[pick(step_ids.size())];
        switch (pick(24)) {
            case 0:
            case 1:
            case 23: {
                RunStartRequest r;
                r.workflow_id = workflows[pick(workflows.size())];
                r.run_id = run_id;
                if (pick(5) == 0) r.status = "pending";
                if (pick(4) == 0) r.context = packed({{"n", pick(100)}});
                return r;
            }
            case 2: return RunPauseRequest{run_id};
            case 3:
            case 4: return RunResumeRequest{run_id};
            case 5:  // the ends of a run, rarer than the rest
                switch (pick(3)) {
                    case 0: return RunCompleteRequest{run_id, pick(2) ? std::optional(packed({{"final", pick(9)}})) : std::nullopt};
                    case 1: return RunFailRequest{run_id, "error " + std::to_string(pick(9))};
                    default: return RunCancelRequest{run_id};
                }
            case 6:
            case 7: return StepStartRequest{run_id, step_id, std::nullopt, std::nullopt, std::nullopt};
            case 8: return RunCheckpointRequest{run_id, packed({{"at", pick(1000)}})};
            case 9:
            case 10: return RunHeartbeatRequest{run_id};
            case 11:
            case 12:
            case 13:
            case 14: {
                StepStartRequest r{run_id, step_id, std::nullopt, std::nullopt, std::nullopt};
                if (pick(5) == 0) r.attempt = pick(3) + 1;
                if (pick(2) == 0) r.input = packed({{"i", pick(9)}});
                return r;
            }
            case 15:
            case 16:
            case 17: return StepCompleteRequest{run_id, step_id, pick(2) ? std::optional(packed(json::array({pick(9)}))) : std::nullopt};
            case 18: return StepFailRequest{run_id, step_id, "flaky", pick(2) == 0};
            case 19: return StepSkipRequest{run_id, step_id, pick(2) ? std::optional<std::string>("why not") : std::nullopt};
            case 20: return StepWaitApprovalRequest{run_id, step_id};
            default: return StepApproveRequest{run_id, step_id};
        }
    };
    auto run_id_of = [](const Request& request) {
        return std::visit(
            [](const auto& r) -> std::string {
                if constexpr (requires { r.run_id; }) {
                    if constexpr (std::is_same_v<std::decay_t<decltype(r.run_id)>, std::string>) {
                        return r.run_id;
                    } else {
                        return r.run_id.value_or("");
                    }
                } else {
                    return "";
                }
            },
            request);
    };

    std::set<std::string> seen;  // every status reached
    // Every status change seen (the batch's own reads included) must be one
    // the transition table allows.
    auto observe = [&](const std::vector<std::string>& ids) {
        for (const auto& id : ids) {
            const auto row = m_handler.workflows().queries().run(id);
            if (!row) continue;
            const auto it = status.find(id);
            if (it != status.end()) {
                EXPECT_TRUE(allowed_run_change(it->second, row->status))
                    << "run " << id << " went from " << it->second << " to " << row->status;
            }
            status[id] = row->status;
            seen.insert(row->status);
        }
    };

    std::size_t accepted = 0;
    std::size_t rejected = 0;
    std::size_t crashed = 0;
    for (int round = 0; round < 1000; ++round) {
        // Up to four requests share a batch, as under group commit.
        auto batch = m_store.begin();
        const auto n = 1 + pick(4);
        for (std::size_t i = 0; i < n; ++i) {
            const auto request = random_request();
            // Mostly the bot that holds the run (issue 12: others are refused), else any.
            const auto session = [&] {
                if (pick(40) == 0) return k_anonymous;
                if (pick(4) != 0) {
                    if (const auto row = m_handler.workflows().queries().run(run_id_of(request))) {
                        if (row->lease_owner) return as(*row->lease_owner);
                        if (row->owner) return as(*row->owner);
                    }
                }
                return as(bots[pick(bots.size())]);
            }();
            const auto appended_before = batch.events().size();
            const auto outcome = m_handler.handle(Envelope{std::nullopt, request}, session, batch);
            const auto reply = decode_reply(outcome.reply);
            ASSERT_TRUE(reply.has_value());
            ASSERT_EQ(reply->ok, !outcome.failed);
            if (outcome.failed) {
                ++rejected;
                ASSERT_NE(reply->error, Errc::internal) << reply->message;
                ASSERT_EQ(batch.events().size(), appended_before)
                    << op_name(op_of(request)) << " failed (" << reply->message << ") but appended";
            } else {
                ++accepted;
            }
            observe({run_id_of(request)});
        }
        if (pick(25) == 0) {
            m_now += static_cast<std::int64_t>(pick(3)) * k_lease / 2;
            crashed += m_handler.expire_leases(batch, m_now);
            std::vector<std::string> all;
            for (std::size_t slot = 0; slot < generation.size(); ++slot) all.push_back(slot_run(slot));
            observe(all);
        }
        batch.commit();
        for (std::size_t slot = 0; slot < generation.size(); ++slot) {
            const auto it = status.find(slot_run(slot));
            if (it == status.end()) continue;
            const auto& s = it->second;
            if (s == "completed" || s == "failed" || s == "cancelled") ++generation[slot];
        }
    }
    EXPECT_GT(accepted, 400U);
    EXPECT_GT(rejected, 400U);
    EXPECT_GT(crashed, 0U);
    EXPECT_EQ(seen.size(), 7U) << "the random walk should reach every status";

    std::cout << "[ random  ] " << accepted << " accepted, " << rejected << " rejected, " << crashed
              << " crashed by lease expiry, " << status.size() << " runs\n";

    SQLite::Database rebuilt(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    const auto replayed = store::rebuild_projections(m_store, rebuilt);
    EXPECT_EQ(replayed, static_cast<std::size_t>(event_count()));
    const auto differences = store::compare_projections(m_store.database(), rebuilt);
    EXPECT_TRUE(differences.empty()) << differences.size() << " differences, first: " << differences.front();
    SQLite::Statement steps_count(rebuilt, "SELECT COUNT(*) FROM workflow_steps");
    steps_count.executeStep();
    EXPECT_GT(steps_count.getColumn(0).getInt64(), 60);
}

}  // namespace
