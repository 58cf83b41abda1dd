// Unit tests of the mailbox and guard rules of bus::CommandHandler on a
// :memory: store: the depth (loop) guard, the rate (flood) guard, send's
// ttl_ms, ack by seqs, and the mailbox, dlq.list and dlq.replay ops. Time is
// a fake clock; nothing sleeps.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bus/protocol/codec.hpp"
#include "bus/core/handler.hpp"
#include "store/payloads.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "handler_support.hpp"

using namespace botbus::bus;
namespace store = botbus::store;

namespace {

using botbus::testing::as;
using botbus::testing::k_anonymous;

constexpr std::int64_t k_start = 1'700'000'000'000'000;
constexpr std::uint64_t k_one_year_ms = 365ULL * 24 * 3600 * 1000;

msgpack::object map_field(const msgpack::object& map, std::string_view key) {
    if (map.type == msgpack::type::MAP) {
        for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
            const auto& k = map.via.map.ptr[i].key;
            if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
                return map.via.map.ptr[i].val;
            }
        }
    }
    ADD_FAILURE() << "map has no key '" << key << "'";
    return msgpack::object();
}

bool has_key(const msgpack::object& map, std::string_view key) {
    if (map.type != msgpack::type::MAP) return false;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        const auto& k = map.via.map.ptr[i].key;
        if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) return true;
    }
    return false;
}

std::uint64_t u64_field(const Reply& reply, std::string_view key) {
    const auto* v = reply.find(key);
    if (v == nullptr || v->type != msgpack::type::POSITIVE_INTEGER) {
        ADD_FAILURE() << "reply has no unsigned integer '" << key << "'";
        return 0;
    }
    return v->via.u64;
}

bool bool_field(const Reply& reply, std::string_view key) {
    const auto* v = reply.find(key);
    if (v == nullptr || v->type != msgpack::type::BOOLEAN) {
        ADD_FAILURE() << "reply has no boolean '" << key << "'";
        return false;
    }
    return v->via.boolean;
}

std::string text_of(const PackedValue& body) {
    const auto handle = msgpack::unpack(body.bytes.data(), body.bytes.size());
    return handle.get().as<std::string>();
}

std::string text_of_packed(const std::string& packed) {
    const auto handle = msgpack::unpack(packed.data(), packed.size());
    return handle.get().as<std::string>();
}

struct DeadLetterEntry {
    std::uint64_t seq = 0;
    std::string bot;
    std::string reason;
    std::uint64_t deliveries = 0;
    std::int64_t ts = 0;
    std::optional<Message> message;
    std::optional<std::uint64_t> replayed_seq;
};

class MailboxHandlerTest : public ::testing::Test {
protected:
    std::int64_t m_now = k_start;
    store::SqliteStore m_store{{":memory:", store::Durability::full}};
    ServerCounters m_counters;
    std::unique_ptr<CommandHandler> m_handler;

    void SetUp() override { use_options({}); }

    // A fresh handler (and so fresh rate buckets) with these options; the
    // fake clock is always injected.
    void use_options(MessagingOptions options) {
        options.clock = [this] { return m_now; };
        m_handler = std::make_unique<CommandHandler>(m_store, m_counters, WorkflowOptions{}, std::move(options));
    }

    Reply call(const Session& session, Request request) {
        return botbus::testing::call_in_batch(*m_handler, m_store, session, std::move(request));
    }

    Reply ok(const Session& session, Request request) {
        const auto op = op_of(request);
        auto reply = call(session, std::move(request));
        EXPECT_TRUE(reply.ok) << op_name(op) << " failed: " << reply.error_name << ": " << reply.message;
        return reply;
    }

    // The request must fail with `code` and append nothing; returns the reply.
    Reply expect_error(const Session& session, Request request, Errc code) {
        const auto op = op_of(request);
        const auto before = event_count();
        auto reply = call(session, std::move(request));
        EXPECT_FALSE(reply.ok) << op_name(op) << " should have failed";
        EXPECT_EQ(reply.error_name, errc_name(code)) << op_name(op) << ": " << reply.message;
        EXPECT_FALSE(reply.message.empty());
        EXPECT_EQ(event_count(), before) << op_name(op) << " appended events although it failed";
        return reply;
    }

    std::int64_t event_count() { return m_store.stats().event_count; }

    static SendRequest send_request(const std::string& to, const std::string& text,
                                    std::optional<std::uint64_t> reply_to = std::nullopt,
                                    std::optional<std::string> key = std::nullopt,
                                    std::optional<std::uint64_t> ttl_ms = std::nullopt) {
        return SendRequest{to, std::nullopt, pack_as_value(text), std::move(key), reply_to, ttl_ms};
    }
    static PublishRequest publish_request(const std::string& channel, const std::string& text,
                                          std::optional<std::uint64_t> reply_to = std::nullopt,
                                          std::optional<std::string> key = std::nullopt) {
        return PublishRequest{channel, std::nullopt, pack_as_value(text), std::move(key), reply_to};
    }

    std::uint64_t send(const std::string& from, const std::string& to, const std::string& text,
                       std::optional<std::uint64_t> reply_to = std::nullopt) {
        return u64_field(ok(as(from), send_request(to, text, reply_to)), "seq");
    }
    std::uint64_t publish(const std::string& from, const std::string& channel, const std::string& text,
                          std::optional<std::uint64_t> reply_to = std::nullopt) {
        return u64_field(ok(as(from), publish_request(channel, text, reply_to)), "seq");
    }

    store::MessageRow message(std::uint64_t seq) {
        auto row = m_store.messages().message(seq);
        if (!row) {
            ADD_FAILURE() << "no message at seq " << seq;
            return {};
        }
        return *row;
    }

    // Appends a message.dead_lettered for `seq` the way the server does.
    std::uint64_t dead_letter(const std::string& bot, std::uint64_t seq, std::uint32_t deliveries = 3) {
        auto batch = m_store.begin();
        store::MessageDeadLettered payload;
        payload.bot = bot;
        payload.message_seq = seq;
        payload.reason = "max_deliveries: delivered " + std::to_string(deliveries) + " times without an acknowledgement";
        payload.deliveries = deliveries;
        const auto appended = batch.append({std::string(store::stream::k_dead_letters),
                                            store::EventType::message_dead_lettered,
                                            std::string(k_daemon_producer), std::nullopt, store::encode_payload(payload)});
        batch.commit();
        return appended.seq;
    }

    // The mailbox.acked payload of the newest event.
    store::MailboxAcked last_ack() {
        const auto events = m_store.read_range(m_store.last_seq() - 1, 1);
        if (events.empty() || events.back().type != store::EventType::mailbox_acked) {
            ADD_FAILURE() << "the newest event is no mailbox.acked";
            return {};
        }
        msgpack::object_handle keep_alive;
        return store::decode_payload<store::MailboxAcked>(events.back().type, events.back().payload, keep_alive);
    }

    std::vector<DeadLetterEntry> dlq_list(DlqListRequest request, bool* more = nullptr) {
        const auto reply = ok(k_anonymous, std::move(request));
        std::vector<DeadLetterEntry> entries;
        const auto* array = reply.find("dead_letters");
        if (array == nullptr || array->type != msgpack::type::ARRAY) {
            ADD_FAILURE() << "dlq.list reply has no dead_letters array";
            return entries;
        }
        for (std::uint32_t i = 0; i < array->via.array.size; ++i) {
            const auto& map = array->via.array.ptr[i];
            DeadLetterEntry e;
            e.seq = map_field(map, "seq").as<std::uint64_t>();
            e.bot = map_field(map, "bot").as<std::string>();
            e.reason = map_field(map, "reason").as<std::string>();
            e.deliveries = map_field(map, "deliveries").as<std::uint64_t>();
            e.ts = map_field(map, "ts").as<std::int64_t>();
            const auto m = map_field(map, "message");
            if (m.type != msgpack::type::NIL) e.message = decode_message(m);
            if (has_key(map, "replayed_seq")) e.replayed_seq = map_field(map, "replayed_seq").as<std::uint64_t>();
            entries.push_back(std::move(e));
        }
        if (more != nullptr) *more = bool_field(reply, "more");
        return entries;
    }
};

std::vector<std::uint64_t> dead_seqs(const std::vector<DeadLetterEntry>& entries) {
    std::vector<std::uint64_t> seqs;
    for (const auto& e : entries) seqs.push_back(e.message ? e.message->seq : 0);
    return seqs;
}

// ---- depth guard

using MailboxDepthGuard = MailboxHandlerTest;

TEST_F(MailboxDepthGuard, AnswersCarryTheConversationAndTheirHop) {
    const auto root = send("alice", "bob", "question");
    const auto first = send("bob", "alice", "answer", root);
    const auto second = send("alice", "bob", "follow-up", first);

    const auto r = message(root);
    EXPECT_FALSE(r.conversation.has_value()) << "a message that answers nothing carries no conversation";
    EXPECT_FALSE(r.hop.has_value());
    const auto a = message(first);
    EXPECT_EQ(a.reply_to, std::optional<store::Seq>(root));
    EXPECT_EQ(a.conversation, std::optional<store::Seq>(root));
    EXPECT_EQ(a.hop, std::optional<std::uint64_t>(1));
    const auto b = message(second);
    EXPECT_EQ(b.reply_to, std::optional<store::Seq>(first));
    EXPECT_EQ(b.conversation, std::optional<store::Seq>(root));
    EXPECT_EQ(b.hop, std::optional<std::uint64_t>(2));

    // The history op shows them.
    HistoryRequest h;
    h.peer = "bob";
    const auto reply = ok(as("alice"), h);
    const auto* array = reply.find("messages");
    ASSERT_NE(array, nullptr);
    ASSERT_EQ(array->type, msgpack::type::ARRAY);
    ASSERT_EQ(array->via.array.size, 3U);
    EXPECT_FALSE(has_key(array->via.array.ptr[0], "hop"));
    EXPECT_FALSE(has_key(array->via.array.ptr[0], "conversation"));
    const auto m2 = decode_message(array->via.array.ptr[2]);
    ASSERT_TRUE(m2.has_value());
    EXPECT_EQ(m2->seq, second);
    EXPECT_EQ(m2->conversation, root);
    EXPECT_EQ(m2->hop, 2U);
}

TEST_F(MailboxDepthGuard, AnswerAtMaxHopsPassesOneDeeperIsRefused) {
    auto parent = send("alice", "bob", "start");
    const auto root = parent;
    for (std::uint64_t hop = 1; hop <= k_default_max_hops; ++hop) {
        parent = send(hop % 2 == 1 ? "bob" : "alice", hop % 2 == 1 ? "alice" : "bob", "hop", parent);
        EXPECT_EQ(message(parent).hop, std::optional<std::uint64_t>(hop));
        EXPECT_EQ(message(parent).conversation, std::optional<store::Seq>(root));
    }
    const auto refused = expect_error(as("bob"), send_request("alice", "one too deep", parent), Errc::depth_exceeded);
    EXPECT_NE(refused.message.find(std::to_string(k_default_max_hops)), std::string::npos) << refused.message;
    EXPECT_EQ(refused.find("retry_after_ms"), nullptr);

    // A sibling answer higher up the chain is fine.
    const auto sibling = send("carol", "alice", "me too", root);
    EXPECT_EQ(message(sibling).hop, std::optional<std::uint64_t>(1));
}

TEST_F(MailboxDepthGuard, HopsCountAcrossPublishAndSend) {
    const auto root = publish("alice", "general", "anyone?");
    const auto a1 = send("bob", "alice", "me", root);
    const auto a2 = publish("alice", "general", "thanks bob", a1);
    const auto a3 = send("carol", "bob", "and?", a2);
    EXPECT_EQ(message(a1).hop, std::optional<std::uint64_t>(1));
    EXPECT_EQ(message(a2).hop, std::optional<std::uint64_t>(2));
    EXPECT_EQ(message(a2).channel, std::optional<std::string>("general"));
    EXPECT_EQ(message(a3).hop, std::optional<std::uint64_t>(3));
    for (const auto seq : {a1, a2, a3}) EXPECT_EQ(message(seq).conversation, std::optional<store::Seq>(root)) << seq;

    auto parent = a3;
    parent = publish("bob", "general", "4", parent);
    parent = send("alice", "carol", "5", parent);
    EXPECT_EQ(message(parent).hop, std::optional<std::uint64_t>(5));
    expect_error(as("bob"), publish_request("general", "6", parent), Errc::depth_exceeded);
    expect_error(as("bob"), send_request("carol", "6", parent), Errc::depth_exceeded);
}

TEST_F(MailboxDepthGuard, CustomMaxHops) {
    MessagingOptions options;
    options.max_hops = 1;
    use_options(options);
    const auto root = send("alice", "bob", "q");
    const auto answer = send("bob", "alice", "a", root);
    EXPECT_EQ(message(answer).hop, std::optional<std::uint64_t>(1));
    expect_error(as("alice"), send_request("bob", "a2", answer), Errc::depth_exceeded);
    expect_error(as("alice"), publish_request("general", "a2", answer), Errc::depth_exceeded);
    EXPECT_FALSE(m_store.messages().channel_exists("general")) << "a refused publish creates no channel";
}

TEST_F(MailboxDepthGuard, MaxHopsZeroRefusesEveryAnswer) {
    MessagingOptions options;
    options.max_hops = 0;
    use_options(options);
    const auto root = send("alice", "bob", "q");
    expect_error(as("bob"), send_request("alice", "a", root), Errc::depth_exceeded);
    send("bob", "alice", "not an answer");
}

// ---- rate limit

using MailboxRateLimit = MailboxHandlerTest;

TEST_F(MailboxRateLimit, OffByDefault) {
    for (int i = 0; i < 50; ++i) publish("alice", "general", std::to_string(i));
    for (int i = 0; i < 50; ++i) send("alice", "bob", std::to_string(i));
}

TEST_F(MailboxRateLimit, BurstPassesThenRefusedWithRetryAfterUntilTheClockMoves) {
    MessagingOptions options;
    options.rate_limit = RateLimit{1, 2};
    use_options(options);
    publish("alice", "general", "1");
    publish("alice", "general", "2");
    const auto refused = expect_error(as("alice"), publish_request("general", "3"), Errc::rate_limited);
    ASSERT_NE(refused.find("retry_after_ms"), nullptr);
    EXPECT_EQ(u64_field(refused, "retry_after_ms"), 1000U);

    m_now += 250'000;
    const auto still = expect_error(as("alice"), publish_request("general", "3"), Errc::rate_limited);
    EXPECT_EQ(u64_field(still, "retry_after_ms"), 750U);

    m_now += 750'000;
    publish("alice", "general", "3");
    expect_error(as("alice"), publish_request("general", "4"), Errc::rate_limited);
}

TEST_F(MailboxRateLimit, SendIsLimitedPerRecipient) {
    MessagingOptions options;
    options.rate_limit = RateLimit{2, 3};
    use_options(options);
    for (int i = 0; i < 3; ++i) send("alice", "bob", std::to_string(i));
    const auto refused = expect_error(as("alice"), send_request("bob", "over"), Errc::rate_limited);
    EXPECT_EQ(u64_field(refused, "retry_after_ms"), 500U);
    m_now += 500'000;
    send("alice", "bob", "again");
}

TEST_F(MailboxRateLimit, LimitsArePerSenderAndTarget) {
    MessagingOptions options;
    options.rate_limit = RateLimit{1, 1};
    use_options(options);
    publish("alice", "general", "1");
    send("alice", "bob", "1");
    expect_error(as("alice"), publish_request("general", "2"), Errc::rate_limited);
    expect_error(as("alice"), send_request("bob", "2"), Errc::rate_limited);

    // Another channel, another recipient, another sender: their own buckets.
    publish("alice", "random", "1");
    send("alice", "carol", "1");
    publish("bob", "general", "1");
    send("carol", "bob", "1");
    // A bot and a channel of the same name are different targets.
    publish("alice", "bob", "a channel called bob");
    send("alice", "general", "a bot called general");
    expect_error(as("alice"), publish_request("bob", "2"), Errc::rate_limited);
}

TEST_F(MailboxRateLimit, IdempotentRetryOverTheLimitIsAnsweredAsADuplicate) {
    // find_idempotent runs before the guards: a retry of an appended message
    // is not refused, and takes no token.
    MessagingOptions options;
    options.rate_limit = RateLimit{1, 1};
    use_options(options);
    const auto first = ok(as("alice"), publish_request("general", "once", std::nullopt, "k-1"));
    const auto dm = ok(as("alice"), send_request("bob", "once", std::nullopt, "k-2"));
    const auto events = event_count();

    const auto retry = ok(as("alice"), publish_request("general", "once", std::nullopt, "k-1"));
    EXPECT_TRUE(bool_field(retry, "duplicate"));
    EXPECT_EQ(u64_field(retry, "seq"), u64_field(first, "seq"));
    const auto dm_retry = ok(as("alice"), send_request("bob", "once", std::nullopt, "k-2"));
    EXPECT_TRUE(bool_field(dm_retry, "duplicate"));
    EXPECT_EQ(u64_field(dm_retry, "seq"), u64_field(dm, "seq"));
    EXPECT_EQ(event_count(), events);

    // A new key is a new message: over the limit.
    expect_error(as("alice"), publish_request("general", "new", std::nullopt, "k-3"), Errc::rate_limited);
    expect_error(as("alice"), send_request("bob", "new", std::nullopt, "k-4"), Errc::rate_limited);
}

TEST_F(MailboxRateLimit, RequestsRefusedForOtherReasonsTakeNoToken) {
    MessagingOptions options;
    options.rate_limit = RateLimit{1, 1};
    options.max_hops = 1;
    use_options(options);
    // Refused before the rate guard: bad ttl, unknown reply_to.
    expect_error(as("alice"), send_request("bob", "x", std::nullopt, std::nullopt, 0), Errc::invalid_field);
    expect_error(as("alice"), send_request("bob", "x", 9999), Errc::not_found);
    expect_error(as("alice"), publish_request("general", "x", 9999), Errc::not_found);
    const auto root = send("alice", "bob", "q");  // the token was still there
    const auto answer = send("bob", "alice", "a", root);
    // Too deep: refused by the depth guard before the rate guard.
    expect_error(as("carol"), send_request("bob", "deep", answer), Errc::depth_exceeded);
    send("carol", "bob", "fine");
    publish("alice", "general", "fine");
}

// ---- send ttl_ms

using MailboxTtl = MailboxHandlerTest;

// The event's own ts (stamped by the log at the append), not the handler's
// clock read before it: expires_at is exactly ts + ttl.
TEST_F(MailboxTtl, ExpiresAtIsTheEventsTsPlusTheTtl) {
    const auto sent = ok(as("alice"), send_request("bob", "soon", std::nullopt, std::nullopt, 1500));
    const auto with_ttl = u64_field(sent, "seq");
    const auto ts = static_cast<std::int64_t>(u64_field(sent, "ts"));
    EXPECT_EQ(message(with_ttl).expires_at, std::optional<std::int64_t>(ts + 1'500'000));
    m_now += 42;
    const auto sent_later = ok(as("alice"), send_request("bob", "later", std::nullopt, std::nullopt, 1));
    const auto later = u64_field(sent_later, "seq");
    EXPECT_EQ(message(later).expires_at,
              std::optional<std::int64_t>(static_cast<std::int64_t>(u64_field(sent_later, "ts")) + 1000));
    const auto without = send("alice", "bob", "forever");
    EXPECT_FALSE(message(without).expires_at.has_value());

    // The history op shows it.
    HistoryRequest h;
    h.inbox = true;
    const auto reply = ok(as("bob"), h);
    const auto* array = reply.find("messages");
    ASSERT_NE(array, nullptr);
    ASSERT_EQ(array->via.array.size, 3U);
    const auto m = decode_message(array->via.array.ptr[0]);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->expires_at, std::optional<std::int64_t>(ts + 1'500'000));
    EXPECT_FALSE(has_key(array->via.array.ptr[2], "expires_at"));
}

TEST_F(MailboxTtl, ZeroAndOverAYearAreInvalid) {
    expect_error(as("alice"), send_request("bob", "x", std::nullopt, std::nullopt, 0), Errc::invalid_field);
    expect_error(as("alice"), send_request("bob", "x", std::nullopt, std::nullopt, k_one_year_ms + 1),
                 Errc::invalid_field);
    const auto sent = ok(as("alice"), send_request("bob", "x", std::nullopt, std::nullopt, k_one_year_ms));
    EXPECT_EQ(message(u64_field(sent, "seq")).expires_at,
              std::optional<std::int64_t>(static_cast<std::int64_t>(u64_field(sent, "ts")) +
                                          static_cast<std::int64_t>(k_one_year_ms) * 1000));
}

// ---- ack by seqs

using MailboxAck = MailboxHandlerTest;

TEST_F(MailboxAck, SeqsOfMessagesToMeSettleAndTheFloorFollows) {
    const auto m1 = send("alice", "bob", "1");
    const auto m2 = send("alice", "bob", "2");
    const auto m3 = send("carol", "bob", "3");

    const auto r3 = ok(as("bob"), AckRequest{std::nullopt, std::vector<std::uint64_t>{m3}});
    EXPECT_EQ(u64_field(r3, "acked"), 0U);
    EXPECT_GT(u64_field(r3, "seq"), m3);
    EXPECT_TRUE(m_store.mailboxes().is_settled("bob", m3));
    EXPECT_FALSE(m_store.mailboxes().is_settled("bob", m1));

    const auto r1 = ok(as("bob"), AckRequest{std::nullopt, std::vector<std::uint64_t>{m1}});
    EXPECT_EQ(u64_field(r1, "acked"), m1);

    const auto r2 = ok(as("bob"), AckRequest{std::nullopt, std::vector<std::uint64_t>{m2}});
    EXPECT_EQ(u64_field(r2, "acked"), m3) << "the reply's 'acked' is the floor after the ack";
    EXPECT_EQ(m_store.messages().mailbox_acked("bob"), m3);
    EXPECT_EQ(m_store.mailboxes().unsettled_count("bob"), 0);
}

TEST_F(MailboxAck, ASeqThatIsNoMessageToMeIsInvalidAndAppendsNothing) {
    const auto mine = send("alice", "bob", "for bob");
    const auto carols = send("alice", "carol", "for carol");
    const auto from_me = send("bob", "alice", "from bob");
    const auto channel = publish("alice", "general", "everyone");
    const auto created = u64_field(ok(as("alice"), ChannelCreateRequest{"other", std::nullopt}), "seq");

    for (const auto seq : {carols, from_me, channel, created, std::uint64_t{9999}}) {
        expect_error(as("bob"), AckRequest{std::nullopt, std::vector<std::uint64_t>{seq}}, Errc::invalid_field);
        // Alongside a good one: the whole ack is refused.
        expect_error(as("bob"), AckRequest{std::nullopt, std::vector<std::uint64_t>{mine, seq}}, Errc::invalid_field);
    }
    EXPECT_FALSE(m_store.mailboxes().is_settled("bob", mine));
    EXPECT_FALSE(m_store.mailboxes().is_settled("carol", carols));
}

TEST_F(MailboxAck, AlreadySettledSeqsAppendNothing) {
    const auto m1 = send("alice", "bob", "1");
    const auto m2 = send("alice", "bob", "2");
    const auto m3 = send("alice", "bob", "3");
    ok(as("bob"), AckRequest{std::nullopt, std::vector<std::uint64_t>{m3}});
    ok(as("bob"), AckRequest{m1, std::nullopt});
    const auto events = event_count();

    const auto again = ok(as("bob"), AckRequest{std::nullopt, std::vector<std::uint64_t>{m3, m1}});
    EXPECT_EQ(again.find("seq"), nullptr) << "nothing appended, no seq";
    EXPECT_EQ(u64_field(again, "acked"), m1);
    EXPECT_EQ(event_count(), events);

    // Settling the rest appends and reports the new floor.
    const auto rest = ok(as("bob"), AckRequest{std::nullopt, std::vector<std::uint64_t>{m1, m2, m3}});
    EXPECT_NE(rest.find("seq"), nullptr);
    EXPECT_EQ(u64_field(rest, "acked"), m3);
    EXPECT_EQ(last_ack().seqs, (std::optional<std::vector<std::uint64_t>>{{m2}})) << "only the unsettled one is logged";
    EXPECT_FALSE(last_ack().upto.has_value());
}

TEST_F(MailboxAck, RepeatedSeqsAreLoggedOnce) {
    send("alice", "bob", "1");
    const auto m2 = send("alice", "bob", "2");
    ok(as("bob"), AckRequest{std::nullopt, std::vector<std::uint64_t>{m2, m2, m2}});
    EXPECT_EQ(last_ack().seqs, (std::optional<std::vector<std::uint64_t>>{{m2}}));
}

TEST_F(MailboxAck, UptoAndSeqsTogether) {
    const auto m1 = send("alice", "bob", "1");
    const auto m2 = send("alice", "bob", "2");
    const auto m3 = send("alice", "bob", "3");
    const auto m4 = send("alice", "bob", "4");
    const auto reply = ok(as("bob"), AckRequest{m1, std::vector<std::uint64_t>{m3, m1}});
    EXPECT_EQ(u64_field(reply, "acked"), m1);
    const auto logged = last_ack();
    EXPECT_EQ(logged.upto, std::optional<std::uint64_t>(m1));
    EXPECT_EQ(logged.seqs, (std::optional<std::vector<std::uint64_t>>{{m3}})) << "seqs under upto are left out";
    EXPECT_FALSE(m_store.mailboxes().is_settled("bob", m2));
    EXPECT_TRUE(m_store.mailboxes().is_settled("bob", m3));

    // An upto at or below the floor is left out; the seqs still go in.
    const auto second = ok(as("bob"), AckRequest{m1, std::vector<std::uint64_t>{m4}});
    EXPECT_FALSE(last_ack().upto.has_value());
    EXPECT_EQ(last_ack().seqs, (std::optional<std::vector<std::uint64_t>>{{m4}}));
    EXPECT_EQ(u64_field(second, "acked"), m1);

    const auto last = ok(as("bob"), AckRequest{m2, std::nullopt});
    EXPECT_EQ(u64_field(last, "acked"), m4) << "the floor moves over the settled ones past upto";
}

TEST_F(MailboxAck, NeedsUptoOrSeqsAndAnIdentity) {
    const auto m1 = send("alice", "bob", "1");
    expect_error(as("bob"), AckRequest{std::nullopt, std::nullopt}, Errc::missing_field);
    expect_error(k_anonymous, AckRequest{std::nullopt, std::vector<std::uint64_t>{m1}}, Errc::not_identified);
}

// ---- the mailbox op

using MailboxOp = MailboxHandlerTest;

TEST_F(MailboxOp, ReportsTheFloorTheUnsettledCountAndInFlightDeliveries) {
    MessagingOptions options;
    options.delivery.ack_timeout_us = 5'000'000;
    use_options(options);
    const auto m1 = send("alice", "bob", "1");
    const auto m2 = send("alice", "bob", "2");
    const auto m3 = send("alice", "bob", "3");
    send("alice", "carol", "not bob's");
    ok(as("bob"), AckRequest{m1, std::nullopt});

    const auto before = ok(as("bob"), MailboxRequest{});
    EXPECT_EQ(map_field(before.handle.get(), "bot").as<std::string>(), "bob");
    EXPECT_EQ(u64_field(before, "acked"), m1);
    EXPECT_EQ(u64_field(before, "unsettled"), 2U);
    ASSERT_NE(before.find("in_flight"), nullptr);
    EXPECT_EQ(before.find("in_flight")->via.array.size, 0U) << "nothing pushed yet";

    const auto plan = m_handler->deliveries().pump(Reader{"", "bob", ""}, m_store.last_seq(), m_now);
    ASSERT_EQ(plan.deliveries.size(), 2U);

    const auto after = ok(as("bob"), MailboxRequest{});
    const auto* in_flight = after.find("in_flight");
    ASSERT_NE(in_flight, nullptr);
    ASSERT_EQ(in_flight->type, msgpack::type::ARRAY);
    ASSERT_EQ(in_flight->via.array.size, 2U);
    const auto& f0 = in_flight->via.array.ptr[0];
    EXPECT_EQ(map_field(f0, "seq").as<std::uint64_t>(), m2);
    EXPECT_EQ(map_field(f0, "deliveries").as<std::uint64_t>(), 1U);
    EXPECT_EQ(map_field(f0, "ack_deadline").as<std::int64_t>(), m_now + 5'000'000);
    EXPECT_EQ(map_field(in_flight->via.array.ptr[1], "seq").as<std::uint64_t>(), m3);

    // Anyone may ask about a named bot; someone else's is unaffected.
    const auto carol = ok(k_anonymous, MailboxRequest{"carol"});
    EXPECT_EQ(u64_field(carol, "acked"), 0U);
    EXPECT_EQ(u64_field(carol, "unsettled"), 1U);
    EXPECT_EQ(carol.find("in_flight")->via.array.size, 0U);
    const auto bob = ok(k_anonymous, MailboxRequest{"bob"});
    EXPECT_EQ(bob.find("in_flight")->via.array.size, 2U);

    // Acked by seq: settled, out of the unsettled count.
    ok(as("bob"), AckRequest{std::nullopt, std::vector<std::uint64_t>{m3}});
    const auto acked = ok(as("bob"), MailboxRequest{});
    EXPECT_EQ(u64_field(acked, "acked"), m1);
    EXPECT_EQ(u64_field(acked, "unsettled"), 1U);
}

TEST_F(MailboxOp, NeedsABotOrAnIdentity) {
    expect_error(k_anonymous, MailboxRequest{}, Errc::not_identified);
    const auto nobody = ok(k_anonymous, MailboxRequest{"nobody"});
    EXPECT_EQ(u64_field(nobody, "acked"), 0U);
    EXPECT_EQ(u64_field(nobody, "unsettled"), 0U);
}

// ---- dlq.list and dlq.replay

using MailboxDlq = MailboxHandlerTest;

TEST_F(MailboxDlq, ListShowsDeadLettersWithTheirMessage) {
    EXPECT_TRUE(dlq_list({}).empty());
    const auto m = send("alice", "bob", "lost");
    const auto dead = dead_letter("bob", m, 4);

    bool more = true;
    const auto entries = dlq_list({}, &more);
    EXPECT_FALSE(more);
    ASSERT_EQ(entries.size(), 1U);
    const auto& e = entries[0];
    EXPECT_EQ(e.seq, dead);
    EXPECT_EQ(e.bot, "bob");
    EXPECT_EQ(e.reason, "max_deliveries: delivered 4 times without an acknowledgement");
    EXPECT_EQ(e.deliveries, 4U);
    EXPECT_GT(e.ts, 0);
    EXPECT_FALSE(e.replayed_seq.has_value());
    ASSERT_TRUE(e.message.has_value());
    EXPECT_EQ(e.message->seq, m);
    EXPECT_EQ(e.message->from, "alice");
    EXPECT_EQ(e.message->to, std::optional<std::string>("bob"));
    EXPECT_EQ(text_of(e.message->body), "lost");
    EXPECT_TRUE(m_store.mailboxes().is_settled("bob", m));
}

TEST_F(MailboxDlq, ListPagesWithAfterAndLimitAndFiltersByBot) {
    const auto b1 = send("alice", "bob", "1");
    const auto c1 = send("alice", "carol", "1");
    const auto b2 = send("alice", "bob", "2");
    const auto d1 = dead_letter("bob", b1);
    const auto d2 = dead_letter("carol", c1);
    const auto d3 = dead_letter("bob", b2);

    bool more = false;
    DlqListRequest first_page;
    first_page.limit = 2;
    const auto page1 = dlq_list(first_page, &more);
    EXPECT_TRUE(more);
    ASSERT_EQ(page1.size(), 2U);
    EXPECT_EQ(page1[0].seq, d1);
    EXPECT_EQ(page1[1].seq, d2);

    DlqListRequest second_page;
    second_page.limit = 2;
    second_page.after = page1.back().seq;
    const auto page2 = dlq_list(second_page, &more);
    EXPECT_FALSE(more);
    ASSERT_EQ(page2.size(), 1U);
    EXPECT_EQ(page2[0].seq, d3);

    DlqListRequest exact;
    exact.limit = 3;
    dlq_list(exact, &more);
    EXPECT_FALSE(more) << "exactly `limit` left is no more";

    DlqListRequest bobs;
    bobs.bot = "bob";
    EXPECT_EQ(dead_seqs(dlq_list(bobs)), (std::vector<std::uint64_t>{b1, b2}));
    bobs.after = d1;
    EXPECT_EQ(dead_seqs(dlq_list(bobs)), (std::vector<std::uint64_t>{b2}));
    DlqListRequest carols;
    carols.bot = "carol";
    EXPECT_EQ(dead_seqs(dlq_list(carols)), (std::vector<std::uint64_t>{c1}));
}

TEST_F(MailboxDlq, ListLimitMustBeOneToAThousand) {
    DlqListRequest r;
    r.limit = 0;
    expect_error(k_anonymous, r, Errc::invalid_field);
    r.limit = 1001;
    expect_error(k_anonymous, r, Errc::invalid_field);
    r.limit = 1000;
    ok(k_anonymous, r);
    r.limit = 1;
    ok(k_anonymous, r);
}

TEST_F(MailboxDlq, ReplayNeedsAnIdentityAndADeadLetter) {
    const auto m = send("alice", "bob", "alive");
    expect_error(k_anonymous, DlqReplayRequest{m}, Errc::not_identified);
    expect_error(as("ops"), DlqReplayRequest{m}, Errc::not_found);  // a message that is not dead
    expect_error(as("ops"), DlqReplayRequest{9999}, Errc::not_found);
    dead_letter("bob", m);
    expect_error(k_anonymous, DlqReplayRequest{m}, Errc::not_identified);
}

TEST_F(MailboxDlq, ReplayAppendsACopyToTheMailboxOnce) {
    const auto root = send("bob", "alice", "question");
    const auto m = send("alice", "bob", "the answer", root);
    const auto later = send("carol", "bob", "later");
    dead_letter("bob", m, 10);
    ok(as("bob"), AckRequest{later, std::nullopt});  // the floor passes the original
    ASSERT_EQ(m_store.messages().mailbox_acked("bob"), later);

    const auto reply = ok(as("ops"), DlqReplayRequest{m});
    const auto copy_seq = u64_field(reply, "seq");
    EXPECT_GT(copy_seq, later);
    EXPECT_EQ(u64_field(reply, "mailbox_seq"), 3U) << "bob's mailbox: the answer, later, then the copy";

    const auto copy = message(copy_seq);
    EXPECT_EQ(copy.from, "alice") << "the copy is from the original sender";
    EXPECT_EQ(copy.to, std::optional<std::string>("bob"));
    EXPECT_EQ(text_of_packed(copy.body), "the answer");
    EXPECT_EQ(copy.type, message(m).type);
    EXPECT_EQ(copy.replay_of, std::optional<store::Seq>(m));
    EXPECT_EQ(copy.reply_to, std::optional<store::Seq>(root));
    EXPECT_EQ(copy.conversation, std::optional<store::Seq>(root));
    EXPECT_EQ(copy.hop, std::optional<std::uint64_t>(1));
    EXPECT_FALSE(m_store.mailboxes().is_settled("bob", copy_seq)) << "the copy is delivered again";
    EXPECT_EQ(m_store.mailboxes().unsettled_count("bob"), 1);

    const auto entries = dlq_list({});
    ASSERT_EQ(entries.size(), 1U);
    EXPECT_EQ(entries[0].replayed_seq, std::optional<std::uint64_t>(copy_seq));

    expect_error(as("ops"), DlqReplayRequest{m}, Errc::conflict);
    expect_error(as("bob"), DlqReplayRequest{m}, Errc::conflict);
}

TEST_F(MailboxDlq, ReplayedCopyIsPushedAgain) {
    const auto m = send("alice", "bob", "retry me");
    dead_letter("bob", m);
    auto& deliveries = m_handler->deliveries();
    EXPECT_TRUE(deliveries.pump(Reader{"", "bob", ""}, m_store.last_seq(), m_now).deliveries.empty()) << "a dead letter is settled";
    const auto copy = u64_field(ok(as("ops"), DlqReplayRequest{m}), "seq");
    const auto plan = deliveries.pump(Reader{"", "bob", ""}, m_store.last_seq(), m_now);
    ASSERT_EQ(plan.deliveries.size(), 1U);
    EXPECT_EQ(plan.deliveries[0].message.seq, copy);
    EXPECT_EQ(plan.deliveries[0].message.replay_of, std::optional<store::Seq>(m));
    EXPECT_EQ(plan.deliveries[0].deliveries, 1U);
}

}  // namespace

namespace {

TEST_F(MailboxDlq, ListAfterPastEverySeqIsEmptyNotEverything) {
    const auto m = send("alice", "bob", "1");
    dead_letter("bob", m);
    bool more = true;
    DlqListRequest past;
    past.after = std::uint64_t{1} << 63;  // was bound as a negative integer: below every seq
    EXPECT_TRUE(dlq_list(past, &more).empty());
    EXPECT_FALSE(more);
    past.after = std::numeric_limits<std::uint64_t>::max();
    EXPECT_TRUE(dlq_list(past, &more).empty());
}

}  // namespace
