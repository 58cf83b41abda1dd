// Unit tests of the wire codec: requests both ways, rejections with their
// stable codes, replies, messages, and robustness against hostile bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bus/protocol/codec.hpp"

using namespace botbus::bus;

namespace {

// A request map built by hand, so tests can send what encode_request never would.
class Frame {
public:
    template <typename T>
    Frame& with(std::string_view key, const T& value) {
        m_packer.pack(key);
        m_packer.pack(value);
        ++m_count;
        return *this;
    }
    Frame& with_nil(std::string_view key) {
        m_packer.pack(key);
        m_packer.pack_nil();
        ++m_count;
        return *this;
    }
    std::string str() const {
        msgpack::sbuffer out;
        msgpack::packer<msgpack::sbuffer> packer(out);
        packer.pack_map(m_count);
        out.write(m_fields.data(), m_fields.size());
        return std::string(out.data(), out.size());
    }

private:
    msgpack::sbuffer m_fields;
    msgpack::packer<msgpack::sbuffer> m_packer{m_fields};
    std::uint32_t m_count = 0;
};

PackedValue sample_body() {
    return pack_as_value(std::map<std::string, std::vector<int>>{{"xs", {1, -2, 300000}}, {"empty", {}}});
}

// One fully populated request per op, in the order of `Request`.
std::vector<Request> sample_requests() {
    return {
        HelloRequest{"alice", false, true, 50},
        PingRequest{},
        ChannelCreateRequest{"general", "all hands"},
        ChannelDeleteRequest{"general"},
        ChannelListRequest{},
        SubscribeRequest{"general", "bob", true, "pull", 3, std::nullopt, std::nullopt, 50},
        UnsubscribeRequest{"general", "bob"},
        SubscriptionsRequest{"bob"},
        SubscribersRequest{"general"},
        PublishRequest{"general", "note", sample_body(), "key-1", 42},
        SendRequest{"bob", "note", sample_body(), "key-2", 7, 60000},
        HistoryRequest{"general", "bob", true, "alice", 1, 99, 10, "desc"},
        AckRequest{12, std::vector<std::uint64_t>{14, 15}, "jobs"},
        StatsRequest{},
        FeedSyncRequest{"tok-1"},
        MailboxRequest{"bob", "jobs"},
        DlqListRequest{"bob", 3, 50},
        DlqReplayRequest{17, "bob"},
        FetchRequest{"jobs", 10, 500},
        ConsumersRequest{"bob", "jobs"},
        ChannelRetentionRequest{"jobs", 60000, 0},
        WorkflowPutRequest{sample_body(), "bot", "alice", true},
        WorkflowGetRequest{"wf-1", "deploy", "bot", "alice"},
        WorkflowListRequest{"bot", "alice", true},
        WorkflowDeleteRequest{"wf-1", true},
        RunStartRequest{"wf-1", "run-a", "pending", "cron", sample_body(), sample_body(), "key-3"},
        RunPauseRequest{"run-a"},
        RunResumeRequest{"run-a"},
        RunCompleteRequest{"run-a", sample_body()},
        RunFailRequest{"run-a", "boom"},
        RunCancelRequest{"run-a"},
        RunCheckpointRequest{"run-a", sample_body()},
        RunHeartbeatRequest{"run-a"},
        RunGetRequest{"run-a"},
        RunListRequest{"wf-1", "running", 10},
        RunStepsRequest{"run-a"},
        RunCompletedStepsRequest{"run-a"},
        RunCrashedRequest{},
        StepStartRequest{"run-a", "build", "Build it", 2, sample_body()},
        StepCompleteRequest{"run-a", "build", sample_body()},
        StepFailRequest{"run-a", "build", "exit 1", true},
        StepSkipRequest{"run-a", "build", "not needed"},
        StepWaitApprovalRequest{"run-a", "build"},
        StepApproveRequest{"run-a", "build"},
        AclGrantRequest{"ops.*", "read", "alerts"},
        AclRevokeRequest{"ops.*", "read", "alerts"},
        AclListRequest{"alice", "read", "a*", 10},
        BackupRequest{"nightly.db"},
        ByeRequest{},
    };
}

std::variant<Envelope, DecodeFailure> decode(std::string_view frame) {
    return decode_request(frame, k_default_max_frame);
}

template <typename T>
T round_trip(const T& request, const std::optional<PackedValue>& id = std::nullopt) {
    const auto frame = encode_request(Request{request}, id);
    auto decoded = decode(frame);
    if (const auto* failure = std::get_if<DecodeFailure>(&decoded)) {
        ADD_FAILURE() << "round trip failed: " << errc_name(failure->error.code) << ": " << failure->error.message;
        return T{};
    }
    const auto& envelope = std::get<Envelope>(decoded);
    EXPECT_EQ(envelope.id, id);
    const auto* result = std::get_if<T>(&envelope.request);
    if (result == nullptr) {
        ADD_FAILURE() << "decoded as op " << op_name(op_of(envelope.request));
        return T{};
    }
    return *result;
}

// The failure a frame must decode to; fails the test when it decodes.
DecodeFailure failure_of(std::string_view frame, std::size_t max_frame = k_default_max_frame) {
    auto decoded = decode_request(frame, max_frame);
    if (auto* failure = std::get_if<DecodeFailure>(&decoded)) return *failure;
    ADD_FAILURE() << "frame decoded as op " << op_name(op_of(std::get<Envelope>(decoded).request))
                  << " but should have been rejected";
    return DecodeFailure{{Errc::internal, "decoded"}, std::nullopt};
}

void expect_rejected(std::string_view frame, Errc code, std::string_view message_part = {}) {
    const auto failure = failure_of(frame);
    EXPECT_EQ(errc_name(failure.error.code), errc_name(code)) << failure.error.message;
    EXPECT_FALSE(failure.error.message.empty());
    if (!message_part.empty()) {
        EXPECT_NE(failure.error.message.find(message_part), std::string::npos)
            << "'" << failure.error.message << "' should mention '" << message_part << "'";
    }
}

std::string ping_frame() { return Frame().with("op", "ping").str(); }

// ---- round trips

TEST(CodecRoundTrip, EveryOpHasASampleThatRoundTripsByteForByte) {
    const auto samples = sample_requests();
    ASSERT_EQ(samples.size(), std::variant_size_v<Request>);
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const auto& request = samples[i];
        ASSERT_EQ(request.index(), i) << "samples follow the order of Request";
        const auto frame = encode_request(request, pack_as_value(i));
        auto decoded = decode(frame);
        ASSERT_TRUE(std::holds_alternative<Envelope>(decoded))
            << op_name(op_of(request)) << ": " << std::get<DecodeFailure>(decoded).error.message;
        const auto& envelope = std::get<Envelope>(decoded);
        EXPECT_EQ(op_of(envelope.request), op_of(request));
        EXPECT_EQ(encode_request(envelope.request, envelope.id), frame) << op_name(op_of(request));
    }
}

TEST(CodecRoundTrip, OpNamesMapBothWays) {
    std::set<std::string_view> names;
    for (std::size_t i = 0; i < std::variant_size_v<Request>; ++i) {
        const auto op = static_cast<Op>(i);
        const auto name = op_name(op);
        EXPECT_NE(name, "?");
        EXPECT_EQ(op_from_name(name), op);
        names.insert(name);
    }
    EXPECT_EQ(names.size(), std::variant_size_v<Request>);
    EXPECT_FALSE(op_from_name("Publish").has_value());
}

TEST(CodecRoundTrip, SessionRequestsKeepTheirFields) {
    EXPECT_EQ(round_trip(HelloRequest{"alice"}).bot, "alice");
    round_trip(PingRequest{});
    round_trip(StatsRequest{});
    EXPECT_EQ(round_trip(FeedSyncRequest{"tok-1"}).token, "tok-1");
}

TEST(CodecRoundTrip, ChannelRequestsKeepTheirFields) {
    const auto created = round_trip(ChannelCreateRequest{"general", "all hands"});
    EXPECT_EQ(created.name, "general");
    EXPECT_EQ(created.description, std::optional<std::string>("all hands"));
    EXPECT_FALSE(round_trip(ChannelCreateRequest{"general", std::nullopt}).description.has_value());
    EXPECT_EQ(round_trip(ChannelDeleteRequest{"old"}).name, "old");
    round_trip(ChannelListRequest{});
}

TEST(CodecRoundTrip, SubscriptionRequestsKeepTheirFields) {
    const auto sub = round_trip(SubscribeRequest{"general", "bob"});
    EXPECT_EQ(sub.channel, "general");
    EXPECT_EQ(sub.bot, std::optional<std::string>("bob"));
    EXPECT_FALSE(round_trip(SubscribeRequest{"general", std::nullopt}).bot.has_value());

    const auto unsub = round_trip(UnsubscribeRequest{"general", "bob"});
    EXPECT_EQ(unsub.channel, "general");
    EXPECT_EQ(unsub.bot, std::optional<std::string>("bob"));
    EXPECT_FALSE(round_trip(UnsubscribeRequest{"general", std::nullopt}).bot.has_value());

    EXPECT_EQ(round_trip(SubscriptionsRequest{"bob"}).bot, std::optional<std::string>("bob"));
    EXPECT_FALSE(round_trip(SubscriptionsRequest{std::nullopt}).bot.has_value());
    EXPECT_EQ(round_trip(SubscribersRequest{"general"}).channel, "general");
}

TEST(CodecRoundTrip, PublishKeepsEveryField) {
    const auto full = round_trip(PublishRequest{"general", "note", sample_body(), "key-1", 42});
    EXPECT_EQ(full.channel, "general");
    EXPECT_EQ(full.type, std::optional<std::string>("note"));
    EXPECT_EQ(full.body, sample_body());
    EXPECT_EQ(full.idempotency_key, std::optional<std::string>("key-1"));
    EXPECT_EQ(full.reply_to, std::optional<std::uint64_t>(42));

    const auto minimal = round_trip(PublishRequest{"general", std::nullopt, pack_as_value("hi"), std::nullopt,
                                                   std::nullopt});
    EXPECT_EQ(minimal.channel, "general");
    EXPECT_FALSE(minimal.type.has_value());
    EXPECT_EQ(minimal.body, pack_as_value("hi"));
    EXPECT_FALSE(minimal.idempotency_key.has_value());
    EXPECT_FALSE(minimal.reply_to.has_value());
}

TEST(CodecRoundTrip, SendKeepsEveryField) {
    const auto full = round_trip(SendRequest{"bob", "note", sample_body(), "key-2", 7, 60000});
    EXPECT_EQ(full.to, "bob");
    EXPECT_EQ(full.type, std::optional<std::string>("note"));
    EXPECT_EQ(full.body, sample_body());
    EXPECT_EQ(full.idempotency_key, std::optional<std::string>("key-2"));
    EXPECT_EQ(full.reply_to, std::optional<std::uint64_t>(7));
    EXPECT_EQ(full.ttl_ms, std::optional<std::uint64_t>(60000));

    const auto nil = pack_as_value(msgpack::type::nil_t{});
    const auto minimal = round_trip(SendRequest{"bob", std::nullopt, nil, std::nullopt, std::nullopt, std::nullopt});
    EXPECT_EQ(minimal.body, nil);  // a nil body is still a body
    EXPECT_FALSE(minimal.type.has_value());
    EXPECT_FALSE(minimal.reply_to.has_value());
    EXPECT_FALSE(minimal.ttl_ms.has_value());
}

TEST(CodecRoundTrip, BodiesOfEveryMsgpackKindSurvive) {
    const std::vector<PackedValue> bodies = {
        pack_as_value(true),
        pack_as_value(-5),
        pack_as_value(std::numeric_limits<std::uint64_t>::max()),
        pack_as_value(2.5),
        pack_as_value(std::string(70000, 'x')),
        pack_as_value(std::vector<char>{'\0', '\x7f'}),  // bin
        pack_as_value(std::vector<std::string>{"a", "b"}),
    };
    for (const auto& body : bodies) {
        EXPECT_EQ(round_trip(PublishRequest{"c", std::nullopt, body, std::nullopt, std::nullopt}).body, body);
    }
}

TEST(CodecRoundTrip, HistoryAndAckKeepEveryField) {
    const auto full = round_trip(HistoryRequest{"general", "bob", true, "alice", 1, 99, 10, "desc"});
    EXPECT_EQ(full.channel, std::optional<std::string>("general"));
    EXPECT_EQ(full.peer, std::optional<std::string>("bob"));
    EXPECT_EQ(full.inbox, std::optional<bool>(true));
    EXPECT_EQ(full.bot, std::optional<std::string>("alice"));
    EXPECT_EQ(full.after, std::optional<std::uint64_t>(1));
    EXPECT_EQ(full.before, std::optional<std::uint64_t>(99));
    EXPECT_EQ(full.limit, std::optional<std::uint64_t>(10));
    EXPECT_EQ(full.order, std::optional<std::string>("desc"));

    const auto minimal = round_trip(HistoryRequest{});
    EXPECT_FALSE(minimal.channel || minimal.peer || minimal.inbox || minimal.bot || minimal.after ||
                 minimal.before || minimal.limit || minimal.order);
    EXPECT_EQ(round_trip(HistoryRequest{std::nullopt, std::nullopt, false, std::nullopt, std::nullopt, std::nullopt,
                                        std::nullopt, std::nullopt})
                  .inbox,
              std::optional<bool>(false));

    EXPECT_EQ(round_trip(AckRequest{0, std::nullopt}).upto, 0U);
    EXPECT_EQ(round_trip(AckRequest{std::numeric_limits<std::uint64_t>::max(), std::nullopt}).upto,
              std::numeric_limits<std::uint64_t>::max());
}

TEST(CodecRoundTrip, IntegerAndStringIdsSurvive) {
    round_trip(PingRequest{}, pack_as_value(7));
    round_trip(PingRequest{}, pack_as_value(-3));
    round_trip(PingRequest{}, pack_as_value(std::numeric_limits<std::uint64_t>::max()));
    round_trip(PingRequest{}, pack_as_value("req-1"));
    round_trip(PingRequest{}, pack_as_value(std::string(256, 'i')));
    round_trip(PingRequest{}, std::nullopt);
}

TEST(CodecRoundTrip, EncodedRequestLeavesAbsentOptionalsOut) {
    const auto frame = encode_request(ChannelCreateRequest{"general", std::nullopt});
    const auto handle = msgpack::unpack(frame.data(), frame.size());
    const auto& map = handle.get();
    ASSERT_EQ(map.type, msgpack::type::MAP);
    std::set<std::string> keys;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) keys.insert(map.via.map.ptr[i].key.as<std::string>());
    EXPECT_TRUE(keys.contains("op"));
    EXPECT_TRUE(keys.contains("name"));
    EXPECT_FALSE(keys.contains("description"));
    EXPECT_FALSE(keys.contains("id"));
}

TEST(CodecRoundTrip, VersionOneIsAccepted) {
    const auto decoded = decode(Frame().with("op", "ping").with("v", 1).str());
    EXPECT_TRUE(std::holds_alternative<Envelope>(decoded));
}

TEST(CodecRoundTrip, UnknownKeysAreIgnored) {
    const auto decoded = decode(Frame().with("op", "hello").with("bot", "alice").with("colour", "blue").str());
    ASSERT_TRUE(std::holds_alternative<Envelope>(decoded));
    EXPECT_EQ(std::get<HelloRequest>(std::get<Envelope>(decoded).request).bot, "alice");
}

// ---- nil means absent

TEST(CodecNil, NilForAnOptionalFieldMeansAbsent) {
    auto decoded = decode(Frame().with("op", "channel.create").with("name", "x").with_nil("description").str());
    ASSERT_TRUE(std::holds_alternative<Envelope>(decoded));
    EXPECT_FALSE(std::get<ChannelCreateRequest>(std::get<Envelope>(decoded).request).description.has_value());

    decoded = decode(Frame()
                         .with("op", "history")
                         .with("channel", "x")
                         .with_nil("peer")
                         .with_nil("inbox")
                         .with_nil("bot")
                         .with_nil("after")
                         .with_nil("before")
                         .with_nil("limit")
                         .with_nil("order")
                         .str());
    ASSERT_TRUE(std::holds_alternative<Envelope>(decoded));
    const auto& history = std::get<HistoryRequest>(std::get<Envelope>(decoded).request);
    EXPECT_EQ(history.channel, std::optional<std::string>("x"));
    EXPECT_FALSE(history.peer || history.inbox || history.bot || history.after || history.before || history.limit ||
                 history.order);

    decoded = decode(Frame()
                         .with("op", "publish")
                         .with("channel", "x")
                         .with("body", 1)
                         .with_nil("type")
                         .with_nil("idempotency_key")
                         .with_nil("reply_to")
                         .str());
    ASSERT_TRUE(std::holds_alternative<Envelope>(decoded));
    const auto& publish = std::get<PublishRequest>(std::get<Envelope>(decoded).request);
    EXPECT_FALSE(publish.type || publish.idempotency_key || publish.reply_to);
}

TEST(CodecNil, NilIdAndVersionMeanAbsent) {
    const auto decoded = decode(Frame().with("op", "ping").with_nil("id").with_nil("v").str());
    ASSERT_TRUE(std::holds_alternative<Envelope>(decoded));
    EXPECT_FALSE(std::get<Envelope>(decoded).id.has_value());
}

TEST(CodecNil, NilForARequiredFieldIsRejected) {
    const auto failure = failure_of(Frame().with("op", "hello").with_nil("bot").str());
    EXPECT_TRUE(failure.error.code == Errc::invalid_field || failure.error.code == Errc::missing_field)
        << errc_name(failure.error.code);
    EXPECT_NE(failure.error.message.find("bot"), std::string::npos) << failure.error.message;
}

// ---- rejections

TEST(CodecRejects, EmptyFrameAsBadRequest) { expect_rejected("", Errc::bad_request); }

TEST(CodecRejects, OversizeFrameAsFrameTooLarge) {
    const auto frame = ping_frame();
    const auto failure = failure_of(frame, frame.size() - 1);
    EXPECT_EQ(failure.error.code, Errc::frame_too_large) << failure.error.message;
    EXPECT_TRUE(std::holds_alternative<Envelope>(decode_request(frame, frame.size())));  // the limit is inclusive
}

TEST(CodecRejects, BytesThatAreNotMsgpackAsBadRequest) {
    expect_rejected(std::string("\xc1", 1), Errc::bad_request);           // a byte msgpack never uses
    expect_rejected(std::string("\x82\xa2op", 4), Errc::bad_request);     // cut short
    expect_rejected(std::string("\xdf\xff\xff\xff\xff", 5), Errc::bad_request);  // map of 4G entries, no bytes
    expect_rejected(std::string("\xdd\xff\xff\xff\xff", 5), Errc::bad_request);  // array of 4G entries
    expect_rejected("hello botbus", Errc::bad_request);
}

TEST(CodecRejects, TrailingBytesAsBadRequest) {
    expect_rejected(ping_frame() + std::string("\x00", 1), Errc::bad_request, "trailing");
    expect_rejected(ping_frame() + ping_frame(), Errc::bad_request, "trailing");
}

TEST(CodecRejects, ArrayInsteadOfMapAsBadRequest) {
    msgpack::sbuffer out;
    msgpack::pack(out, std::vector<std::string>{"op", "ping"});
    expect_rejected(std::string(out.data(), out.size()), Errc::bad_request, "map");
    expect_rejected(std::string("\x2a", 1), Errc::bad_request, "map");  // the integer 42
}

TEST(CodecRejects, MissingOpAsMissingField) {
    expect_rejected(Frame().with("bot", "alice").str(), Errc::missing_field, "op");
    expect_rejected(Frame().str(), Errc::missing_field, "op");
}

TEST(CodecRejects, OpThatIsNotAStringAsInvalidField) {
    expect_rejected(Frame().with("op", 3).str(), Errc::invalid_field, "op");
    expect_rejected(Frame().with_nil("op").str(), Errc::invalid_field, "op");
}

TEST(CodecRejects, UnknownOpAsUnknownOp) {
    expect_rejected(Frame().with("op", "launch").str(), Errc::unknown_op, "launch");
    expect_rejected(Frame().with("op", "PING").str(), Errc::unknown_op);
    expect_rejected(Frame().with("op", "").str(), Errc::unknown_op);
}

TEST(CodecRejects, MissingRequiredFieldAsMissingFieldNamingIt) {
    expect_rejected(Frame().with("op", "hello").str(), Errc::missing_field, "bot");
    expect_rejected(Frame().with("op", "channel.create").str(), Errc::missing_field, "name");
    expect_rejected(Frame().with("op", "publish").with("channel", "c").str(), Errc::missing_field, "body");
    expect_rejected(Frame().with("op", "send").with("body", 1).str(), Errc::missing_field, "to");
    expect_rejected(Frame().with("op", "dlq.replay").str(), Errc::missing_field, "seq");
    expect_rejected(Frame().with("op", "feed.sync").str(), Errc::missing_field, "token");
}

TEST(CodecRejects, WrongTypeAsInvalidFieldNamingIt) {
    expect_rejected(Frame().with("op", "hello").with("bot", 5).str(), Errc::invalid_field, "bot");
    expect_rejected(Frame().with("op", "publish").with("channel", true).with("body", 1).str(), Errc::invalid_field,
                    "channel");
    expect_rejected(Frame().with("op", "ack").with("upto", "12").str(), Errc::invalid_field, "upto");
    expect_rejected(Frame().with("op", "ack").with("upto", -1).str(), Errc::invalid_field, "upto");
    expect_rejected(Frame().with("op", "ack").with("upto", 1.5).str(), Errc::invalid_field, "upto");
    expect_rejected(Frame().with("op", "ack").with("seqs", 3).str(), Errc::invalid_field, "seqs");
    expect_rejected(Frame().with("op", "ack").with("seqs", std::vector<std::string>{"1"}).str(), Errc::invalid_field,
                    "seqs");
    expect_rejected(Frame().with("op", "ack").with("seqs", std::vector<std::uint64_t>(1001, 1)).str(),
                    Errc::invalid_field, "at most 1000");
    expect_rejected(Frame().with("op", "send").with("to", "bob").with("body", 1).with("ttl_ms", -5).str(),
                    Errc::invalid_field, "ttl_ms");
    expect_rejected(Frame().with("op", "history").with("inbox", "yes").str(), Errc::invalid_field, "inbox");
    expect_rejected(Frame().with("op", "history").with("channel", "c").with("order", 1).str(), Errc::invalid_field,
                    "order");
    expect_rejected(Frame().with("op", "channel.create").with("name", "c").with("description", 1).str(),
                    Errc::invalid_field, "description");
}

TEST(CodecRejects, BadIdempotencyKeyAsInvalidField) {
    const auto publish = [](const std::string& key) {
        return Frame().with("op", "publish").with("channel", "c").with("body", 1).with("idempotency_key", key).str();
    };
    expect_rejected(publish(""), Errc::invalid_field, "idempotency_key");
    expect_rejected(publish(std::string(k_max_idempotency_key_length + 1, 'k')), Errc::invalid_field,
                    "idempotency_key");
    EXPECT_TRUE(std::holds_alternative<Envelope>(decode(publish(std::string(k_max_idempotency_key_length, 'k')))));
}

TEST(CodecRejects, InvalidNamesAsInvalidName) {
    const std::vector<std::string> bad_names = {"a/b",         "",      std::string(129, 'n'), "h\xc3\xa9llo",
                                                "a b",         "a\nb", std::string("nul\0l", 5)};
    for (const auto& bad : bad_names) {
        expect_rejected(Frame().with("op", "channel.create").with("name", bad).str(), Errc::invalid_name, "name");
        expect_rejected(Frame().with("op", "send").with("to", bad).with("body", 1).str(), Errc::invalid_name, "to");
    }
    expect_rejected(Frame().with("op", "publish").with("channel", "c").with("type", "a/b").with("body", 1).str(),
                    Errc::invalid_name, "type");
    expect_rejected(Frame().with("op", "subscribe").with("channel", "c").with("bot", "x/y").str(), Errc::invalid_name,
                    "bot");
}

TEST(CodecRejects, NothingButValidNamesPass) {
    const std::string longest(128, 'n');
    EXPECT_TRUE(is_valid_name(longest));
    EXPECT_TRUE(is_valid_name("Az09._:-"));
    const auto decoded = decode(Frame().with("op", "channel.create").with("name", longest).str());
    ASSERT_TRUE(std::holds_alternative<Envelope>(decoded));
    EXPECT_EQ(std::get<ChannelCreateRequest>(std::get<Envelope>(decoded).request).name, longest);
}

TEST(CodecRejects, VersionTwoAsUnsupportedVersionEchoingTheId) {
    const auto failure = failure_of(Frame().with("op", "ping").with("v", 2).with("id", 9).str());
    EXPECT_EQ(failure.error.code, Errc::unsupported_version);
    EXPECT_EQ(failure.id, std::optional<PackedValue>(pack_as_value(9)));
    expect_rejected(Frame().with("op", "ping").with("v", "1").str(), Errc::unsupported_version);
    expect_rejected(Frame().with("op", "ping").with("v", 0).str(), Errc::unsupported_version);
}

TEST(CodecRejects, IdOfTheWrongTypeAsInvalidField) {
    expect_rejected(Frame().with("op", "ping").with("id", std::vector<int>{1, 2}).str(), Errc::invalid_field, "id");
    expect_rejected(Frame().with("op", "ping").with("id", true).str(), Errc::invalid_field, "id");
    expect_rejected(Frame().with("op", "ping").with("id", 1.5).str(), Errc::invalid_field, "id");
    expect_rejected(Frame().with("op", "ping").with("id", std::string(257, 'i')).str(), Errc::invalid_field, "id");
}

TEST(CodecRejects, FailuresPastTheIdCarryItForTheReply) {
    EXPECT_EQ(failure_of(Frame().with("id", "r1").with("op", "launch").str()).id,
              std::optional<PackedValue>(pack_as_value("r1")));
    EXPECT_EQ(failure_of(Frame().with("op", "hello").with("id", 4).str()).id,
              std::optional<PackedValue>(pack_as_value(4)));
    EXPECT_FALSE(failure_of(Frame().with("op", "hello").str()).id.has_value());
}

TEST(CodecRejects, DeepNestingAsBadRequest) {
    std::string body(200, '\x91');  // 200 nested one-element arrays
    body.push_back('\xc0');
    Frame frame;
    frame.with("op", "publish").with("channel", "c");
    std::string bytes = frame.str();
    bytes[0] = '\x83';  // one more entry, packed by hand
    msgpack::sbuffer key;
    msgpack::pack(key, "body");
    bytes.append(key.data(), key.size());
    bytes += body;
    expect_rejected(bytes, Errc::bad_request);
}

// ---- replies

TEST(CodecReply, OkReplyEchoesAnIntegerId) {
    ReplyBuilder b;
    b.field("seq", std::uint64_t{5});
    const auto reply = decode_reply(b.finish_ok(pack_as_value(42)));
    ASSERT_TRUE(reply.has_value());
    EXPECT_TRUE(reply->ok);
    EXPECT_EQ(reply->id, std::optional<std::uint64_t>(42));
    const auto* seq = reply->find("seq");
    ASSERT_NE(seq, nullptr);
    EXPECT_EQ(seq->as<std::uint64_t>(), 5U);
    EXPECT_EQ(reply->find("missing"), nullptr);
}

TEST(CodecReply, OkReplyEchoesAStringIdVerbatim) {
    ReplyBuilder b;
    const auto reply = decode_reply(b.finish_ok(pack_as_value("req-9")));
    ASSERT_TRUE(reply.has_value());
    EXPECT_TRUE(reply->ok);
    const auto* id = reply->find("id");
    ASSERT_NE(id, nullptr);
    ASSERT_EQ(id->type, msgpack::type::STR);
    EXPECT_EQ(id->as<std::string>(), "req-9");
    EXPECT_EQ(pack_value(*id), pack_as_value("req-9"));
}

TEST(CodecReply, ReplyWithoutIdHasNoIdKey) {
    const auto ok = decode_reply(ReplyBuilder().finish_ok(std::nullopt));
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(ok->find("id"), nullptr);
    const auto error = decode_reply(encode_error_reply(std::nullopt, {Errc::internal, "x"}));
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->find("id"), nullptr);
}

TEST(CodecReply, ErrorReplyCarriesCodeMessageAndId) {
    const auto reply = decode_reply(encode_error_reply(pack_as_value(3), {Errc::conflict, "channel exists"}));
    ASSERT_TRUE(reply.has_value());
    EXPECT_FALSE(reply->ok);
    EXPECT_EQ(reply->id, std::optional<std::uint64_t>(3));
    EXPECT_EQ(reply->error, Errc::conflict);
    EXPECT_EQ(reply->error_name, "conflict");
    EXPECT_EQ(reply->message, "channel exists");

    const auto with_string_id = decode_reply(encode_error_reply(pack_as_value("abc"), {Errc::not_found, "gone"}));
    ASSERT_TRUE(with_string_id.has_value());
    EXPECT_EQ(with_string_id->find("id")->as<std::string>(), "abc");
    EXPECT_EQ(with_string_id->error, Errc::not_found);
}

TEST(CodecReply, EveryErrorCodeSurvivesByName) {
    for (int i = 0; i <= static_cast<int>(Errc::internal); ++i) {
        const auto code = static_cast<Errc>(i);
        EXPECT_EQ(errc_from_name(errc_name(code)), code);
        const auto reply = decode_reply(encode_error_reply(std::nullopt, {code, "m"}));
        ASSERT_TRUE(reply.has_value());
        EXPECT_EQ(reply->error, code) << errc_name(code);
    }
}

TEST(CodecReply, UnknownErrorCodeKeepsItsNameAndReadsAsInternal) {
    Frame frame;
    frame.with("ok", false).with("error", "brand_new").with("message", "from the future");
    const auto reply = decode_reply(frame.str());
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->error, Errc::internal);
    EXPECT_EQ(reply->error_name, "brand_new");
    EXPECT_EQ(reply->message, "from the future");
}

TEST(CodecReply, FramesThatAreNotRepliesDecodeToNothing) {
    EXPECT_FALSE(decode_reply("").has_value());
    EXPECT_FALSE(decode_reply(std::string("\xc1", 1)).has_value());
    EXPECT_FALSE(decode_reply(std::string("\x93\x01\x02\x03", 4)).has_value());
    EXPECT_FALSE(decode_reply(Frame().with("seq", 1).str()).has_value());  // a push: no ok
    EXPECT_FALSE(decode_reply(Frame().with("ok", 1).str()).has_value());
    EXPECT_FALSE(decode_reply(std::string("\xdd\xff\xff\xff\xff", 5)).has_value());
}

TEST(CodecReply, FailureOfADecodedRequestBecomesAReplyWithItsId) {
    const auto failure = failure_of(Frame().with("op", "launch").with("id", 77).str());
    const auto reply = decode_reply(encode_error_reply(failure.id, failure.error));
    ASSERT_TRUE(reply.has_value());
    EXPECT_FALSE(reply->ok);
    EXPECT_EQ(reply->id, std::optional<std::uint64_t>(77));
    EXPECT_EQ(reply->error, Errc::unknown_op);
}

// ---- messages

Message decode_packed_message(const std::string& bytes) {
    const auto handle = msgpack::unpack(bytes.data(), bytes.size());
    auto message = decode_message(handle.get());
    if (!message) {
        ADD_FAILURE() << "message did not decode";
        return {};
    }
    return *message;
}

TEST(CodecMessage, ChannelMessageRoundTrips) {
    const auto body = pack_as_value(std::vector<int>{1, 2, 3});
    MessageView view;
    view.seq = 41;
    view.stream_seq = 5;
    view.ts_us = 1'795'766'400'000'000;
    view.from = "alice";
    view.channel = "general";
    view.type = "note";
    view.body = body.bytes;
    view.reply_to = 40;

    const auto m = decode_packed_message(encode_message_event(view, "message"));
    EXPECT_EQ(m.event, "message");
    EXPECT_EQ(m.seq, 41U);
    EXPECT_EQ(m.stream_seq, 5U);
    EXPECT_EQ(m.ts_us, view.ts_us);
    EXPECT_EQ(m.from, "alice");
    EXPECT_EQ(m.channel, std::optional<std::string>("general"));
    EXPECT_FALSE(m.to.has_value());
    EXPECT_EQ(m.type, "note");
    EXPECT_EQ(m.body, body);
    EXPECT_EQ(m.reply_to, std::optional<std::uint64_t>(40));
}

TEST(CodecMessage, DirectMessageRoundTripsWithItsMailboxSeq) {
    const auto body = pack_as_value("psst");
    MessageView view;
    view.seq = 9;
    view.stream_seq = 3;
    view.ts_us = 12345;
    view.from = "alice";
    view.to = "bob";
    view.type = "text";
    view.body = body.bytes;

    msgpack::sbuffer out;
    pack_message(out, view);
    const std::string bytes(out.data(), out.size());
    const auto m = decode_packed_message(bytes);
    EXPECT_EQ(m.event, "");
    EXPECT_EQ(m.seq, 9U);
    EXPECT_EQ(m.stream_seq, 3U);
    EXPECT_EQ(m.ts_us, 12345);
    EXPECT_EQ(m.from, "alice");
    EXPECT_EQ(m.to, std::optional<std::string>("bob"));
    EXPECT_FALSE(m.channel.has_value());
    EXPECT_EQ(m.type, "text");
    EXPECT_EQ(m.body, body);
    EXPECT_FALSE(m.reply_to.has_value());

    // On the wire: "to" and "mailbox_seq", never "channel" or "reply_to".
    const auto handle = msgpack::unpack(bytes.data(), bytes.size());
    std::set<std::string> keys;
    for (std::uint32_t i = 0; i < handle.get().via.map.size; ++i) {
        keys.insert(handle.get().via.map.ptr[i].key.as<std::string>());
    }
    EXPECT_EQ(keys, (std::set<std::string>{"seq", "ts", "from", "type", "body", "to", "mailbox_seq"}));
}

TEST(CodecMessage, MessagesInsideAReplyDecode) {
    const auto body = pack_as_value(1);
    MessageView view;
    view.seq = 2;
    view.stream_seq = 1;
    view.from = "alice";
    view.channel = "c";
    view.type = "text";
    view.body = body.bytes;
    ReplyBuilder b;
    b.key("messages").pack_array(2);
    pack_message(b.buffer(), view);
    view.seq = 3;
    view.stream_seq = 2;
    pack_message(b.buffer(), view);
    b.field("more", false);

    const auto reply = decode_reply(b.finish_ok(pack_as_value(1)));
    ASSERT_TRUE(reply.has_value());
    const auto* messages = reply->find("messages");
    ASSERT_NE(messages, nullptr);
    ASSERT_EQ(messages->type, msgpack::type::ARRAY);
    ASSERT_EQ(messages->via.array.size, 2U);
    const auto second = decode_message(messages->via.array.ptr[1]);
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(second->seq, 3U);
    EXPECT_EQ(second->stream_seq, 2U);
    EXPECT_FALSE(reply->find("more")->as<bool>());
}

TEST(CodecMessage, MapsMissingSeqFromOrBodyAreNoMessages) {
    const auto check = [](const std::string& bytes) {
        const auto handle = msgpack::unpack(bytes.data(), bytes.size());
        return decode_message(handle.get()).has_value();
    };
    EXPECT_FALSE(check(Frame().with("from", "a").with("body", 1).str()));
    EXPECT_FALSE(check(Frame().with("seq", 1).with("body", 1).str()));
    EXPECT_FALSE(check(Frame().with("seq", 1).with("from", "a").str()));
    EXPECT_FALSE(check(Frame().with("seq", "1").with("from", "a").with("body", 1).str()));
    EXPECT_TRUE(check(Frame().with("seq", 1).with("from", "a").with("body", 1).str()));
    msgpack::sbuffer array;
    msgpack::pack(array, std::vector<int>{1});
    EXPECT_FALSE(check(std::string(array.data(), array.size())));
}

// ---- hostile input: nothing throws, everything bad is an error result

std::string random_bytes(std::mt19937& rng, std::size_t max_size) {
    std::uniform_int_distribution<std::size_t> size(0, max_size);
    std::uniform_int_distribution<int> byte(0, 255);
    std::string s(size(rng), '\0');
    for (auto& c : s) c = static_cast<char>(byte(rng));
    return s;
}

TEST(CodecHostileInput, RandomBytesAreRejectedWithoutThrowing) {
    std::mt19937 rng(20240611);
    const std::string map_start("\x82\xa2op", 4);  // get past the first checks now and then
    for (int i = 0; i < 600; ++i) {
        std::string frame = random_bytes(rng, 96);
        if (i % 3 == 0) frame = map_start + frame;
        std::variant<Envelope, DecodeFailure> decoded;
        ASSERT_NO_THROW(decoded = decode_request(frame, 64)) << "input #" << i;
        EXPECT_TRUE(std::holds_alternative<DecodeFailure>(decoded)) << "input #" << i;
        EXPECT_NO_THROW(decode_reply(frame)) << "input #" << i;
    }
}

TEST(CodecHostileInput, EveryTruncationOfAValidFrameIsRejected) {
    for (const auto& request : sample_requests()) {
        const auto frame = encode_request(request, pack_as_value("id-1"));
        for (std::size_t cut = 0; cut < frame.size(); ++cut) {
            std::variant<Envelope, DecodeFailure> decoded;
            ASSERT_NO_THROW(decoded = decode(std::string_view(frame).substr(0, cut)));
            ASSERT_TRUE(std::holds_alternative<DecodeFailure>(decoded))
                << op_name(op_of(request)) << " cut at " << cut;
            EXPECT_EQ(std::get<DecodeFailure>(decoded).error.code, Errc::bad_request);
        }
    }
}

TEST(CodecHostileInput, MutatedFramesNeverThrow) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> byte(0, 255);
    for (const auto& request : sample_requests()) {
        const auto frame = encode_request(request, pack_as_value(1));
        std::uniform_int_distribution<std::size_t> position(0, frame.size() - 1);
        for (int i = 0; i < 150; ++i) {
            auto mutated = frame;
            for (int flips = 1 + i % 3; flips > 0; --flips) mutated[position(rng)] = static_cast<char>(byte(rng));
            std::variant<Envelope, DecodeFailure> decoded;
            ASSERT_NO_THROW(decoded = decode(mutated));
            if (const auto* envelope = std::get_if<Envelope>(&decoded)) {
                // Whatever decodes is a request the encoder can write again.
                std::string again;
                ASSERT_NO_THROW(again = encode_request(envelope->request, envelope->id));
                EXPECT_TRUE(std::holds_alternative<Envelope>(decode(again)));
            } else {
                EXPECT_FALSE(std::get<DecodeFailure>(decoded).error.message.empty());
            }
        }
    }
}

TEST(CodecHostileInput, TruncatedAndMutatedRepliesNeverThrow) {
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> byte(0, 255);
    MessageView view;
    const auto body = sample_body();
    view.seq = 1;
    view.from = "a";
    view.channel = "c";
    view.type = "t";
    view.body = body.bytes;
    ReplyBuilder b;
    b.key("messages").pack_array(1);
    pack_message(b.buffer(), view);
    const std::vector<std::string> replies = {b.finish_ok(pack_as_value(5)),
                                              encode_error_reply(pack_as_value("x"), {Errc::conflict, "m"})};
    for (const auto& reply : replies) {
        for (std::size_t cut = 0; cut < reply.size(); ++cut) {
            ASSERT_NO_THROW(decode_reply(std::string_view(reply).substr(0, cut)));
        }
        std::uniform_int_distribution<std::size_t> position(0, reply.size() - 1);
        for (int i = 0; i < 200; ++i) {
            auto mutated = reply;
            mutated[position(rng)] = static_cast<char>(byte(rng));
            std::optional<Reply> decoded;
            ASSERT_NO_THROW(decoded = decode_reply(mutated));
            if (decoded) {
                const auto* messages = decoded->find("messages");
                if (messages != nullptr && messages->type == msgpack::type::ARRAY) {
                    for (std::uint32_t m = 0; m < messages->via.array.size; ++m) {
                        ASSERT_NO_THROW(decode_message(messages->via.array.ptr[m]));
                    }
                }
            }
        }
    }
}

}  // namespace
