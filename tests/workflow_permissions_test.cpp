// Workflow permissions (issue 12), as units on a :memory: store: a run is
// changed only by the bot holding its lease (a second bot can no longer
// complete, fail, pause, checkpoint or step a run it never started), resumed
// after a crash by its previous lease owner or its definition's owner,
// cancelled and approved by the definition's approvers, the run's owner or
// an admin; bot-owned definitions are put and deleted by their owner only,
// global ones by anyone unless the default policy is deny.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "bus/core/handler.hpp"
#include "bus/protocol/codec.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "handler_support.hpp"

using namespace botbus::bus;
namespace store = botbus::store;
using nlohmann::json;

namespace {

using botbus::testing::as;

constexpr std::int64_t k_lease = 10'000'000;

PackedValue packed(const json& value) {
    const auto bytes = json::to_msgpack(value);
    return PackedValue{std::string(bytes.begin(), bytes.end())};
}

json definition(std::optional<json> approvers = std::nullopt) {
    json d{{"name", "deploy"}, {"steps", {{{"id", "build"}}, {{"id", "gate"}, {"depends_on", {"build"}}}}}};
    if (approvers) d["approvers"] = *approvers;
    return d;
}

class WorkflowPermissions : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};
    ServerCounters m_counters;
    std::int64_t m_now = 1'700'000'000'000'000;
    std::unique_ptr<CommandHandler> m_handler = make_handler(true);

    std::unique_ptr<CommandHandler> make_handler(bool default_allow) {
        MessagingOptions messaging;
        messaging.acl = AclPolicy{{"root"}, default_allow, !default_allow};
        messaging.clock = [this] { return m_now; };
        return std::make_unique<CommandHandler>(m_store, m_counters, WorkflowOptions{k_lease, [this] { return m_now; }},
                                                std::move(messaging));
    }
    Reply call(const Session& session, Request request) {
        return botbus::testing::call_in_batch(*m_handler, m_store, session, std::move(request));
    }
    json ok(const Session& session, Request request) {
        const auto op = op_of(request);
        const auto reply = call(session, std::move(request));
        EXPECT_TRUE(reply.ok) << op_name(op) << " failed: " << reply.error_name << ": " << reply.message;
        msgpack::sbuffer buffer;
        msgpack::pack(buffer, reply.handle.get());
        return json::from_msgpack(std::string(buffer.data(), buffer.size()));
    }
    void refused(const Session& session, Request request, Errc code, const std::string& part = {}) {
        const auto op = op_of(request);
        const auto before = m_store.last_seq();
        const auto reply = call(session, std::move(request));
        EXPECT_FALSE(reply.ok) << op_name(op) << " should have been refused";
        EXPECT_EQ(reply.error_name, errc_name(code)) << op_name(op) << ": " << reply.message;
        EXPECT_NE(reply.message.find(part), std::string::npos) << reply.message << " should say " << part;
        EXPECT_EQ(m_store.last_seq(), before) << op_name(op) << " appended although refused";
    }
    std::string put(const json& d, const std::string& by = "alice", std::optional<std::string> owner = std::nullopt) {
        WorkflowPutRequest r{packed(d), std::nullopt, owner, std::nullopt};
        if (owner) r.owner_type = "bot";
        return ok(as(by), r).value("workflow_id", "");
    }
    std::string start(const std::string& workflow_id, const std::string& by) {
        RunStartRequest r;
        r.workflow_id = workflow_id;
        return ok(as(by), r).value("run_id", "");
    }
    StepStartRequest step_start(const std::string& run, const std::string& step) {
        StepStartRequest r;
        r.run_id = run;
        r.step_id = step;
        return r;
    }
};

TEST_F(WorkflowPermissions, OnlyTheLeaseHolderChangesARunOrItsSteps) {
    const auto run = start(put(definition()), "exec");
    // The defect of issue 12: bob completed a run he never started.
    refused(as("bob"), RunCompleteRequest{run, std::nullopt}, Errc::not_lease_owner, "held by 'exec'");
    refused(as("bob"), RunFailRequest{run, "no"}, Errc::not_lease_owner, "only the lease holder");
    refused(as("bob"), RunPauseRequest{run}, Errc::not_lease_owner);
    refused(as("bob"), RunCheckpointRequest{run, packed(json{{"a", 1}})}, Errc::not_lease_owner);
    refused(as("bob"), step_start(run, "build"), Errc::not_lease_owner);
    refused(as("root"), step_start(run, "build"), Errc::not_lease_owner);  // not even an admin steps a held run
    ok(as("exec"), step_start(run, "build"));
    refused(as("bob"), StepCompleteRequest{run, "build", std::nullopt}, Errc::not_lease_owner);
    refused(as("bob"), StepFailRequest{run, "build", "x", std::nullopt}, Errc::not_lease_owner);
    refused(as("bob"), StepWaitApprovalRequest{run, "build"}, Errc::not_lease_owner);
    ok(as("exec"), StepCompleteRequest{run, "build", std::nullopt});
    refused(as("bob"), StepSkipRequest{run, "gate", std::string("no")}, Errc::not_lease_owner);
    ok(as("exec"), RunCompleteRequest{run, std::nullopt});
}

TEST_F(WorkflowPermissions, UnderDenyAfterACrashThePreviousOwnerOrTheDefinitionsOwnerResumes) {
    m_handler = make_handler(false);
    const auto workflow = put(definition(), "alice", "alice");
    const auto run = start(workflow, "exec");
    m_now += 2 * k_lease;
    {
        auto batch = m_store.begin();
        EXPECT_EQ(m_handler->expire_leases(batch, m_now), 1u);
        batch.commit();
    }
    refused(as("bob"), RunResumeRequest{run}, Errc::forbidden, "may not resume run");
    refused(as("bob"), RunFailRequest{run, "x"}, Errc::not_lease_owner, "no bot holds the lease");
    ok(as("alice"), RunResumeRequest{run});  // the definition's owner
    refused(as("exec"), RunCompleteRequest{run, std::nullopt}, Errc::not_lease_owner, "held by 'alice'");
    ok(as("alice"), RunPauseRequest{run});
    ok(as("alice"), RunResumeRequest{run});  // alice owns it now
    ok(as("alice"), RunCompleteRequest{run, std::nullopt});
}

TEST_F(WorkflowPermissions, ApproversTheOwnerOrAnAdminCancelAndApprove) {
    const auto workflow = put(definition(json{"carol"}));
    const auto run = start(workflow, "exec");
    ok(as("exec"), step_start(run, "build"));
    ok(as("exec"), StepWaitApprovalRequest{run, "build"});
    refused(as("bob"), StepApproveRequest{run, "build"}, Errc::forbidden, "approvers");
    refused(as("bob"), RunCancelRequest{run}, Errc::forbidden, "may not cancel");
    const auto approved = ok(as("carol"), StepApproveRequest{run, "build"});
    EXPECT_EQ(approved["approved_by"], "carol");
    ok(as("carol"), RunCancelRequest{run});  // asks the executor to stop
    ok(as("root"), RunCancelRequest{run});
    ok(as("exec"), RunCancelRequest{run});   // the executor itself cancels
}

TEST_F(WorkflowPermissions, WithoutApproversAnyoneDecidesUnderAllowOnlyTheOwnerUnderDeny) {
    const auto run = start(put(definition()), "exec");
    ok(as("bob"), RunCancelRequest{run});  // asks the executor to stop, as before
    m_handler = make_handler(false);
    refused(as("carol"), RunCancelRequest{run}, Errc::forbidden, "may not cancel");
}

TEST_F(WorkflowPermissions, ApproversMustBeAnArrayOfBotNames) {
    for (const auto& bad : {json("carol"), json{1}, json{"a/b"}}) {
        refused(as("alice"), WorkflowPutRequest{packed(definition(bad)), std::nullopt, std::nullopt, std::nullopt},
                Errc::invalid_definition, "approvers");
    }
}

TEST_F(WorkflowPermissions, DefinitionsAreAnyonesUnderAllowAndTheirOwnersUnderDeny) {
    const auto global = put(definition(), "bob");  // the default policy allow: as before
    put(definition(), "bob", "alice");
    m_handler = make_handler(false);
    refused(as("bob"), WorkflowPutRequest{packed(definition()), std::string("bot"), std::string("alice"), std::nullopt},
            Errc::forbidden, "a workflow of bot 'alice'");
    auto other = definition();
    other["name"] = "other";
    const auto mine = put(other, "alice", "alice");
    refused(as("bob"), WorkflowDeleteRequest{mine, std::nullopt}, Errc::forbidden, "only that bot or an admin");
    ok(as("root"), WorkflowDeleteRequest{mine, std::nullopt});
    refused(as("bob"), WorkflowDeleteRequest{global, std::nullopt}, Errc::forbidden, "default policy is deny");
    refused(as("bob"), WorkflowPutRequest{packed(definition()), std::nullopt, std::nullopt, std::nullopt},
            Errc::forbidden, "global");
    ok(as("root"), WorkflowDeleteRequest{global, std::nullopt});
}

}  // namespace
