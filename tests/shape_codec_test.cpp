// Unit tests of the declared shapes (bus/protocol: replies, pushes, fetched
// items, feed events, messages): every shape round-trips (encode, decode,
// equal, and re-encodes to the same bytes), the map size follows the
// declaration, and the key order is the wire's.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bus/protocol/codec.hpp"

using namespace botbus::bus;

namespace {

PackedValue sample_body() { return pack_as_value(std::map<std::string, int>{{"n", 1}, {"neg", -7}}); }

// The keys of a packed map, in order.
std::vector<std::string> keys_of(const std::string& bytes) {
    const auto handle = msgpack::unpack(bytes.data(), bytes.size());
    std::vector<std::string> keys;
    const auto& map = handle.get().via.map;
    for (std::uint32_t i = 0; i < map.size; ++i) keys.emplace_back(map.ptr[i].key.via.str.ptr, map.ptr[i].key.via.str.size);
    return keys;
}

template <typename T>
void expect_round_trip(const T& value, const char* what) {
    SCOPED_TRACE(what);
    const auto bytes = encode_shape(value);
    const auto handle = msgpack::unpack(bytes.data(), bytes.size());
    ASSERT_EQ(handle.get().type, msgpack::type::MAP);
    EXPECT_EQ(handle.get().via.map.size, count_fields(value)) << "the map size follows the declaration";
    const auto decoded = decode_shape<T>(handle.get());
    ASSERT_TRUE(decoded.has_value()) << "does not decode";
    EXPECT_TRUE(*decoded == value) << "decodes to something else";
    EXPECT_EQ(encode_shape(*decoded), bytes) << "re-encodes to other bytes";
    // As a reply: {ok, id, fields...}, read back through decode_reply.
    const auto frame = encode_reply(pack_as_value(7), value);
    const auto reply = decode_reply(frame);
    ASSERT_TRUE(reply.has_value());
    EXPECT_TRUE(reply->ok);
    EXPECT_EQ(reply->id, 7U);
    const auto fields = decode_reply_as<T>(*reply);
    ASSERT_TRUE(fields.has_value());
    EXPECT_TRUE(*fields == value);
}

#define ROUND_TRIP(value) expect_round_trip(value, #value)

Message sample_message(bool on_channel) {
    Message m;
    m.seq = 41;
    m.stream_seq = 9;
    m.ts_us = 1'700'000'000'000'000;
    m.from = "alice";
    if (on_channel) {
        m.channel = "general";
    } else {
        m.to = "bob";
    }
    m.type = "note";
    m.body = sample_body();
    m.reply_to = 40;
    m.conversation = 30;
    m.hop = 2;
    m.expires_at = -5;
    m.replay_of = 12;
    return m;
}

ChannelInfo sample_channel() { return ChannelInfo{"general", "all hands", "alice", 5, 3, 17, 60000, 0}; }
RunInfo sample_run() {
    return RunInfo{"run-1", "wf-1", "deploy", "running", "manual", sample_body(), sample_body(), 10, 20,
                   "boom",  "key",  "exec",   true,      4,        9};
}
StepInfo sample_step() {
    return StepInfo{"run-1:build:1", "run-1", "build", "Build", "completed", 1, "run-1:build:1", sample_body(),
                    sample_body(),   "err",   true,    "skip",  "carol",     5, 6,                7,  8};
}

}  // namespace

TEST(ShapeRoundTrip, MessagesBothWaysOnChannelsAndInMailboxes) {
    ROUND_TRIP(sample_message(true));
    ROUND_TRIP(sample_message(false));
    auto plain = sample_message(true);
    plain.reply_to.reset();
    plain.expires_at.reset();
    plain.replay_of.reset();
    plain.hop = 0;
    plain.conversation = plain.seq;  // what a reader makes of an absent conversation
    ROUND_TRIP(plain);
}

TEST(ShapeRoundTrip, SessionAndChannelReplies) {
    ROUND_TRIP((HelloReply{"alice", 1, 7, 99, "0080000001"}));
    ROUND_TRIP((ByeReply{"alice"}));
    ROUND_TRIP((ByeReply{std::nullopt}));
    ROUND_TRIP((PingReply{true, 123}));
    ROUND_TRIP((SeqReply{5}));
    ROUND_TRIP((ChannelReply{4, sample_channel()}));
    ROUND_TRIP((ChannelReply{4, ChannelInfo{"quiet", std::nullopt, "bob", 1, 0, 0, std::nullopt, std::nullopt}}));
    ROUND_TRIP((ChannelListReply{{sample_channel(), sample_channel()}}));
    ROUND_TRIP((ChannelListReply{}));
    ROUND_TRIP((SubscribeReply{true, true, false, 12, "pull", 13}));
    ROUND_TRIP((SubscribeReply{false, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt}));
    ROUND_TRIP((UnsubscribeReply{true, 8}));
    ROUND_TRIP((UnsubscribeReply{false, std::nullopt}));
    ROUND_TRIP((SubscriptionsReply{"bob", {"a", "b"}}));
    ROUND_TRIP((SubscribersReply{"general", {"alice", "bob"}}));
    ROUND_TRIP((FeedSyncReply{"sync/tok/"}));
    ROUND_TRIP((StatsReply{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}));
}

TEST(ShapeRoundTrip, MessageAndDeliveryReplies) {
    ROUND_TRIP((PublishReply{10, 3, 99, false}));
    ROUND_TRIP((SendReply{11, 4, 100, true}));
    ROUND_TRIP((ReceivedHistoryReply{{sample_message(true), sample_message(true)}, true}));
    ROUND_TRIP((AckReply{20, 21}));
    ROUND_TRIP((AckReply{20, std::nullopt}));
    ROUND_TRIP((MailboxReply{"bob", "jobs", 3, 2, {InFlightInfo{4, 1, 50, "0080000001"}, InFlightInfo{5, 2, 60, "fan_out"}}, 2,
                             {ReplicaInfo{"0080000001", 10, 1}, ReplicaInfo{"fan_out", 1000, 1}}}));
    ROUND_TRIP((MailboxReply{"bob", std::nullopt, 3, 0, {}, 0, {}}));
    ReceivedDlqListReply dlq;
    dlq.dead_letters.push_back({30, 12, "bob", "max_deliveries", 10, 77, sample_message(false), 31, std::nullopt});
    dlq.dead_letters.push_back({32, 13, "bob", "max_deliveries", 10, 78, std::nullopt, std::nullopt, "jobs"});
    dlq.more = true;
    ROUND_TRIP(dlq);
    ROUND_TRIP((DlqReplayReply{33, 6}));
    ROUND_TRIP((ConsumersReply{{ConsumerInfo{"bob", "jobs", 3, 9, 6, 2, "push", 44, true, 5, 1, {ReplicaInfo{"0080000002", 5, 2}}}}}));
    ReceivedFetchReply fetched;
    fetched.messages.push_back({sample_message(true), 2, true});
    fetched.messages.push_back({sample_message(true), 1, false});
    fetched.position = 41;
    fetched.caught_up = true;
    ROUND_TRIP(fetched);
}

TEST(ShapeRoundTrip, WorkflowRunAndStepReplies) {
    const WorkflowInfo workflow{"wf-1", "deploy", "bot", "alice", sample_body(), 1, 2, true, 3};
    ROUND_TRIP((WorkflowGetReply{workflow}));
    ROUND_TRIP((WorkflowGetReply{WorkflowInfo{"wf-2", "x", "global", std::nullopt, std::nullopt, 1, 1, false,
                                              std::nullopt}}));
    ROUND_TRIP((WorkflowListReply{{workflow, workflow}}));
    ROUND_TRIP((WorkflowPutReply{"wf-1", 5, true, true}));
    ROUND_TRIP((WorkflowPutReply{"wf-1", std::nullopt, false, false}));
    ROUND_TRIP((WorkflowDeleteReply{"wf-1", false, true, true, 6}));
    ROUND_TRIP((WorkflowDeleteReply{"wf-1", false, true, false, std::nullopt}));
    ROUND_TRIP((RunStartReply{"run-1", 7, "running", false, 1000}));
    ROUND_TRIP((RunStartReply{"run-1", 7, "pending", true, std::nullopt}));
    ROUND_TRIP((RunStatusReply{"run-1", "paused", 8}));
    ROUND_TRIP((RunResumeReply{"run-1", "running", 9, "exec", 2000}));
    ROUND_TRIP((RunCancelReply{"run-1", "running", true, true, 10}));
    ROUND_TRIP((RunCancelReply{"run-1", "running", true, false, std::nullopt}));
    ROUND_TRIP((RunHeartbeatReply{"run-1", "running", false, 3000}));
    ROUND_TRIP((RunGetReply{sample_run()}));
    ROUND_TRIP((RunGetReply{RunInfo{"run-2", "wf-1", "deploy", "pending", "manual", std::nullopt, std::nullopt, 1,
                                    std::nullopt, std::nullopt, std::nullopt, std::nullopt, false, 1, 1}}));
    ROUND_TRIP((RunListReply{{sample_run(), sample_run()}}));
    ROUND_TRIP((RunStepsReply{"run-1", {sample_step()}}));
    ROUND_TRIP((RunCompletedStepsReply{"run-1", {"build", "test"}}));
    ROUND_TRIP((StepReply{"run-1", "build", 2, "run-1:build:2", "running", 11, false, std::nullopt}));
    ROUND_TRIP((StepReply{"run-1", "build", 2, "run-1:build:2", "completed", 12, std::nullopt, "carol"}));
}

TEST(ShapeRoundTrip, PushesAndFeedEvents) {
    ROUND_TRIP((ReceivedPush{sample_message(false), 3, true}));
    ROUND_TRIP((CaughtUpPush{"jobs", 40}));
    ROUND_TRIP((ChannelEvent{"subscribed", 5, 6, "alice", "general", "bob"}));
    ROUND_TRIP((ChannelEvent{"channel.created", 5, 6, "alice", "general", std::nullopt}));
    ROUND_TRIP((DeadLetterEvent{"message.dead_lettered", 7, 8, "bob", "jobs", 3, "max_deliveries", 10}));
    ROUND_TRIP((DeadLetterEvent{"message.dead_lettered", 7, 8, "bob", std::nullopt, 3, "max_deliveries", 10}));
    ROUND_TRIP((WorkflowEvent{"run.started", 9, 1, 10, "alice", "wf-1", "run-1", sample_body()}));
    ROUND_TRIP((WorkflowEvent{"workflow.put", 9, 1, 10, "alice", "wf-1", std::nullopt, sample_body()}));
    ROUND_TRIP((SyncMarker{"tok"}));
}

TEST(ShapeRoundTrip, TagsAreCheckedWhenReading) {
    const auto caught_up = encode_shape(CaughtUpPush{"jobs", 4});
    const auto handle = msgpack::unpack(caught_up.data(), caught_up.size());
    EXPECT_FALSE(decode_shape<ReceivedPush>(handle.get()).has_value()) << "a caught_up marker is no message push";
    EXPECT_TRUE(decode_shape<CaughtUpPush>(handle.get()).has_value());
}

// ---- the wire's key order (the golden tests compare maps regardless of it)

TEST(ShapeKeyOrder, MessagesPushesAndEventsKeepTheWireOrder) {
    MessageView view;
    view.seq = 1;
    view.stream_seq = 2;
    view.ts_us = 3;
    view.from = "alice";
    view.channel = std::string_view("general");
    view.type = "text";
    const auto body = sample_body();
    view.body = body.bytes;
    view.reply_to = 4;
    EXPECT_EQ(keys_of(encode_message_event(view, "message")),
              (std::vector<std::string>{"event", "seq", "ts", "from", "type", "body", "channel", "channel_seq",
                                        "reply_to"}));
    view.channel.reset();
    view.to = std::string_view("bob");
    EXPECT_EQ(keys_of(encode_shape(MessagePush{view, 1, false})),
              (std::vector<std::string>{"push", "message", "deliveries", "redelivered"}));
    msgpack::sbuffer out;
    pack_message(out, view);
    EXPECT_EQ(keys_of(std::string(out.data(), out.size())),
              (std::vector<std::string>{"seq", "ts", "from", "type", "body", "to", "mailbox_seq", "reply_to"}));
    EXPECT_EQ(keys_of(encode_feed_event(WorkflowEvent{"run.started", 1, 2, 3, "a", "wf", "run", body})),
              (std::vector<std::string>{"event", "seq", "stream_seq", "ts", "by", "workflow_id", "run_id", "data"}));
    EXPECT_EQ(keys_of(encode_feed_event(ChannelEvent{"subscribed", 1, 2, "alice", "general", "bob"})),
              (std::vector<std::string>{"event", "seq", "ts", "by", "channel", "bot"}));
    EXPECT_EQ(keys_of(encode_feed_event(DeadLetterEvent{"message.dead_lettered", 1, 2, "bob", "jobs", 3, "r", 4})),
              (std::vector<std::string>{"event", "seq", "ts", "bot", "channel", "message_seq", "reason",
                                        "deliveries"}));
    EXPECT_EQ(keys_of(encode_feed_event(SyncMarker{"tok"})), (std::vector<std::string>{"event", "token"}));
    EXPECT_EQ(keys_of(encode_shape(CaughtUpPush{"jobs", 1})), (std::vector<std::string>{"push", "channel", "seq"}));
}

TEST(ShapeKeyOrder, AViewAndAnOwnedMessageWriteTheSameBytes) {
    const auto owned = sample_message(true);
    MessageView view;
    view.seq = owned.seq;
    view.stream_seq = owned.stream_seq;
    view.ts_us = owned.ts_us;
    view.from = owned.from;
    view.channel = std::string_view(*owned.channel);
    view.type = owned.type;
    view.body = owned.body.bytes;
    view.reply_to = owned.reply_to;
    view.conversation = owned.conversation;
    view.hop = owned.hop;
    view.expires_at = owned.expires_at;
    view.replay_of = owned.replay_of;
    EXPECT_EQ(encode_shape(view), encode_shape(owned));
}

TEST(ShapeKeyOrder, NilWhenAbsentFieldsAreWrittenAsNil) {
    const auto bytes = encode_shape(ChannelInfo{"quiet", std::nullopt, "bob", 1, 0, 0, std::nullopt, std::nullopt});
    EXPECT_EQ(keys_of(bytes), (std::vector<std::string>{"name", "description", "created_by", "created_at",
                                                         "subscribers", "last_channel_seq", "max_age_ms",
                                                         "max_messages"}));
    const auto handle = msgpack::unpack(bytes.data(), bytes.size());
    EXPECT_EQ(handle.get().via.map.ptr[1].val.type, msgpack::type::NIL);
    EXPECT_EQ(handle.get().via.map.ptr[6].val.type, msgpack::type::NIL);
}
