// Unit tests of bus::CommandHandler on a :memory: store: the seed's
// MessageRepository behaviours, then the rules the handler adds (identity,
// limits, reply_to, auto-created channels, nothing appended on failure).
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bus/protocol/codec.hpp"
#include "bus/core/handler.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "handler_support.hpp"

using namespace botbus::bus;
namespace store = botbus::store;

namespace {

using botbus::testing::as;
using botbus::testing::k_anonymous;

struct ChannelInfo {
    std::string name;
    std::optional<std::string> description;
    std::string created_by;
    std::int64_t created_at = 0;
    std::uint64_t subscribers = 0;
};

class HandlerTest : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};
    ServerCounters m_counters;
    CommandHandler m_handler{m_store, m_counters};

    Reply call(const Session& session, Request request, std::optional<PackedValue> id = std::nullopt) {
        return botbus::testing::call_in_batch(m_handler, m_store, session, std::move(request), std::move(id));
    }

    // Like call, but the request must succeed.
    Reply ok(const Session& session, Request request) {
        const auto op = op_of(request);
        auto reply = call(session, std::move(request));
        EXPECT_TRUE(reply.ok) << op_name(op) << " failed: " << reply.error_name << ": " << reply.message;
        return reply;
    }

    // The request must fail with `code` and append nothing.
    void expect_error(const Session& session, Request request, Errc code) {
        const auto op = op_of(request);
        const auto before = event_count();
        const auto reply = call(session, std::move(request));
        EXPECT_FALSE(reply.ok) << op_name(op) << " should have failed";
        EXPECT_EQ(errc_name(reply.error), errc_name(code)) << op_name(op) << ": " << reply.message;
        EXPECT_FALSE(reply.message.empty());
        EXPECT_EQ(event_count(), before) << op_name(op) << " appended events although it failed";
    }

    std::int64_t event_count() { return m_store.stats().event_count; }

    Reply publish(const std::string& from, const std::string& channel, const std::string& text,
                  std::optional<std::uint64_t> reply_to = std::nullopt,
                  std::optional<std::string> key = std::nullopt) {
        return ok(as(from), PublishRequest{channel, std::nullopt, pack_as_value(text), std::move(key), reply_to});
    }
    Reply send(const std::string& from, const std::string& to, const std::string& text,
               std::optional<std::uint64_t> reply_to = std::nullopt, std::optional<std::string> key = std::nullopt) {
        return ok(as(from), SendRequest{to, std::nullopt, pack_as_value(text), std::move(key), reply_to, std::nullopt});
    }

    std::vector<Message> history(const Session& session, HistoryRequest request, bool* more = nullptr) {
        const auto reply = ok(session, std::move(request));
        std::vector<Message> messages;
        const auto* array = reply.find("messages");
        if (array == nullptr || array->type != msgpack::type::ARRAY) {
            ADD_FAILURE() << "history reply has no messages array";
            return messages;
        }
        for (std::uint32_t i = 0; i < array->via.array.size; ++i) {
            auto m = decode_message(array->via.array.ptr[i]);
            if (!m) {
                ADD_FAILURE() << "message " << i << " does not decode";
                continue;
            }
            messages.push_back(std::move(*m));
        }
        if (more != nullptr) *more = bool_field(reply, "more");
        return messages;
    }
    std::vector<Message> channel_history(const std::string& channel, std::optional<std::string> order = std::nullopt,
                                         std::optional<std::uint64_t> limit = std::nullopt,
                                         std::optional<std::uint64_t> after = std::nullopt, bool* more = nullptr) {
        HistoryRequest r;
        r.channel = channel;
        r.order = std::move(order);
        r.limit = limit;
        r.after = after;
        return history(k_anonymous, r, more);
    }
    std::vector<Message> conversation(const std::string& me, const std::string& peer) {
        HistoryRequest r;
        r.peer = peer;
        return history(as(me), r);
    }

    std::vector<ChannelInfo> list_channels() {
        const auto reply = ok(k_anonymous, ChannelListRequest{});
        std::vector<ChannelInfo> channels;
        const auto* array = reply.find("channels");
        if (array == nullptr || array->type != msgpack::type::ARRAY) {
            ADD_FAILURE() << "channel.list reply has no channels array";
            return channels;
        }
        for (std::uint32_t i = 0; i < array->via.array.size; ++i) {
            const auto& map = array->via.array.ptr[i];
            ChannelInfo c;
            c.name = map_field(map, "name").as<std::string>();
            const auto description = map_field(map, "description");
            if (description.type != msgpack::type::NIL) c.description = description.as<std::string>();
            c.created_by = map_field(map, "created_by").as<std::string>();
            c.created_at = map_field(map, "created_at").as<std::int64_t>();
            c.subscribers = map_field(map, "subscribers").as<std::uint64_t>();
            channels.push_back(std::move(c));
        }
        return channels;
    }

    std::vector<std::string> subscribers_of(const std::string& channel) {
        const auto reply = ok(k_anonymous, SubscribersRequest{channel});
        return strings_field(reply, "bots");
    }

    // The types of the events appended after `after`, in order.
    std::vector<std::string> event_types_after(store::Seq after) {
        std::vector<std::string> types;
        for (const auto& e : m_store.read_range(after, 1000)) types.emplace_back(store::event_type_name(e.type));
        return types;
    }

    static msgpack::object map_field(const msgpack::object& map, std::string_view key) {
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
    static std::uint64_t u64_field(const Reply& reply, std::string_view key) {
        const auto* v = reply.find(key);
        if (v == nullptr || v->type != msgpack::type::POSITIVE_INTEGER) {
            ADD_FAILURE() << "reply has no unsigned integer '" << key << "'";
            return 0;
        }
        return v->via.u64;
    }
    static bool bool_field(const Reply& reply, std::string_view key) {
        const auto* v = reply.find(key);
        if (v == nullptr || v->type != msgpack::type::BOOLEAN) {
            ADD_FAILURE() << "reply has no boolean '" << key << "'";
            return false;
        }
        return v->via.boolean;
    }
    static std::vector<std::string> strings_field(const Reply& reply, std::string_view key) {
        const auto* v = reply.find(key);
        if (v == nullptr || v->type != msgpack::type::ARRAY) {
            ADD_FAILURE() << "reply has no array '" << key << "'";
            return {};
        }
        return v->as<std::vector<std::string>>();
    }
};

std::vector<std::string> texts_of(const std::vector<Message>& messages) {
    std::vector<std::string> texts;
    for (const auto& m : messages) {
        const auto handle = msgpack::unpack(m.body.bytes.data(), m.body.bytes.size());
        texts.push_back(handle.get().as<std::string>());
    }
    return texts;
}

std::vector<std::uint64_t> seqs_of(const std::vector<Message>& messages) {
    std::vector<std::uint64_t> seqs;
    for (const auto& m : messages) seqs.push_back(m.seq);
    return seqs;
}

// ---- the seed's MessageRepository behaviours

using MessageRepository = HandlerTest;

TEST_F(MessageRepository, DirectMessagesFlowBothWaysInOneConversation) {
    const auto first = send("alice", "bob", "hi bob");
    const auto second = send("bob", "alice", "hi alice");
    send("alice", "carol", "not for bob");
    const auto third = send("alice", "bob", "how are you");
    EXPECT_EQ(u64_field(first, "mailbox_seq"), 1U);   // bob's mailbox
    EXPECT_EQ(u64_field(second, "mailbox_seq"), 1U);  // alice's mailbox
    EXPECT_EQ(u64_field(third, "mailbox_seq"), 2U);
    EXPECT_FALSE(bool_field(first, "duplicate"));

    const auto seen_by_alice = conversation("alice", "bob");
    EXPECT_EQ(texts_of(seen_by_alice), (std::vector<std::string>{"hi bob", "hi alice", "how are you"}));
    ASSERT_EQ(seen_by_alice.size(), 3U);
    EXPECT_EQ(seen_by_alice[0].seq, u64_field(first, "seq"));
    EXPECT_EQ(seen_by_alice[0].from, "alice");
    EXPECT_EQ(seen_by_alice[0].to, std::optional<std::string>("bob"));
    EXPECT_FALSE(seen_by_alice[0].channel.has_value());
    EXPECT_EQ(seen_by_alice[0].type, "text");
    EXPECT_EQ(seen_by_alice[1].from, "bob");
    EXPECT_EQ(seen_by_alice[1].to, std::optional<std::string>("alice"));
    EXPECT_LT(seen_by_alice[0].seq, seen_by_alice[1].seq);
    EXPECT_LT(seen_by_alice[1].seq, seen_by_alice[2].seq);

    EXPECT_EQ(seqs_of(conversation("bob", "alice")), seqs_of(seen_by_alice));

    HistoryRequest inbox;
    inbox.inbox = true;
    EXPECT_EQ(texts_of(history(as("bob"), inbox)), (std::vector<std::string>{"hi bob", "how are you"}));
}

TEST_F(MessageRepository, ChannelMessagesAreKeptInOrderWithChannelSeqs) {
    const auto first = publish("alice", "general", "one");
    publish("bob", "general", "two");
    publish("alice", "general", "three");
    EXPECT_EQ(u64_field(first, "channel_seq"), 1U);

    const auto messages = channel_history("general");
    EXPECT_EQ(texts_of(messages), (std::vector<std::string>{"one", "two", "three"}));
    ASSERT_EQ(messages.size(), 3U);
    EXPECT_EQ(messages[0].seq, u64_field(first, "seq"));
    EXPECT_EQ(messages[0].ts_us, static_cast<std::int64_t>(u64_field(first, "ts")));
    EXPECT_EQ(messages[1].from, "bob");
    EXPECT_EQ(messages[2].channel, std::optional<std::string>("general"));
    EXPECT_FALSE(messages[2].to.has_value());
    for (std::size_t i = 0; i < messages.size(); ++i) EXPECT_EQ(messages[i].stream_seq, i + 1);
}

TEST_F(MessageRepository, ChannelsAreIsolatedFromEachOther) {
    publish("alice", "a", "for a");
    publish("alice", "ab", "for ab");
    publish("alice", "b", "for b");
    publish("alice", "a", "for a again");
    EXPECT_EQ(texts_of(channel_history("a")), (std::vector<std::string>{"for a", "for a again"}));
    EXPECT_EQ(texts_of(channel_history("ab")), (std::vector<std::string>{"for ab"}));
    const auto b = channel_history("b");
    ASSERT_EQ(b.size(), 1U);
    EXPECT_EQ(b[0].stream_seq, 1U);  // each channel counts its own messages
}

TEST_F(MessageRepository, CreatedChannelsAreListedByNameWithTheirDetails) {
    const auto created = ok(as("alice"), ChannelCreateRequest{"zeta", "the last one"});
    EXPECT_GT(u64_field(created, "seq"), 0U);
    ok(as("bob"), ChannelCreateRequest{"alpha", std::nullopt});
    ok(as("alice"), ChannelCreateRequest{"mid", "in between"});

    const auto channels = list_channels();
    ASSERT_EQ(channels.size(), 3U);
    EXPECT_EQ(channels[0].name, "alpha");
    EXPECT_EQ(channels[1].name, "mid");
    EXPECT_EQ(channels[2].name, "zeta");
    EXPECT_FALSE(channels[0].description.has_value());
    EXPECT_EQ(channels[0].created_by, "bob");
    EXPECT_EQ(channels[2].description, std::optional<std::string>("the last one"));
    EXPECT_EQ(channels[2].created_by, "alice");
    EXPECT_GT(channels[2].created_at, 0);
    EXPECT_EQ(channels[2].subscribers, 0U);

    // The create reply carries the channel it made.
    const auto* channel = created.find("channel");
    ASSERT_NE(channel, nullptr);
    EXPECT_EQ(map_field(*channel, "name").as<std::string>(), "zeta");
    EXPECT_EQ(map_field(*channel, "created_by").as<std::string>(), "alice");
}

TEST_F(MessageRepository, CreatingAnExistingChannelIsAConflict) {
    ok(as("alice"), ChannelCreateRequest{"general", "first"});
    expect_error(as("bob"), ChannelCreateRequest{"general", "second"}, Errc::conflict);
    const auto channels = list_channels();
    ASSERT_EQ(channels.size(), 1U);
    EXPECT_EQ(channels[0].description, std::optional<std::string>("first"));
    EXPECT_EQ(channels[0].created_by, "alice");
}

TEST_F(MessageRepository, SubscribingRecordsTheSubscription) {
    ok(as("alice"), ChannelCreateRequest{"general", std::nullopt});
    const auto reply = ok(as("bob"), SubscribeRequest{"general", std::nullopt});
    EXPECT_TRUE(bool_field(reply, "subscribed"));
    EXPECT_GT(u64_field(reply, "seq"), 0U);

    const auto mine = ok(as("bob"), SubscriptionsRequest{std::nullopt});
    EXPECT_EQ(strings_field(mine, "channels"), (std::vector<std::string>{"general"}));
    EXPECT_TRUE(m_store.messages().is_subscribed("bob", "general"));
    EXPECT_EQ(list_channels()[0].subscribers, 1U);
}

TEST_F(MessageRepository, SubscribingTwiceChangesNothing) {
    ok(as("bob"), SubscribeRequest{"general", std::nullopt});
    const auto before = event_count();
    const auto again = ok(as("bob"), SubscribeRequest{"general", std::nullopt});
    EXPECT_FALSE(bool_field(again, "subscribed"));
    EXPECT_EQ(again.find("seq"), nullptr);
    EXPECT_EQ(event_count(), before);
    EXPECT_EQ(subscribers_of("general"), (std::vector<std::string>{"bob"}));
}

TEST_F(MessageRepository, UnsubscribingRemovesOnceThenReportsNothingToRemove) {
    ok(as("bob"), SubscribeRequest{"general", std::nullopt});
    const auto removed = ok(as("bob"), UnsubscribeRequest{"general", std::nullopt});
    EXPECT_TRUE(bool_field(removed, "unsubscribed"));
    EXPECT_GT(u64_field(removed, "seq"), 0U);
    EXPECT_FALSE(m_store.messages().is_subscribed("bob", "general"));

    const auto before = event_count();
    const auto again = ok(as("bob"), UnsubscribeRequest{"general", std::nullopt});
    EXPECT_FALSE(bool_field(again, "unsubscribed"));
    EXPECT_EQ(event_count(), before);
    EXPECT_TRUE(subscribers_of("general").empty());
}

TEST_F(MessageRepository, ChannelSubscribersAreListedByBot) {
    ok(as("carol"), SubscribeRequest{"general", std::nullopt});
    ok(as("alice"), SubscribeRequest{"general", std::nullopt});
    ok(as("bob"), SubscribeRequest{"general", std::nullopt});
    ok(as("dave"), SubscribeRequest{"random", std::nullopt});
    EXPECT_EQ(subscribers_of("general"), (std::vector<std::string>{"alice", "bob", "carol"}));
    EXPECT_EQ(subscribers_of("random"), (std::vector<std::string>{"dave"}));
    expect_error(k_anonymous, SubscribersRequest{"nowhere"}, Errc::not_found);
}

TEST_F(MessageRepository, SubscriptionsCanBeListedForAnotherBot) {
    ok(as("bob"), SubscribeRequest{"zeta", std::nullopt});
    ok(as("bob"), SubscribeRequest{"alpha", std::nullopt});
    const auto reply = ok(k_anonymous, SubscriptionsRequest{"bob"});
    EXPECT_EQ(strings_field(reply, "channels"), (std::vector<std::string>{"alpha", "zeta"}));
}

// ---- ordering, limits, reply_to

using HistoryOp = HandlerTest;

TEST_F(HistoryOp, AscendingAndDescendingOrderTheSameMessages) {
    for (const auto* text : {"1", "2", "3", "4"}) publish("alice", "general", text);
    EXPECT_EQ(texts_of(channel_history("general", "asc")), (std::vector<std::string>{"1", "2", "3", "4"}));
    EXPECT_EQ(texts_of(channel_history("general", "desc")), (std::vector<std::string>{"4", "3", "2", "1"}));
    EXPECT_EQ(texts_of(channel_history("general")), texts_of(channel_history("general", "asc")));
    HistoryRequest bad;
    bad.channel = "general";
    bad.order = "sideways";
    expect_error(k_anonymous, bad, Errc::invalid_field);
}

TEST_F(HistoryOp, LimitPagesWithMoreFlag) {
    for (const auto* text : {"1", "2", "3", "4", "5"}) publish("alice", "general", text);
    bool more = false;
    const auto page1 = channel_history("general", std::nullopt, 2, std::nullopt, &more);
    EXPECT_EQ(texts_of(page1), (std::vector<std::string>{"1", "2"}));
    EXPECT_TRUE(more);
    const auto page2 = channel_history("general", std::nullopt, 2, page1.back().seq, &more);
    EXPECT_EQ(texts_of(page2), (std::vector<std::string>{"3", "4"}));
    EXPECT_TRUE(more);
    const auto page3 = channel_history("general", std::nullopt, 2, page2.back().seq, &more);
    EXPECT_EQ(texts_of(page3), (std::vector<std::string>{"5"}));
    EXPECT_FALSE(more);

    const auto all = channel_history("general", std::nullopt, 5, std::nullopt, &more);
    EXPECT_EQ(all.size(), 5U);
    EXPECT_FALSE(more);  // exactly `limit` rows and no more
    const auto newest = channel_history("general", "desc", 2, std::nullopt, &more);
    EXPECT_EQ(texts_of(newest), (std::vector<std::string>{"5", "4"}));
    EXPECT_TRUE(more);
}

TEST_F(HistoryOp, BeforeBoundsThePageFromAbove) {
    for (const auto* text : {"1", "2", "3"}) publish("alice", "general", text);
    const auto all = channel_history("general");
    ASSERT_EQ(all.size(), 3U);
    HistoryRequest r;
    r.channel = "general";
    r.before = all[2].seq;
    r.order = "desc";
    EXPECT_EQ(texts_of(history(k_anonymous, r)), (std::vector<std::string>{"2", "1"}));
}

TEST_F(HistoryOp, LimitOutsideOneToAThousandIsInvalid) {
    publish("alice", "general", "x");
    for (const std::uint64_t limit : {std::uint64_t{0}, std::uint64_t{1001}, std::uint64_t{1} << 40}) {
        HistoryRequest r;
        r.channel = "general";
        r.limit = limit;
        expect_error(k_anonymous, r, Errc::invalid_field);
    }
    HistoryRequest r;
    r.channel = "general";
    r.limit = 1000;
    EXPECT_EQ(history(k_anonymous, r).size(), 1U);
    r.limit = 1;
    EXPECT_EQ(history(k_anonymous, r).size(), 1U);
}

TEST_F(HistoryOp, NeedsExactlyOneScope) {
    expect_error(as("alice"), HistoryRequest{}, Errc::missing_field);
    HistoryRequest two;
    two.channel = "general";
    two.peer = "bob";
    expect_error(as("alice"), two, Errc::invalid_field);
}

TEST_F(HistoryOp, UnknownChannelIsNotFound) {
    HistoryRequest r;
    r.channel = "nowhere";
    expect_error(k_anonymous, r, Errc::not_found);
}

using ReplyTo = HandlerTest;

TEST_F(ReplyTo, ReplyToAnExistingMessageShowsInHistory) {
    const auto question = publish("alice", "general", "question?");
    const auto question_seq = u64_field(question, "seq");
    publish("bob", "general", "answer!", question_seq);
    const auto dm = send("carol", "alice", "saw your question", question_seq);

    const auto messages = channel_history("general");
    ASSERT_EQ(messages.size(), 2U);
    EXPECT_FALSE(messages[0].reply_to.has_value());
    EXPECT_EQ(messages[1].reply_to, std::optional<std::uint64_t>(question_seq));

    const auto direct = conversation("alice", "carol");
    ASSERT_EQ(direct.size(), 1U);
    EXPECT_EQ(direct[0].seq, u64_field(dm, "seq"));
    EXPECT_EQ(direct[0].reply_to, std::optional<std::uint64_t>(question_seq));
}

TEST_F(ReplyTo, ReplyToAnUnknownSeqIsNotFound) {
    publish("alice", "general", "hello");
    expect_error(as("bob"), PublishRequest{"general", std::nullopt, pack_as_value("?"), std::nullopt, 999},
                 Errc::not_found);
    expect_error(as("bob"), SendRequest{"alice", std::nullopt, pack_as_value("?"), std::nullopt, 999, std::nullopt},
                 Errc::not_found);
    // A seq that is an event but not a message (the channel.created) is no target either.
    const auto created = ok(as("alice"), ChannelCreateRequest{"other", std::nullopt});
    expect_error(as("bob"),
                 PublishRequest{"general", std::nullopt, pack_as_value("?"), std::nullopt, u64_field(created, "seq")},
                 Errc::not_found);
    // Nor does a failed publish to a new channel create that channel.
    expect_error(as("bob"), PublishRequest{"brand-new", std::nullopt, pack_as_value("?"), std::nullopt, 999},
                 Errc::not_found);
    EXPECT_FALSE(m_store.messages().channel("brand-new").has_value());
}

// ---- auto-created channels

using AutoCreate = HandlerTest;

TEST_F(AutoCreate, SubscribingToAnUnknownChannelCreatesItFirst) {
    const auto before = m_store.last_seq();
    const auto reply = ok(as("bob"), SubscribeRequest{"fresh", std::nullopt});
    EXPECT_TRUE(bool_field(reply, "subscribed"));
    EXPECT_EQ(event_types_after(before), (std::vector<std::string>{"channel.created", "subscription.added"}));
    EXPECT_EQ(u64_field(reply, "seq"), before + 2);

    const auto channels = list_channels();
    ASSERT_EQ(channels.size(), 1U);
    EXPECT_EQ(channels[0].name, "fresh");
    EXPECT_EQ(channels[0].created_by, "bob");
    EXPECT_FALSE(channels[0].description.has_value());
    EXPECT_EQ(channels[0].subscribers, 1U);
}

TEST_F(AutoCreate, PublishingToAnUnknownChannelCreatesItFirst) {
    const auto before = m_store.last_seq();
    const auto reply = publish("alice", "fresh", "first words");
    EXPECT_EQ(event_types_after(before), (std::vector<std::string>{"channel.created", "message.published"}));
    EXPECT_EQ(u64_field(reply, "seq"), before + 2);
    EXPECT_EQ(u64_field(reply, "channel_seq"), 1U);
    ASSERT_EQ(list_channels().size(), 1U);
    EXPECT_EQ(list_channels()[0].created_by, "alice");

    // Publishing again does not create it again.
    const auto second = m_store.last_seq();
    publish("bob", "fresh", "more");
    EXPECT_EQ(event_types_after(second), (std::vector<std::string>{"message.published"}));
}

// ---- identity and failures

using Identity = HandlerTest;

TEST_F(Identity, EveryOpThatNeedsHelloIsRefusedOnceWithItsNameAndNoOtherIs) {
    // The ops that needed a hello identity before the dispatcher checked it
    // in one place, each with its own handler's text.
    const std::set<std::string_view> needing{
        "channel.create", "channel.delete", "channel.retention", "subscribe",     "unsubscribe",
        "publish",        "send",           "ack",               "fetch",         "dlq.replay",
        "workflow.put",   "workflow.delete", "run.start",        "run.pause",     "run.resume",
        "run.complete",   "run.fail",       "run.cancel",        "run.checkpoint", "run.heartbeat",
        "step.start",     "step.complete",  "step.fail",         "step.skip",     "step.wait_approval",
        "step.approve",   "acl.grant",      "acl.revoke",        "acl.list"};
    std::size_t refused = 0;
    for (std::size_t i = 0; i < k_op_names.size(); ++i) {
        const auto op = static_cast<Op>(i);
        const auto name = op_name(op);
        const auto reply = call(k_anonymous, make_request(op));
        const bool identity_refusal = !reply.ok && reply.message.find("needs a bot identity") != std::string::npos;
        if (needing.contains(name)) {
            ++refused;
            EXPECT_EQ(errc_name(reply.error), "not_identified") << name;
            EXPECT_EQ(reply.message, std::string(name) + " needs a bot identity: send hello first");
        } else {
            EXPECT_FALSE(identity_refusal) << name << " should not need hello: " << reply.message;
        }
    }
    EXPECT_EQ(refused, needing.size()) << "an op of the list is missing from Request";
    EXPECT_EQ(event_count(), 0);
}

TEST_F(Identity, OpsThatAppendNeedHelloFirst) {
    const auto body = pack_as_value("x");
    expect_error(k_anonymous, ChannelCreateRequest{"c", std::nullopt}, Errc::not_identified);
    expect_error(k_anonymous, ChannelDeleteRequest{"c"}, Errc::not_identified);
    expect_error(k_anonymous, SubscribeRequest{"c", std::nullopt}, Errc::not_identified);
    expect_error(k_anonymous, SubscribeRequest{"c", "bob"}, Errc::not_identified);
    expect_error(k_anonymous, UnsubscribeRequest{"c", std::nullopt}, Errc::not_identified);
    expect_error(k_anonymous, PublishRequest{"c", std::nullopt, body, std::nullopt, std::nullopt},
                 Errc::not_identified);
    expect_error(k_anonymous, SendRequest{"bob", std::nullopt, body, std::nullopt, std::nullopt, std::nullopt},
                 Errc::not_identified);
    expect_error(k_anonymous, AckRequest{1, std::nullopt}, Errc::not_identified);
    expect_error(k_anonymous, SubscriptionsRequest{std::nullopt}, Errc::not_identified);
    HistoryRequest inbox;
    inbox.inbox = true;
    expect_error(k_anonymous, inbox, Errc::not_identified);
    EXPECT_EQ(event_count(), 0);
    EXPECT_EQ(m_store.last_seq(), 0U);
}

TEST_F(Identity, ReadOnlyOpsWorkWithoutHello) {
    ok(k_anonymous, PingRequest{});
    ok(k_anonymous, ChannelListRequest{});
    ok(k_anonymous, StatsRequest{});
    ok(k_anonymous, FeedSyncRequest{"token"});
    ok(k_anonymous, SubscriptionsRequest{"bob"});
    HistoryRequest inbox;
    inbox.inbox = true;
    inbox.bot = "bob";
    ok(k_anonymous, inbox);
}

TEST_F(Identity, HelloBindsTheBotAndReportsItsMailbox) {
    send("alice", "bob", "one");
    auto batch = m_store.begin();
    const Envelope envelope{pack_as_value(1), HelloRequest{"bob"}};
    const auto outcome = m_handler.handle(envelope, k_anonymous, batch);
    batch.commit();
    EXPECT_EQ(outcome.hello_bot, std::optional<std::string>("bob"));
    EXPECT_FALSE(outcome.failed);
    const auto reply = decode_reply(outcome.reply);
    ASSERT_TRUE(reply.has_value());
    EXPECT_TRUE(reply->ok);
    EXPECT_EQ(reply->id, std::optional<std::uint64_t>(1));
    EXPECT_EQ(u64_field(*reply, "protocol"), k_protocol_version);
    EXPECT_EQ(u64_field(*reply, "mailbox_acked"), 0U);
    EXPECT_EQ(u64_field(*reply, "last_seq"), 1U);
    EXPECT_EQ(event_count(), 1);  // hello appends nothing
}

TEST_F(Identity, RepliesEchoTheRequestId) {
    const auto with_int = call(k_anonymous, PingRequest{}, pack_as_value(41));
    EXPECT_EQ(with_int.id, std::optional<std::uint64_t>(41));
    const auto with_string = call(k_anonymous, ChannelDeleteRequest{"c"}, pack_as_value("req-7"));
    EXPECT_FALSE(with_string.ok);
    const auto* id = with_string.find("id");
    ASSERT_NE(id, nullptr);
    EXPECT_EQ(id->as<std::string>(), "req-7");
}

using Failures = HandlerTest;

TEST_F(Failures, AFailedRequestAppendsNothing) {
    ok(as("alice"), ChannelCreateRequest{"general", std::nullopt});
    publish("alice", "general", "hello");
    const auto count = event_count();
    const auto head = m_store.last_seq();

    expect_error(as("bob"), ChannelCreateRequest{"general", std::nullopt}, Errc::conflict);
    expect_error(as("bob"), ChannelDeleteRequest{"nowhere"}, Errc::not_found);
    expect_error(as("bob"), PublishRequest{"general", std::nullopt, pack_as_value(1), std::nullopt, 12345},
                 Errc::not_found);
    expect_error(as("bob"), AckRequest{head + 100, std::nullopt}, Errc::invalid_field);
    expect_error(k_anonymous, PublishRequest{"general", std::nullopt, pack_as_value(1), std::nullopt, std::nullopt},
                 Errc::not_identified);

    EXPECT_EQ(event_count(), count);
    EXPECT_EQ(m_store.last_seq(), head);
    EXPECT_EQ(channel_history("general").size(), 1U);
}

TEST_F(Failures, EarlierRequestsInTheSameBatchAreSeen) {
    auto batch = m_store.begin();
    const auto run = [&](Request request) {
        const Envelope envelope{std::nullopt, std::move(request)};
        auto outcome = m_handler.handle(envelope, as("alice"), batch);
        auto reply = decode_reply(outcome.reply);
        EXPECT_TRUE(reply.has_value());
        return reply ? std::move(*reply) : Reply{};
    };
    EXPECT_TRUE(run(ChannelCreateRequest{"general", std::nullopt}).ok);
    const auto again = run(ChannelCreateRequest{"general", std::nullopt});
    EXPECT_FALSE(again.ok);
    EXPECT_EQ(again.error, Errc::conflict);
    const auto published = run(PublishRequest{"general", std::nullopt, pack_as_value(1), std::nullopt, std::nullopt});
    EXPECT_TRUE(published.ok);
    const auto reply = run(PublishRequest{"general", std::nullopt, pack_as_value(2), std::nullopt,
                                          u64_field(published, "seq")});
    EXPECT_TRUE(reply.ok) << reply.message;
    EXPECT_EQ(batch.events().size(), 3U);  // channel.created, two messages
    batch.commit();
    EXPECT_EQ(channel_history("general").size(), 2U);
}

// ---- idempotency and acknowledgement through the handler

using Delivery = HandlerTest;

TEST_F(Delivery, RetriedPublishWithSameKeyReturnsTheFirstSeq) {
    const auto first = publish("alice", "general", "once", std::nullopt, "k-1");
    const auto count = event_count();
    const auto retried = publish("alice", "general", "once", std::nullopt, "k-1");
    EXPECT_TRUE(bool_field(retried, "duplicate"));
    EXPECT_EQ(u64_field(retried, "seq"), u64_field(first, "seq"));
    EXPECT_EQ(u64_field(retried, "channel_seq"), u64_field(first, "channel_seq"));
    EXPECT_EQ(event_count(), count);
    EXPECT_EQ(channel_history("general").size(), 1U);

    const auto other_bot = publish("bob", "general", "once", std::nullopt, "k-1");
    EXPECT_FALSE(bool_field(other_bot, "duplicate"));
}

TEST_F(Delivery, RetriedSendWithSameKeyReturnsTheFirstSeq) {
    const auto first = send("alice", "bob", "once", std::nullopt, "k-1");
    const auto retried = send("alice", "bob", "once", std::nullopt, "k-1");
    EXPECT_TRUE(bool_field(retried, "duplicate"));
    EXPECT_EQ(u64_field(retried, "seq"), u64_field(first, "seq"));
    EXPECT_EQ(u64_field(retried, "mailbox_seq"), 1U);
    EXPECT_EQ(conversation("alice", "bob").size(), 1U);
}

TEST_F(Delivery, AKeyReusedForAnotherChannelOrOpIsAConflict) {
    publish("alice", "general", "once", std::nullopt, "k-1");
    expect_error(as("alice"), PublishRequest{"random", std::nullopt, pack_as_value(std::string("x")), "k-1", {}},
                 Errc::conflict);
    expect_error(as("alice"), SendRequest{"bob", std::nullopt, pack_as_value(std::string("x")), "k-1", {}, {}},
                 Errc::conflict);
}

TEST_F(Delivery, AckRaisesTheMailboxPositionOnlyForward) {
    send("alice", "bob", "1");
    const auto second = send("alice", "bob", "2");
    const auto upto = u64_field(second, "seq");
    const auto acked = ok(as("bob"), AckRequest{upto, std::nullopt});
    EXPECT_EQ(u64_field(acked, "acked"), upto);
    EXPECT_GT(u64_field(acked, "seq"), upto);
    EXPECT_EQ(m_store.messages().mailbox_acked("bob"), upto);

    const auto count = event_count();
    const auto lower = ok(as("bob"), AckRequest{1, std::nullopt});
    EXPECT_EQ(u64_field(lower, "acked"), upto);  // already past it: nothing appended
    EXPECT_EQ(lower.find("seq"), nullptr);
    EXPECT_EQ(event_count(), count);
}

TEST_F(Delivery, DeletedChannelIsGoneWithItsSubscriptions) {
    ok(as("bob"), SubscribeRequest{"general", std::nullopt});
    ok(as("alice"), ChannelDeleteRequest{"general"});
    EXPECT_TRUE(list_channels().empty());
    expect_error(k_anonymous, SubscribersRequest{"general"}, Errc::not_found);
    EXPECT_TRUE(m_store.messages().subscriptions("bob", "", {}).empty());
}

TEST_F(Delivery, StatsCountTheLog) {
    publish("alice", "general", "x");
    send("alice", "bob", "y");
    const auto reply = ok(k_anonymous, StatsRequest{});
    EXPECT_EQ(u64_field(reply, "last_seq"), 3U);
    EXPECT_EQ(u64_field(reply, "events"), 3U);
    EXPECT_EQ(u64_field(reply, "channels"), 1U);
    EXPECT_EQ(u64_field(reply, "messages"), 2U);
}

TEST_F(Delivery, FeedSyncAnswersWithItsTopic) {
    auto batch = m_store.begin();
    const Envelope envelope{std::nullopt, FeedSyncRequest{"tok"}};
    const auto outcome = m_handler.handle(envelope, k_anonymous, batch);
    EXPECT_EQ(outcome.sync_token, std::optional<std::string>("tok"));
    const auto reply = decode_reply(outcome.reply);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->find("topic")->as<std::string>(), "sync/tok/");
}

}  // namespace

namespace {

TEST(HandlerClock, PingAndStatsUptimeReadTheInjectedClock) {
    store::SqliteStore store{{":memory:", store::Durability::full}};
    ServerCounters counters;
    counters.started_at_us = 1'000'000;
    std::int64_t now = 1'250'000;
    MessagingOptions messaging;
    messaging.clock = [&now] { return now; };
    CommandHandler handler(store, counters, {}, messaging);
    const auto i64_field = [](const Reply& reply, std::string_view key) {
        const auto* value = reply.find(key);
        return value ? value->as<std::int64_t>() : std::int64_t{-1};
    };
    const auto ping = botbus::testing::call_in_batch(handler, store, k_anonymous, PingRequest{});
    EXPECT_EQ(i64_field(ping, "ts"), 1'250'000);
    now = 4'000'000;
    const auto stats = botbus::testing::call_in_batch(handler, store, k_anonymous, StatsRequest{});
    EXPECT_EQ(i64_field(stats, "uptime_us"), 3'000'000);
}

}  // namespace
