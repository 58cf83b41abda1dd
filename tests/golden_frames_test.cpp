// Golden request frames against the codec. The frames (golden_frames.hpp)
// were packed by python3-msgpack from docs/PROTOCOL.md, not by bus/protocol/codec, so
// a field the codec misspells on both sides (daemon and client share it)
// shows up here: the golden frame's field is not read, or the codec's
// re-encoding of it differs from the golden map.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "bus/protocol/codec.hpp"
#include "golden_support.hpp"

using namespace botbus::bus;
using botbus::testing::canonical;
using botbus::testing::canonical_bytes;
using botbus::testing::golden;
using botbus::testing::k_golden_frames;

namespace {

// Every op's request fields as docs/PROTOCOL.md lists them: "key:type",
// with "?" for an optional field. Types: str, uint, bool, any, map,
// uint[] (array of uint).
const std::map<std::string, std::vector<std::string>>& documented_fields() {
    static const std::map<std::string, std::vector<std::string>> fields = {
        {"hello", {"bot:str", "pushes:bool?", "fan_out:bool?", "credit:uint?"}},
        {"bye", {}},
        {"ping", {}},
        {"channel.create", {"name:str", "description:str?"}},
        {"channel.retention", {"name:str", "max_age_ms:uint?", "max_messages:uint?"}},
        {"channel.delete", {"name:str"}},
        {"channel.list", {"after:str?", "limit:uint?"}},
        {"subscribe", {"channel:str", "bot:str?", "durable:bool?", "deliver:str?", "from_seq:uint?",
                       "from_time:uint?", "last:uint?", "credit:uint?"}},
        {"unsubscribe", {"channel:str", "bot:str?"}},
        {"subscriptions", {"bot:str?", "after:str?", "limit:uint?"}},
        {"subscribers", {"channel:str", "after:str?", "limit:uint?"}},
        {"publish", {"channel:str", "body:any", "type:str?", "idempotency_key:str?", "reply_to:uint?"}},
        {"send", {"to:str", "body:any", "type:str?", "idempotency_key:str?", "reply_to:uint?", "ttl_ms:uint?"}},
        {"history", {"channel:str?", "peer:str?", "inbox:bool?", "bot:str?", "after:uint?", "before:uint?",
                     "limit:uint?", "order:str?"}},
        {"ack", {"upto:uint?", "seqs:uint[]?", "channel:str?"}},
        {"fetch", {"channel:str", "max:uint?", "wait_ms:uint?"}},
        {"consumers", {"bot:str?", "channel:str?", "after:str?", "after_bot:str?", "limit:uint?"}},
        {"mailbox", {"bot:str?", "channel:str?"}},
        {"dlq.list", {"bot:str?", "after:uint?", "limit:uint?"}},
        {"dlq.replay", {"seq:uint", "bot:str?"}},
        {"stats", {}},
        {"feed.sync", {"token:str"}},
        {"workflow.put", {"definition:map", "owner_type:str?", "owner_bot:str?", "replace:bool?"}},
        {"workflow.get", {"workflow_id:str?", "name:str?", "owner_type:str?", "owner_bot:str?"}},
        {"workflow.list", {"owner_type:str?", "owner_bot:str?", "include_archived:bool?", "after:str?",
                           "after_owner_bot:str?", "limit:uint?"}},
        {"workflow.delete", {"workflow_id:str", "archive:bool?"}},
        {"run.start", {"workflow_id:str", "run_id:str?", "status:str?", "trigger_type:str?", "trigger_payload:any?",
                       "context:any?", "concurrency_key:str?"}},
        {"run.pause", {"run_id:str"}},
        {"run.resume", {"run_id:str"}},
        {"run.complete", {"run_id:str", "context:any?"}},
        {"run.fail", {"run_id:str", "error:str"}},
        {"run.cancel", {"run_id:str"}},
        {"run.checkpoint", {"run_id:str", "context:any"}},
        {"run.heartbeat", {"run_id:str"}},
        {"run.get", {"run_id:str"}},
        {"run.list", {"workflow_id:str?", "status:str?", "limit:uint?", "before:uint?"}},
        {"run.steps", {"run_id:str", "after:uint?", "limit:uint?"}},
        {"run.completed_steps", {"run_id:str", "after:uint?", "limit:uint?"}},
        {"run.crashed", {"before:uint?", "limit:uint?"}},
        {"step.start", {"run_id:str", "step_id:str", "step_name:str?", "attempt:uint?", "input:any?"}},
        {"step.complete", {"run_id:str", "step_id:str", "output:any?"}},
        {"step.fail", {"run_id:str", "step_id:str", "error:str", "will_retry:bool?"}},
        {"step.skip", {"run_id:str", "step_id:str", "reason:str?"}},
        {"step.wait_approval", {"run_id:str", "step_id:str"}},
        {"step.approve", {"run_id:str", "step_id:str"}},
        {"acl.grant", {"bot:str", "permission:str", "channel:str"}},
        {"acl.revoke", {"bot:str", "permission:str", "channel:str"}},
        {"acl.list", {"after_bot:str?", "after_permission:str?", "after_channel:str?", "limit:uint?"}},
        {"backup", {"name:str"}},
    };
    return fields;
}

std::string key_of(const std::string& field) { return field.substr(0, field.find(':')); }

// Records the fields a request type declares to the codec, typed as the
// documentation types them ("map" is read as any value and checked by the
// handler, so the codec's "any" stands for it).
struct FieldRecorder {
    std::vector<std::string> fields;
    void add(const char* key, const char* type, bool optional) {
        fields.push_back(std::string(key) + ":" + type + (optional ? "?" : ""));
    }
    template <typename T> void name(const char* key, T&) { add(key, "str", false); }
    template <typename T> void opt_name(const char* key, T&) { add(key, "str", true); }
    template <typename T> void name_part(const char* key, T&) { add(key, "str", false); }
    template <typename T> void text(const char* key, T&) { add(key, "str", false); }
    template <typename T> void opt_text(const char* key, T&) { add(key, "str", true); }
    template <typename T> void opt_key(const char* key, T&) { add(key, "str", true); }
    template <typename T> void u64(const char* key, T&) { add(key, "uint", false); }
    template <typename T> void opt_u64(const char* key, T&) { add(key, "uint", true); }
    template <typename T> void opt_u64_list(const char* key, T&) { add(key, "uint[]", true); }
    template <typename T> void opt_flag(const char* key, T&) { add(key, "bool", true); }
    template <typename T> void value(const char* key, T&) { add(key, "any", false); }
    template <typename T> void opt_value(const char* key, T&) { add(key, "any", true); }
};

template <std::size_t I>
std::vector<std::string> codec_fields_of() {
    std::variant_alternative_t<I, Request> request{};
    FieldRecorder recorder;
    request.fields(recorder);
    return recorder.fields;
}
template <std::size_t... I>
std::vector<std::vector<std::string>> codec_fields(std::index_sequence<I...>) {
    return {codec_fields_of<I>()...};
}

// The golden frame as a map, and its "op".
struct GoldenMap {
    msgpack::object_handle handle;
    std::string op() const {
        const auto* op = botbus::testing::find_key(handle.get(), "op");
        return op && op->type == msgpack::type::STR ? std::string(op->via.str.ptr, op->via.str.size) : "";
    }
};
GoldenMap golden_map(std::string_view name) {
    const auto bytes = golden(name);
    return GoldenMap{msgpack::unpack(bytes.data(), bytes.size())};
}

// The request a golden frame decodes to, as type T; fails the test otherwise.
template <typename T>
T decoded(std::string_view name) {
    auto result = decode_request(golden(name), k_default_max_frame);
    if (const auto* failure = std::get_if<DecodeFailure>(&result)) {
        ADD_FAILURE() << name << " is refused: " << errc_name(failure->error.code) << ": " << failure->error.message;
        return T{};
    }
    const auto& envelope = std::get<Envelope>(result);
    if (const auto* request = std::get_if<T>(&envelope.request)) return *request;
    ADD_FAILURE() << name << " decodes as op " << op_name(op_of(envelope.request));
    return T{};
}

// A packed value as canonical text, to compare with an expected value
// written in the same form.
std::string text_of(const PackedValue& value) { return canonical_bytes(value.bytes); }
std::string text_of(const std::optional<PackedValue>& value) { return value ? text_of(*value) : "<absent>"; }

using U = std::optional<std::uint64_t>;
using S = std::optional<std::string>;
using B = std::optional<bool>;

// ---- the documented field lists

TEST(GoldenFrames, EveryOpOfTheCodecIsDocumentedWithTheSameFieldsAndTypes) {
    const auto declared = codec_fields(std::make_index_sequence<std::variant_size_v<Request>>{});
    std::set<std::string> codec_ops;
    for (std::size_t i = 0; i < declared.size(); ++i) {
        const std::string op(op_name(static_cast<Op>(i)));
        codec_ops.insert(op);
        const auto documented = documented_fields().find(op);
        if (documented == documented_fields().end()) {
            ADD_FAILURE() << "the codec has op '" << op << "', which PROTOCOL.md does not document";
            continue;
        }
        auto expected = documented->second;
        for (auto& field : expected) {
            if (field.starts_with(key_of(field) + ":map")) field.replace(key_of(field).size() + 1, 3, "any");
        }
        auto actual = declared[i];
        std::sort(expected.begin(), expected.end());
        std::sort(actual.begin(), actual.end());
        EXPECT_EQ(actual, expected) << "fields of op '" << op << "'";
    }
    for (const auto& [op, fields] : documented_fields()) {
        EXPECT_TRUE(codec_ops.contains(op)) << "PROTOCOL.md documents op '" << op << "', which the codec lacks";
    }
}

TEST(GoldenFrames, EveryDocumentedOpAndOptionalFieldAppearsInSomeGoldenFrame) {
    std::map<std::string, std::set<std::string>> seen;
    std::set<std::string> envelope_keys;
    for (const auto& frame : k_golden_frames) {
        const auto map = golden_map(frame.name);
        for (const auto& key : botbus::testing::keys_of(map.handle.get())) {
            if (key == "op" || key == "id" || key == "v") {
                envelope_keys.insert(key);
            } else {
                seen[map.op()].insert(key);
            }
        }
        seen[map.op()];
    }
    EXPECT_EQ(envelope_keys, (std::set<std::string>{"id", "op", "v"}));
    for (const auto& [op, fields] : documented_fields()) {
        ASSERT_TRUE(seen.contains(op)) << "no golden frame for op '" << op << "'";
        std::set<std::string> documented;
        for (const auto& field : fields) documented.insert(key_of(field));
        // unknown_op's frame names no documented op; every other key is a documented one.
        EXPECT_EQ(seen[op], documented) << "golden frames of op '" << op << "'";
    }
}

// ---- decode, and encode again

TEST(GoldenFrames, EveryGoldenFrameDecodesAndTheCodecEncodesItBackToTheSameMap) {
    for (const auto& frame : k_golden_frames) {
        const auto map = golden_map(frame.name);
        if (!documented_fields().contains(map.op())) continue;  // unknown_op
        auto result = decode_request(golden(frame.name), k_default_max_frame);
        if (std::get_if<DecodeFailure>(&result) && frame.name == "channel.create.no_name") {
            EXPECT_EQ(std::get<DecodeFailure>(result).error.code, Errc::missing_field);
            continue;
        }
        ASSERT_TRUE(std::holds_alternative<Envelope>(result))
            << frame.name << ": " << std::get<DecodeFailure>(result).error.message;
        const auto& envelope = std::get<Envelope>(result);
        EXPECT_EQ(op_name(op_of(envelope.request)), map.op()) << frame.name;

        // The golden map without what encode_request never writes: `v`
        // (the envelope's version check) and nil values (nil means absent).
        msgpack::zone zone;
        std::vector<msgpack::object_kv> kept;
        const auto& root = map.handle.get();
        for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
            const auto& kv = root.via.map.ptr[i];
            if (kv.val.type == msgpack::type::NIL) continue;
            if (kv.key.type == msgpack::type::STR && std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == "v") continue;
            kept.push_back(kv);
        }
        msgpack::object expected;
        expected.type = msgpack::type::MAP;
        expected.via.map.size = static_cast<std::uint32_t>(kept.size());
        expected.via.map.ptr = kept.data();
        EXPECT_EQ(canonical_bytes(encode_request(envelope.request, envelope.id)), canonical(expected))
            << frame.name << " = " << frame.json;
    }
}

TEST(GoldenFrames, TheIdIsEchoedVerbatimWhetherIntegerOrString) {
    auto alice = decode_request(golden("hello.alice"), k_default_max_frame);
    ASSERT_TRUE(std::holds_alternative<Envelope>(alice));
    EXPECT_EQ(std::get<Envelope>(alice).id, pack_as_value(std::string("a-2")));
    auto ping = decode_request(golden("ping"), k_default_max_frame);
    ASSERT_TRUE(std::holds_alternative<Envelope>(ping));
    EXPECT_EQ(std::get<Envelope>(ping).id, pack_as_value(1));
}

TEST(GoldenFrames, SessionFramesCarryTheirDocumentedValues) {
    EXPECT_EQ(decoded<HelloRequest>("hello.alice").bot, "alice");
    EXPECT_EQ(decoded<HelloRequest>("hello.alice").pushes, B());
    EXPECT_EQ(decoded<HelloRequest>("hello.bob").pushes, B(true));
    const auto carol = decoded<HelloRequest>("hello.carol");
    EXPECT_EQ(carol.bot, "carol");
    EXPECT_EQ(carol.pushes, B(false));
    decoded<PingRequest>("ping");
    decoded<StatsRequest>("stats");
    EXPECT_EQ(decoded<FeedSyncRequest>("feed.sync").token, "golden-1");
}

TEST(GoldenFrames, ChannelFramesCarryTheirDocumentedValues) {
    const auto create = decoded<ChannelCreateRequest>("channel.create.full");
    EXPECT_EQ(create.name, "lobby");
    EXPECT_EQ(create.description, S("front room"));
    EXPECT_EQ(decoded<ChannelCreateRequest>("channel.create.minimal").description, S());
    const auto retention = decoded<ChannelRetentionRequest>("channel.retention.full");
    EXPECT_EQ(retention.name, "lobby");
    EXPECT_EQ(retention.max_age_ms, U(86400000));
    EXPECT_EQ(retention.max_messages, U(500));
    const auto default_retention = decoded<ChannelRetentionRequest>("channel.retention.minimal");
    EXPECT_EQ(default_retention.name, "attic");
    EXPECT_EQ(default_retention.max_age_ms, U());
    EXPECT_EQ(default_retention.max_messages, U());
    EXPECT_EQ(decoded<ChannelDeleteRequest>("channel.delete").name, "attic");
    decoded<ChannelListRequest>("channel.list");
    EXPECT_EQ(decoded<SubscribersRequest>("subscribers.lobby").channel, "lobby");
    EXPECT_EQ(decoded<SubscriptionsRequest>("subscriptions.full").bot, S("alice"));
    EXPECT_EQ(decoded<SubscriptionsRequest>("subscriptions.nil_bot").bot, S());
}

TEST(GoldenFrames, SubscriptionFramesCarryTheirDocumentedValues) {
    const auto plain = decoded<SubscribeRequest>("subscribe.minimal");
    EXPECT_EQ(plain.channel, "lobby");
    EXPECT_FALSE(plain.delivers());
    const auto full = decoded<SubscribeRequest>("subscribe.full");
    EXPECT_EQ(full.channel, "jobs");
    EXPECT_EQ(full.bot, S("bob"));
    EXPECT_EQ(full.durable, B(true));
    EXPECT_EQ(full.deliver, S("push"));
    EXPECT_EQ(full.from_seq, U(1));
    EXPECT_EQ(full.from_time, U());
    EXPECT_EQ(full.last, U());
    EXPECT_EQ(full.credit, U(10));
    const auto pull = decoded<SubscribeRequest>("subscribe.pull");
    EXPECT_EQ(pull.deliver, S("pull"));
    EXPECT_EQ(pull.last, U(1));
    EXPECT_EQ(decoded<SubscribeRequest>("subscribe.from_time").from_time, U(1));
    const auto unsubscribe = decoded<UnsubscribeRequest>("unsubscribe.full");
    EXPECT_EQ(unsubscribe.channel, "lobby");
    EXPECT_EQ(unsubscribe.bot, S("alice"));
    EXPECT_EQ(decoded<UnsubscribeRequest>("unsubscribe.minimal").bot, S());
    const auto fetch = decoded<FetchRequest>("fetch.full");
    EXPECT_EQ(fetch.channel, "jobs");
    EXPECT_EQ(fetch.max, U(10));
    EXPECT_EQ(fetch.wait_ms, U(0));
    EXPECT_EQ(decoded<FetchRequest>("fetch.minimal").max, U());
    const auto consumers = decoded<ConsumersRequest>("consumers.full");
    EXPECT_EQ(consumers.bot, S("bob"));
    EXPECT_EQ(consumers.channel, S("jobs"));
    const auto paged = decoded<ConsumersRequest>("consumers.paged");
    EXPECT_EQ(paged.after, S("jobs"));
    EXPECT_EQ(paged.after_bot, S("bob"));
    EXPECT_EQ(paged.limit, U(10));
    const auto mailbox = decoded<MailboxRequest>("mailbox.full");
    EXPECT_EQ(mailbox.bot, S("bob"));
    EXPECT_EQ(mailbox.channel, S("jobs"));
    EXPECT_EQ(decoded<MailboxRequest>("mailbox.minimal").bot, S());
}

TEST(GoldenFrames, MessageFramesCarryTheirDocumentedValues) {
    const auto greet = decoded<PublishRequest>("publish.greet");
    EXPECT_EQ(greet.channel, "lobby");
    EXPECT_EQ(text_of(greet.body), "s\"hi all\"");
    EXPECT_EQ(greet.type, S());
    EXPECT_EQ(greet.idempotency_key, S("greet-1"));
    const auto publish = decoded<PublishRequest>("publish.full");
    EXPECT_EQ(text_of(publish.body), "{s\"n\":u1,s\"tags\":[s\"a\",s\"b\"]}");
    EXPECT_EQ(publish.type, S("note"));
    EXPECT_EQ(publish.idempotency_key, S("greet-2"));
    EXPECT_EQ(publish.reply_to, U(2));
    const auto send = decoded<SendRequest>("send.full");
    EXPECT_EQ(send.to, "bob");
    EXPECT_EQ(text_of(send.body), "s\"yes\"");
    EXPECT_EQ(send.type, S("answer"));
    EXPECT_EQ(send.idempotency_key, S("ans-1"));
    EXPECT_EQ(send.reply_to, U(4));
    EXPECT_EQ(send.ttl_ms, U(60000));
    const auto question = decoded<SendRequest>("send.question");
    EXPECT_EQ(text_of(question.body), "{s\"q\":s\"lunch?\"}");
    EXPECT_EQ(question.ttl_ms, U());

    EXPECT_EQ(decoded<HistoryRequest>("history.channel").channel, S("lobby"));
    const auto peer = decoded<HistoryRequest>("history.peer");
    EXPECT_EQ(peer.channel, S());
    EXPECT_EQ(peer.peer, S("alice"));
    EXPECT_EQ(peer.bot, S("bob"));
    EXPECT_EQ(peer.after, U(1));
    EXPECT_EQ(peer.before, U(100));
    EXPECT_EQ(peer.limit, U(1));
    EXPECT_EQ(peer.order, S("desc"));
    EXPECT_EQ(decoded<HistoryRequest>("history.inbox").inbox, B(true));

    EXPECT_EQ(decoded<AckRequest>("ack.seqs").seqs, (std::optional<std::vector<std::uint64_t>>{{4}}));
    EXPECT_EQ(decoded<AckRequest>("ack.upto").upto, U(5));
    const auto ack = decoded<AckRequest>("ack.channel");
    EXPECT_EQ(ack.upto, U(2));
    EXPECT_EQ(ack.seqs, (std::optional<std::vector<std::uint64_t>>{{3}}));
    EXPECT_EQ(ack.channel, S("jobs"));

    const auto dlq = decoded<DlqListRequest>("dlq.list.full");
    EXPECT_EQ(dlq.bot, S("bob"));
    EXPECT_EQ(dlq.after, U(0));
    EXPECT_EQ(dlq.limit, U(10));
    const auto replay = decoded<DlqReplayRequest>("dlq.replay.full");
    EXPECT_EQ(replay.seq, 1u);
    EXPECT_EQ(replay.bot, S("bob"));
    EXPECT_EQ(decoded<DlqReplayRequest>("dlq.replay.minimal").bot, S());
}

TEST(GoldenFrames, WorkflowFramesCarryTheirDocumentedValues) {
    const auto put = decoded<WorkflowPutRequest>("workflow.put.full");
    EXPECT_EQ(text_of(put.definition),
              "{s\"id\":s\"wf-mine\",s\"name\":s\"mine\",s\"note\":s\"kept\",s\"steps\":[{s\"id\":s\"a\"}]}");
    EXPECT_EQ(put.owner_type, S("bot"));
    EXPECT_EQ(put.owner_bot, S("alice"));
    EXPECT_EQ(put.replace, B(true));
    EXPECT_EQ(decoded<WorkflowPutRequest>("workflow.put.minimal").owner_type, S());
    EXPECT_EQ(decoded<WorkflowGetRequest>("workflow.get.id").workflow_id, S("wf-deploy"));
    const auto by_name = decoded<WorkflowGetRequest>("workflow.get.name");
    EXPECT_EQ(by_name.workflow_id, S());
    EXPECT_EQ(by_name.name, S("mine"));
    EXPECT_EQ(by_name.owner_type, S("bot"));
    EXPECT_EQ(by_name.owner_bot, S("alice"));
    const auto list = decoded<WorkflowListRequest>("workflow.list.full");
    EXPECT_EQ(list.owner_type, S("bot"));
    EXPECT_EQ(list.owner_bot, S("alice"));
    EXPECT_EQ(list.include_archived, B(true));
    const auto archive = decoded<WorkflowDeleteRequest>("workflow.delete.full");
    EXPECT_EQ(archive.workflow_id, "wf-mine");
    EXPECT_EQ(archive.archive, B(true));
    EXPECT_EQ(decoded<WorkflowDeleteRequest>("workflow.delete.minimal").archive, B());
}

TEST(GoldenFrames, RunFramesCarryTheirDocumentedValues) {
    const auto start = decoded<RunStartRequest>("run.start.full");
    EXPECT_EQ(start.workflow_id, "wf-deploy");
    EXPECT_EQ(start.run_id, S("deploy-7"));
    EXPECT_EQ(start.status, S("running"));
    EXPECT_EQ(start.trigger_type, S("cron"));
    EXPECT_EQ(text_of(start.trigger_payload), "{s\"at\":s\"noon\"}");
    EXPECT_EQ(text_of(start.context), "{s\"env\":s\"prod\"}");
    EXPECT_EQ(start.concurrency_key, S("prod"));
    const auto bare = decoded<RunStartRequest>("run.start.minimal");
    EXPECT_EQ(bare.run_id, S());
    EXPECT_EQ(text_of(bare.context), "<absent>");
    EXPECT_EQ(decoded<RunStartRequest>("run.start.pending8").status, S("pending"));
    EXPECT_EQ(decoded<RunPauseRequest>("run.pause").run_id, "deploy-7");
    EXPECT_EQ(decoded<RunResumeRequest>("run.resume").run_id, "deploy-7");
    EXPECT_EQ(decoded<RunHeartbeatRequest>("run.heartbeat").run_id, "deploy-7");
    EXPECT_EQ(text_of(decoded<RunCheckpointRequest>("run.checkpoint").context), "{s\"stage\":s\"after-gate\"}");
    EXPECT_EQ(text_of(decoded<RunCompleteRequest>("run.complete.full").context), "{s\"done\":true}");
    EXPECT_EQ(text_of(decoded<RunCompleteRequest>("run.complete.minimal").context), "<absent>");
    const auto fail = decoded<RunFailRequest>("run.fail");
    EXPECT_EQ(fail.run_id, "deploy-8");
    EXPECT_EQ(fail.error, "no capacity");
    EXPECT_EQ(decoded<RunCancelRequest>("run.cancel").run_id, "deploy-9");
    EXPECT_EQ(decoded<RunGetRequest>("run.get").run_id, "deploy-7");
    const auto list = decoded<RunListRequest>("run.list.full");
    EXPECT_EQ(list.workflow_id, S("wf-deploy"));
    EXPECT_EQ(list.status, S("running"));
    EXPECT_EQ(list.limit, U(10));
    EXPECT_EQ(decoded<RunStepsRequest>("run.steps").run_id, "deploy-7");
    EXPECT_EQ(decoded<RunCompletedStepsRequest>("run.completed_steps").run_id, "deploy-7");
    decoded<RunCrashedRequest>("run.crashed");
}

TEST(GoldenFrames, StepFramesCarryTheirDocumentedValues) {
    const auto start = decoded<StepStartRequest>("step.start.full");
    EXPECT_EQ(start.run_id, "deploy-7");
    EXPECT_EQ(start.step_id, "build");
    EXPECT_EQ(start.step_name, S("Build it"));
    EXPECT_EQ(start.attempt, U(1));
    EXPECT_EQ(text_of(start.input), "{s\"ref\":s\"main\"}");
    const auto retry = decoded<StepStartRequest>("step.start.minimal");
    EXPECT_EQ(retry.attempt, U());
    EXPECT_EQ(text_of(retry.input), "<absent>");
    const auto fail = decoded<StepFailRequest>("step.fail.full");
    EXPECT_EQ(fail.step_id, "build");
    EXPECT_EQ(fail.error, "exit 1");
    EXPECT_EQ(fail.will_retry, B(true));
    EXPECT_EQ(decoded<StepFailRequest>("step.fail.minimal").will_retry, B());
    EXPECT_EQ(text_of(decoded<StepCompleteRequest>("step.complete.full").output), "{s\"artifact\":s\"a.tar\"}");
    EXPECT_EQ(text_of(decoded<StepCompleteRequest>("step.complete.minimal").output), "<absent>");
    EXPECT_EQ(decoded<StepSkipRequest>("step.skip.full").reason, S("not today"));
    EXPECT_EQ(decoded<StepSkipRequest>("step.skip.minimal").reason, S());
    const auto wait = decoded<StepWaitApprovalRequest>("step.wait_approval");
    EXPECT_EQ(wait.run_id, "deploy-7");
    EXPECT_EQ(wait.step_id, "gate");
    EXPECT_EQ(decoded<StepApproveRequest>("step.approve").step_id, "gate");
}

TEST(GoldenFrames, PagingFramesCarryTheirLimitAndCursor) {
    const auto channels = decoded<ChannelListRequest>("channel.list.page");
    EXPECT_EQ(channels.after, S("attic"));
    EXPECT_EQ(channels.limit, U(1));
    EXPECT_EQ(decoded<ChannelListRequest>("channel.list").after, S());
    const auto subscriptions = decoded<SubscriptionsRequest>("subscriptions.page");
    EXPECT_EQ(subscriptions.after, S("attic"));
    EXPECT_EQ(subscriptions.limit, U(1));
    const auto subscribers = decoded<SubscribersRequest>("subscribers.page");
    EXPECT_EQ(subscribers.after, S("alice"));
    EXPECT_EQ(subscribers.limit, U(1));
    const auto workflows = decoded<WorkflowListRequest>("workflow.list.page");
    EXPECT_EQ(workflows.after, S("mine"));
    EXPECT_EQ(workflows.after_owner_bot, S("alice"));
    EXPECT_EQ(workflows.limit, U(1));
    const auto runs = decoded<RunListRequest>("run.list.page");
    EXPECT_EQ(runs.before, U(1));
    EXPECT_EQ(runs.limit, U(1));
    const auto steps = decoded<RunStepsRequest>("run.steps.page");
    EXPECT_EQ(steps.after, U(1));
    EXPECT_EQ(steps.limit, U(1));
    const auto completed = decoded<RunCompletedStepsRequest>("run.completed_steps.page");
    EXPECT_EQ(completed.after, U(1));
    EXPECT_EQ(completed.limit, U(1));
    const auto crashed = decoded<RunCrashedRequest>("run.crashed.page");
    EXPECT_EQ(crashed.before, U(1));
    EXPECT_EQ(crashed.limit, U(1));
}

TEST(GoldenFrames, FramesTheDocumentationRefusesAreRefusedWithTheirCodes) {
    auto nameless = decode_request(golden("channel.create.no_name"), k_default_max_frame);
    ASSERT_TRUE(std::holds_alternative<DecodeFailure>(nameless));
    EXPECT_EQ(errc_name(std::get<DecodeFailure>(nameless).error.code), "missing_field");
    auto unknown = decode_request(golden("unknown_op"), k_default_max_frame);
    ASSERT_TRUE(std::holds_alternative<DecodeFailure>(unknown));
    EXPECT_EQ(errc_name(std::get<DecodeFailure>(unknown).error.code), "unknown_op");
    EXPECT_EQ(std::get<DecodeFailure>(unknown).id, pack_as_value(std::uint64_t{21}));
}

}  // namespace
