// End-to-end tests: the real botbusd on loopback, driven through the client
// library (and raw ZeroMQ sockets where the library would hide a bug).
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::options_for;
using testing::u64_field;
using testing::full_history;

bus::PackedValue text_body(const std::string& text) { return bus::pack_as_value(text); }

bool bool_field(const bus::Reply& reply, std::string_view key) {
    const auto* value = reply.find(key);
    if (!value || value->type != msgpack::type::BOOLEAN) {
        ADD_FAILURE() << "reply has no boolean '" << key << "'";
        return false;
    }
    return value->via.boolean;
}

// A reply field in its packed form, for comparing whole values.
std::string packed_field(const bus::Reply& reply, std::string_view key) {
    const auto* value = reply.find(key);
    if (!value) {
        ADD_FAILURE() << "reply has no '" << key << "'";
        return {};
    }
    return bus::pack_value(*value).bytes;
}

std::vector<std::string> string_list(const bus::Reply& reply, std::string_view key) {
    std::vector<std::string> out;
    const auto* list = reply.find(key);
    if (!list || list->type != msgpack::type::ARRAY) {
        ADD_FAILURE() << "reply has no array '" << key << "'";
        return out;
    }
    for (std::uint32_t i = 0; i < list->via.array.size; ++i) {
        const auto& item = list->via.array.ptr[i];
        if (item.type == msgpack::type::STR) out.emplace_back(item.via.str.ptr, item.via.str.size);
    }
    return out;
}

bool same_message(const bus::Message& a, const bus::Message& b) {
    return a.seq == b.seq && a.stream_seq == b.stream_seq && a.ts_us == b.ts_us && a.from == b.from &&
           a.channel == b.channel && a.to == b.to && a.type == b.type && a.body == b.body && a.reply_to == b.reply_to;
}

// Publishes `count` messages on one connection with up to `window` requests
// in flight; returns the acks in request order. Fails the test (and stops)
// when a reply is an error or the deadline passes.
std::vector<client::Ack> publish_pipelined(client::Client& client, const std::string& channel, int first, int count,
                                           std::size_t window, Clock::duration limit = 30s) {
    std::vector<client::Ack> acks(static_cast<std::size_t>(count));
    std::map<std::uint64_t, std::size_t> index_of_id;
    const auto deadline = Clock::now() + limit;
    int sent = 0;
    int received = 0;
    while (received < count) {
        while (sent < count && index_of_id.size() < window) {
            const auto id = client.send_request(bus::PublishRequest{
                channel, std::nullopt, text_body("m" + std::to_string(first + sent)), std::nullopt, std::nullopt});
            index_of_id.emplace(id, static_cast<std::size_t>(sent));
            ++sent;
        }
        const auto left = std::chrono::duration_cast<client::Millis>(deadline - Clock::now());
        if (left.count() <= 0) {
            ADD_FAILURE() << "only " << received << " of " << count << " publish replies arrived in time";
            return {};
        }
        auto reply = client.receive_reply(left);
        if (!reply) continue;
        if (!reply->ok) {
            ADD_FAILURE() << "publish failed: " << reply->error_name << ": " << reply->message;
            return {};
        }
        const auto it = reply->id ? index_of_id.find(*reply->id) : index_of_id.end();
        if (it == index_of_id.end()) {
            ADD_FAILURE() << "a reply with an unknown or repeated id";
            return {};
        }
        acks[it->second] = client::Ack{u64_field(*reply, "seq"), u64_field(*reply, "channel_seq"), 0,
                                       bool_field(*reply, "duplicate")};
        index_of_id.erase(it);
        ++received;
    }
    return acks;
}

// A raw SUB socket on the feed, subscribed to `topic` and confirmed live with
// a feed.sync marker (no sleeping for the slow joiner).
class RawFeed {
public:
    RawFeed(zmq::context_t& context, client::Client& client, const std::string& topic)
        : m_sub(context, zmq::socket_type::sub) {
        m_sub.set(zmq::sockopt::linger, 0);
        m_sub.set(zmq::sockopt::subscribe, topic);
        const std::string token = "rawfeed" + std::to_string(reinterpret_cast<std::uintptr_t>(this));
        const auto sync = bus::sync_topic(token);
        m_sub.set(zmq::sockopt::subscribe, sync);
        m_sub.connect(client.options().feed_endpoint);
        const auto deadline = Clock::now() + 10s;
        while (Clock::now() < deadline) {
            client.call_ok(bus::FeedSyncRequest{token});
            const auto round = std::min(deadline, Clock::now() + 100ms);
            while (Clock::now() < round) {
                auto parts = receive(std::chrono::duration_cast<client::Millis>(round - Clock::now()));
                if (parts.empty()) break;
                if (parts[0] == sync) {
                    m_sub.set(zmq::sockopt::unsubscribe, sync);
                    return;
                }
            }
        }
        throw std::runtime_error("feed never confirmed the raw subscription");
    }

    // The next [topic][event] message, or an empty vector on timeout.
    std::vector<std::string> receive(client::Millis timeout) {
        zmq::pollitem_t item{m_sub.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::max(timeout, client::Millis{0})) == 0) return {};
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(m_sub, std::back_inserter(parts), zmq::recv_flags::dontwait)) return {};
        std::vector<std::string> out;
        for (const auto& part : parts) out.push_back(part.to_string());
        return out;
    }

private:
    zmq::socket_t m_sub;
};

TEST(EndToEnd, PublishReachesSubscriberWithItsSeq) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    client::Client bob(context, options_for(daemon));
    alice.hello("alice");
    bob.hello("bob");
    client::Subscription sub(bob, "news");
    const auto ack = alice.publish("news", text_body("hi"));
    const auto message = sub.next(5s);
    ASSERT_TRUE(message);
    EXPECT_EQ(message->seq, ack.seq);
    EXPECT_EQ(message->stream_seq, ack.stream_seq);
    EXPECT_EQ(message->stream_seq, 1U);
    EXPECT_EQ(message->channel, "news");
    EXPECT_EQ(message->from, "alice");
    EXPECT_EQ(message->body, text_body("hi"));
}

TEST(EndToEnd, LateJoinerGetsHistoryThenLiveWithoutGapOrDuplicate) {
    constexpr int k_history = 500;
    constexpr int k_live = 500;
    constexpr int k_total = k_history + k_live;
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client publisher(context, options_for(daemon));
    publisher.hello("publisher");
    ASSERT_EQ(publish_pipelined(publisher, "late", 0, k_history, 64).size(), std::size_t{k_history});

    // A second publisher keeps publishing while the late joiner catches up.
    std::mutex mutex;
    std::condition_variable started_cv;
    bool started = false;
    std::string live_error;
    std::thread live([&] {
        try {
            client::Client live_publisher(context, options_for(daemon));
            live_publisher.hello("live");
            for (int i = 0; i < k_live; ++i) {
                live_publisher.publish("late", text_body("m" + std::to_string(k_history + i)));
                if (i == 20) {
                    std::lock_guard lock(mutex);
                    started = true;
                    started_cv.notify_all();
                }
            }
        } catch (const std::exception& e) {
            std::lock_guard lock(mutex);
            live_error = e.what();
            started = true;
            started_cv.notify_all();
        }
    });
    {
        std::unique_lock lock(mutex);
        ASSERT_TRUE(started_cv.wait_for(lock, 20s, [&] { return started; }));
    }

    client::Client joiner(context, options_for(daemon));
    joiner.hello("joiner");
    std::vector<bus::Message> got;
    {
        client::Subscription sub(joiner, "late", 0);
        const auto deadline = Clock::now() + 30s;
        while (got.size() < std::size_t{k_total} && Clock::now() < deadline) {
            auto message = sub.next(std::chrono::duration_cast<client::Millis>(deadline - Clock::now()));
            if (!message) break;
            got.push_back(std::move(*message));
        }
    }
    live.join();
    ASSERT_EQ(live_error, "");
    ASSERT_EQ(got.size(), std::size_t{k_total});
    for (std::size_t i = 0; i < got.size(); ++i) {
        if (i > 0) {
            ASSERT_GT(got[i].seq, got[i - 1].seq) << "at " << i;
        }
        ASSERT_EQ(got[i].stream_seq, i + 1) << "at " << i;
        ASSERT_EQ(got[i].channel, "late");
        ASSERT_EQ(got[i].body, text_body("m" + std::to_string(i))) << "at " << i;
    }
}

TEST(EndToEnd, SubscriberOfChannelANeverReceivesChannelAB) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    client::Client bob(context, options_for(daemon));
    alice.hello("alice");
    bob.hello("bob");
    // The raw feed sees exactly what the daemon's topics deliver; the
    // Subscription filters again on its own.
    RawFeed raw(context, bob, bus::channel_topic("a"));
    client::Subscription sub(bob, "a");

    alice.publish("ab", text_body("for ab"));
    const auto a_ack = alice.publish("a", text_body("for a"));

    const auto first_raw = raw.receive(5000ms);
    ASSERT_EQ(first_raw.size(), 2U);
    EXPECT_EQ(first_raw[0], "ch/a/");
    const auto handle = msgpack::unpack(first_raw[1].data(), first_raw[1].size());
    const auto raw_message = bus::decode_message(handle.get());
    ASSERT_TRUE(raw_message);
    EXPECT_EQ(raw_message->channel, "a");
    EXPECT_EQ(raw_message->seq, a_ack.seq);

    const auto message = sub.next(5s);
    ASSERT_TRUE(message);
    EXPECT_EQ(message->channel, "a");
    EXPECT_EQ(message->seq, a_ack.seq);
    EXPECT_EQ(message->body, text_body("for a"));

    // Nothing else is queued for "a": a third publish to "a" is next.
    const auto next_ack = alice.publish("a", text_body("again"));
    const auto second_raw = raw.receive(5000ms);
    ASSERT_EQ(second_raw.size(), 2U);
    const auto handle2 = msgpack::unpack(second_raw[1].data(), second_raw[1].size());
    const auto second = bus::decode_message(handle2.get());
    ASSERT_TRUE(second);
    EXPECT_EQ(second->seq, next_ack.seq);
}

TEST(EndToEnd, ChannelChangesAppearOnTheSystemTopic) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    RawFeed raw(context, alice, std::string(bus::k_channels_topic));

    bus::ChannelCreateRequest create;
    create.name = "watched";
    const auto created_seq = u64_field(alice.call_ok(create), "seq");
    const auto subscribed_seq = u64_field(alice.call_ok(bus::SubscribeRequest{"watched", std::nullopt}), "seq");

    struct Seen {
        std::string event, channel;
        std::uint64_t seq = 0;
    };
    auto next_event = [&raw]() -> std::optional<Seen> {
        const auto parts = raw.receive(5000ms);
        if (parts.size() != 2 || parts[0] != bus::k_channels_topic) return std::nullopt;
        const auto handle = msgpack::unpack(parts[1].data(), parts[1].size());
        const auto& map = handle.get();
        if (map.type != msgpack::type::MAP) return std::nullopt;
        Seen seen;
        for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
            const auto& [key, value] = map.via.map.ptr[i];
            const std::string_view name(key.via.str.ptr, key.type == msgpack::type::STR ? key.via.str.size : 0);
            if (name == "event" && value.type == msgpack::type::STR) {
                seen.event.assign(value.via.str.ptr, value.via.str.size);
            }
            if (name == "channel" && value.type == msgpack::type::STR) {
                seen.channel.assign(value.via.str.ptr, value.via.str.size);
            }
            if (name == "seq" && value.type == msgpack::type::POSITIVE_INTEGER) seen.seq = value.via.u64;
        }
        return seen;
    };
    const auto first = next_event();
    ASSERT_TRUE(first);
    EXPECT_EQ(first->event, "channel.created");
    EXPECT_EQ(first->channel, "watched");
    EXPECT_EQ(first->seq, created_seq);
    const auto second = next_event();
    ASSERT_TRUE(second);
    EXPECT_EQ(second->event, "subscription.added");
    EXPECT_EQ(second->channel, "watched");
    EXPECT_EQ(second->seq, subscribed_seq);
}

TEST(EndToEnd, DirectMessageIsPushedAndKeptInConversationAndInbox) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    client::Client bob(context, options_for(daemon));
    alice.hello("alice");
    bob.hello("bob");

    const auto to_bob = alice.send("bob", text_body("hello bob"));
    const auto pushed = bob.next_push(5s);
    ASSERT_TRUE(pushed);
    EXPECT_EQ(pushed->seq, to_bob.seq);
    EXPECT_EQ(pushed->stream_seq, to_bob.stream_seq);
    EXPECT_EQ(pushed->stream_seq, 1U);
    EXPECT_EQ(pushed->from, "alice");
    EXPECT_EQ(pushed->to, "bob");
    EXPECT_FALSE(pushed->channel);
    EXPECT_EQ(pushed->body, text_body("hello bob"));

    const auto to_alice = bob.send("alice", text_body("hello alice"), "text", std::nullopt, to_bob.seq);
    const auto pushed_back = alice.next_push(5s);
    ASSERT_TRUE(pushed_back);
    EXPECT_EQ(pushed_back->seq, to_alice.seq);
    EXPECT_EQ(pushed_back->reply_to, to_bob.seq);
    // A message to someone else is not part of the conversation.
    alice.send("carol", text_body("hello carol"));

    bus::HistoryRequest conversation;
    conversation.peer = "bob";
    const auto talk = alice.history(conversation);
    ASSERT_EQ(talk.messages.size(), 2U);
    EXPECT_FALSE(talk.more);
    EXPECT_EQ(talk.messages[0].seq, to_bob.seq);
    EXPECT_EQ(talk.messages[0].from, "alice");
    EXPECT_EQ(talk.messages[0].to, "bob");
    EXPECT_EQ(talk.messages[1].seq, to_alice.seq);
    EXPECT_EQ(talk.messages[1].from, "bob");
    EXPECT_EQ(talk.messages[1].to, "alice");
    EXPECT_EQ(talk.messages[1].body, text_body("hello alice"));

    // The same conversation seen from bob's side.
    conversation.peer = "alice";
    const auto talk_bob = bob.history(conversation);
    ASSERT_EQ(talk_bob.messages.size(), 2U);
    EXPECT_TRUE(same_message(talk_bob.messages[0], talk.messages[0]));
    EXPECT_TRUE(same_message(talk_bob.messages[1], talk.messages[1]));

    bus::HistoryRequest inbox;
    inbox.inbox = true;
    const auto bob_inbox = bob.history(inbox);
    ASSERT_EQ(bob_inbox.messages.size(), 1U);
    EXPECT_EQ(bob_inbox.messages[0].seq, to_bob.seq);
    EXPECT_EQ(bob_inbox.messages[0].from, "alice");
    EXPECT_EQ(bob_inbox.messages[0].body, text_body("hello bob"));
}

TEST(EndToEnd, OfflineRecipientGetsPendingMessagesOnHelloUntilAcked) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    std::vector<client::Ack> sent;
    for (int i = 0; i < 3; ++i) sent.push_back(alice.send("carol", text_body("pending " + std::to_string(i))));

    std::uint64_t last_pushed = 0;
    {
        client::Client carol(context, options_for(daemon));
        const auto hello = carol.call_ok(bus::HelloRequest{"carol"});
        EXPECT_EQ(u64_field(hello, "mailbox_acked"), 0U);
        for (std::size_t i = 0; i < sent.size(); ++i) {
            const auto push = carol.next_push(5s);
            ASSERT_TRUE(push) << "push " << i;
            EXPECT_EQ(push->seq, sent[i].seq);
            EXPECT_EQ(push->stream_seq, i + 1);
            EXPECT_EQ(push->body, text_body("pending " + std::to_string(i)));
            last_pushed = push->seq;
        }
        const auto ack = carol.call_ok(bus::AckRequest{last_pushed, std::nullopt});
        EXPECT_EQ(u64_field(ack, "acked"), last_pushed);
    }

    // A new connection: the daemon pushes after the hello reply and before
    // answering the ping, so once the ping is answered nothing is on its way.
    client::Client carol_again(context, options_for(daemon));
    const auto hello = carol_again.call_ok(bus::HelloRequest{"carol"});
    EXPECT_EQ(u64_field(hello, "mailbox_acked"), last_pushed);
    carol_again.call_ok(bus::PingRequest{});
    EXPECT_FALSE(carol_again.next_push(0ms));

    // What comes next is carol_again's: a replica that says hello later is
    // not pushed what another one holds...
    const auto later = alice.send("carol", text_body("after ack"));
    const auto held = carol_again.next_push(5s);
    ASSERT_TRUE(held);
    EXPECT_EQ(held->seq, later.seq);
    client::Client carol_third(context, options_for(daemon));
    carol_third.hello("carol");
    carol_third.call_ok(bus::PingRequest{});
    EXPECT_FALSE(carol_third.next_push(0ms));
    // ...until that one leaves: then it is handed over at once, as the same
    // delivery (a reconnect, not a failure).
    carol_again.call_ok(bus::ByeRequest{});
    const auto push = carol_third.next_push(5s);
    ASSERT_TRUE(push);
    EXPECT_EQ(push->seq, later.seq);
    EXPECT_EQ(push->deliveries, 1U);
    EXPECT_TRUE(push->redelivered);
    carol_third.call_ok(bus::PingRequest{});
    EXPECT_FALSE(carol_third.next_push(0ms));
}

TEST(EndToEnd, HelloPushesAPageOfTheMailboxAndEachAckTheNext) {
    // PROTOCOL.md: hello pushes the unacknowledged direct messages up to
    // 1000, oldest first; each ack pushes the next page; history inbox has all.
    constexpr std::size_t k_limit = 1000;
    constexpr std::size_t k_pending = k_limit + 100;
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    std::map<std::uint64_t, std::size_t> index_of_id;
    for (std::size_t i = 0; i < k_pending; ++i) {
        index_of_id[alice.send_request(bus::SendRequest{"dave", std::nullopt, bus::pack_as_value(i), std::nullopt,
                                                        std::nullopt, std::nullopt})] = i;
    }
    std::vector<std::uint64_t> seqs(k_pending);
    for (std::size_t received = 0; received < k_pending; ++received) {
        const auto reply = alice.receive_reply(10000ms);
        ASSERT_TRUE(reply && reply->ok && reply->id);
        seqs.at(index_of_id.at(*reply->id)) = u64_field(*reply, "seq");
    }

    client::Client dave(context, options_for(daemon));
    dave.hello("dave");
    dave.call_ok(bus::PingRequest{});  // every push of the hello precedes this reply
    for (std::size_t i = 0; i < k_limit; ++i) {
        const auto push = dave.next_push(0ms);
        ASSERT_TRUE(push) << "only " << i << " pushes";
        ASSERT_EQ(push->seq, seqs[i]);
        ASSERT_EQ(push->stream_seq, i + 1);
    }
    EXPECT_FALSE(dave.next_push(0ms)) << "more than the replay limit was pushed";

    bus::HistoryRequest rest;
    rest.inbox = true;
    rest.after = seqs[k_limit - 1];
    rest.limit = bus::k_max_history_limit;
    const auto page = dave.history(rest);
    ASSERT_EQ(page.messages.size(), k_pending - k_limit);
    EXPECT_EQ(page.messages.front().seq, seqs[k_limit]);
    EXPECT_EQ(page.messages.back().seq, seqs.back());

    // Acknowledging the first page pushes the rest, in order, without a new hello.
    dave.call_ok(bus::AckRequest{seqs[k_limit - 1], std::nullopt});
    dave.call_ok(bus::PingRequest{});
    for (std::size_t i = k_limit; i < k_pending; ++i) {
        const auto push = dave.next_push(0ms);
        ASSERT_TRUE(push) << "only " << i << " pushes after the ack";
        ASSERT_EQ(push->seq, seqs[i]);
    }
    EXPECT_FALSE(dave.next_push(0ms)) << "a message was pushed twice";
}

TEST(EndToEnd, RetriedPublishWithSameIdempotencyKeyReturnsFirstSeq) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    const auto first = alice.publish("orders", text_body("order 1"), "text", "order-1");
    const auto events_after_first = u64_field(alice.call_ok(bus::StatsRequest{}), "events");
    const auto retry = alice.publish("orders", text_body("order 1"), "text", "order-1");
    EXPECT_FALSE(first.duplicate);
    EXPECT_TRUE(retry.duplicate);
    EXPECT_EQ(retry.seq, first.seq);
    EXPECT_EQ(retry.stream_seq, first.stream_seq);
    EXPECT_EQ(u64_field(alice.call_ok(bus::StatsRequest{}), "events"), events_after_first);

    // Another key is a new message; the same key from another bot too.
    const auto other = alice.publish("orders", text_body("order 2"), "text", "order-2");
    EXPECT_FALSE(other.duplicate);
    EXPECT_EQ(other.stream_seq, 2U);
    client::Client bob(context, options_for(daemon));
    bob.hello("bob");
    const auto bobs = bob.publish("orders", text_body("bob's order"), "text", "order-1");
    EXPECT_FALSE(bobs.duplicate);
    EXPECT_EQ(bobs.stream_seq, 3U);

    const auto history = full_history(alice, "orders");
    ASSERT_EQ(history.size(), 3U);
    EXPECT_EQ(history[0].seq, first.seq);
    EXPECT_EQ(history[0].body, text_body("order 1"));
    EXPECT_EQ(history[1].seq, other.seq);
    EXPECT_EQ(history[2].seq, bobs.seq);
}

TEST(EndToEnd, ReqSocketGetsRepliesWithItsEnvelope) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    zmq::socket_t req(context, zmq::socket_type::req);
    req.set(zmq::sockopt::linger, 0);
    req.set(zmq::sockopt::rcvtimeo, 10000);
    req.connect(daemon.command_endpoint());

    auto round_trip = [&req](const bus::Request& request, std::uint64_t id) {
        const auto frame = bus::encode_request(request, bus::pack_as_value(id));
        EXPECT_TRUE(req.send(zmq::buffer(frame), zmq::send_flags::none));
        zmq::message_t reply_frame;
        const auto got = req.recv(reply_frame);  // REQ strips the empty delimiter
        if (!got) {
            ADD_FAILURE() << "no reply on the REQ socket";
            return std::optional<bus::Reply>{};
        }
        EXPECT_FALSE(reply_frame.more());
        return bus::decode_reply(reply_frame.to_string_view());
    };

    const auto pong = round_trip(bus::PingRequest{}, 7);
    ASSERT_TRUE(pong);
    EXPECT_TRUE(pong->ok);
    EXPECT_EQ(pong->id, 7U);
    EXPECT_TRUE(bool_field(*pong, "pong"));

    // A REQ bot can identify and publish; it is never sent unsolicited
    // pushes (which would break its send/receive lockstep).
    const auto hello = round_trip(bus::HelloRequest{"reqbot"}, 8);
    ASSERT_TRUE(hello);
    EXPECT_TRUE(hello->ok);
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    alice.send("reqbot", text_body("not pushed to REQ"));
    const auto published = round_trip(
        bus::PublishRequest{"req", std::nullopt, text_body("from req"), std::nullopt, std::nullopt}, 9);
    ASSERT_TRUE(published);
    EXPECT_TRUE(published->ok) << published->error_name;
    EXPECT_EQ(published->id, 9U);
    EXPECT_EQ(u64_field(*published, "channel_seq"), 1U);
}

TEST(EndToEnd, PipelinedDealerGetsEveryReplyInRequestOrder) {
    constexpr int k_count = 2000;
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");

    std::vector<std::uint64_t> ids;
    for (int i = 0; i < k_count; ++i) {
        ids.push_back(alice.send_request(bus::PublishRequest{"pipe", std::nullopt, text_body("m" + std::to_string(i)),
                                                             std::nullopt, std::nullopt}));
    }
    ASSERT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()).size(), std::size_t{k_count});

    // One connection's requests run in arrival order and are answered in
    // that order: the i-th reply answers the i-th request, which took the
    // channel's i-th position and the next seq of the log.
    std::optional<std::uint64_t> first_seq;
    const auto deadline = Clock::now() + 30s;
    std::size_t received = 0;
    while (received < ids.size() && Clock::now() < deadline) {
        const auto reply = alice.receive_reply(std::chrono::duration_cast<client::Millis>(deadline - Clock::now()));
        if (!reply) break;
        ASSERT_TRUE(reply->ok) << reply->error_name << ": " << reply->message;
        ASSERT_TRUE(reply->id);
        ASSERT_EQ(*reply->id, ids[received]) << "reply " << received << " answers another request";
        const auto seq = u64_field(*reply, "seq");
        if (!first_seq) first_seq = seq;
        EXPECT_EQ(seq, *first_seq + received) << "seqs are not contiguous in request order";
        EXPECT_EQ(u64_field(*reply, "channel_seq"), received + 1);
        ++received;
    }
    ASSERT_EQ(received, ids.size()) << "the daemon stalled or dropped replies";
}

TEST(EndToEnd, SeveralPipeliningClientsAllGetEveryReply) {
    constexpr int k_threads = 4;
    constexpr int k_per_thread = 500;
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;

    std::vector<std::vector<client::Ack>> acks(k_threads);
    std::vector<std::string> errors(k_threads);
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&, t] {
            try {
                client::Client bot(context, options_for(daemon));
                bot.hello("bot" + std::to_string(t));
                acks[static_cast<std::size_t>(t)] =
                    publish_pipelined(bot, "shared", t * k_per_thread, k_per_thread, 64);
            } catch (const std::exception& e) {
                errors[static_cast<std::size_t>(t)] = e.what();
            }
        });
    }
    for (auto& thread : threads) thread.join();

    std::set<std::uint64_t> seqs;
    std::set<std::uint64_t> channel_seqs;
    for (int t = 0; t < k_threads; ++t) {
        const auto index = static_cast<std::size_t>(t);
        EXPECT_EQ(errors[index], "") << "thread " << t;
        ASSERT_EQ(acks[index].size(), std::size_t{k_per_thread}) << "thread " << t;
        for (const auto& ack : acks[index]) {
            EXPECT_FALSE(ack.duplicate);
            seqs.insert(ack.seq);
            channel_seqs.insert(ack.stream_seq);
        }
    }
    constexpr auto k_total = std::size_t{k_threads * k_per_thread};
    EXPECT_EQ(seqs.size(), k_total);
    ASSERT_EQ(channel_seqs.size(), k_total);
    EXPECT_EQ(*channel_seqs.begin(), 1U);
    EXPECT_EQ(*channel_seqs.rbegin(), k_total);

    client::Client observer(context, options_for(daemon));
    const auto stats = observer.call_ok(bus::StatsRequest{});
    EXPECT_EQ(u64_field(stats, "messages"), k_total);
    EXPECT_EQ(u64_field(stats, "dropped_replies"), 0U);
    // Every acknowledged publish waited for a WAL sync, and a sync covers
    // one batch or several, never a fraction of one. (PostgreSQL's commit is
    // durable by itself: no syncs.)
    if (!testing::test_store_is_postgres()) {
        EXPECT_GE(u64_field(stats, "syncs"), 1U);
    }
    EXPECT_LE(u64_field(stats, "syncs"), u64_field(stats, "batches"));
}

TEST(EndToEnd, ClientThatStopsReadingLosesNoReplies) {
    // More replies than the ROUTER's queue to one peer holds (--send-hwm
    // 1000 plus what TCP buffers): the daemon must park the overflow
    // (ROUTER_MANDATORY) and deliver it once the client reads again, not
    // drop it silently. 60000 replies of ~150 bytes (9 MB) stay within the
    // per-peer backlog (16 MiB), so no reply may be dropped. A small receive
    // buffer keeps TCP from absorbing the overflow. Its 60000 requests in
    // flight are allowed: refusing past --max-in-flight is limits_e2e_test's.
    constexpr std::size_t k_count = 60000;
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--max-in-flight", std::to_string(k_count)});
    zmq::context_t context;
    zmq::socket_t slow(context, zmq::socket_type::dealer);
    slow.set(zmq::sockopt::linger, 0);
    slow.set(zmq::sockopt::rcvbuf, 64 * 1024);
    // The daemon reads every request however full this peer's replies are:
    // a send that blocks this long means it stopped reading, which fails
    // here, naming where, instead of at ctest's timeout.
    slow.set(zmq::sockopt::sndtimeo, 30000);
    slow.connect(daemon.command_endpoint());
    const std::string token(120, 't');
    for (std::size_t i = 0; i < k_count; ++i) {
        const auto frame = bus::encode_request(bus::FeedSyncRequest{token}, bus::pack_as_value(i));
        ASSERT_TRUE(slow.send(zmq::buffer(frame), zmq::send_flags::none))
            << "request " << i << " of " << k_count << " could not be sent for 30 s: the daemon stopped reading; "
            << daemon.stderr_text();
    }

    const auto deadline = Clock::now() + 40s;
    std::vector<bool> seen(k_count, false);
    std::size_t received = 0;
    while (received < k_count && Clock::now() < deadline) {
        // A reply that is lost stalls the stream: give up after 5 s of silence.
        const auto wait = std::min(std::chrono::duration_cast<client::Millis>(deadline - Clock::now()),
                                   client::Millis{5000});
        zmq::pollitem_t item{slow.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::max(wait, client::Millis{0})) == 0) break;
        zmq::message_t frame;
        if (!slow.recv(frame, zmq::recv_flags::dontwait)) continue;
        const auto reply = bus::decode_reply(frame.to_string_view());
        ASSERT_TRUE(reply && reply->ok);
        ASSERT_TRUE(reply->id && *reply->id < k_count && !seen[*reply->id]) << "unknown or repeated id";
        seen[*reply->id] = true;
        ++received;
    }
    EXPECT_EQ(received, k_count);
    client::Client observer(context, options_for(daemon));
    EXPECT_EQ(u64_field(observer.call_ok(bus::StatsRequest{}), "dropped_replies"), 0U);
}

TEST(EndToEnd, PipelinedRetryWithSameKeyInOneBurstAppendsOnce) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    // hello and both publishes leave before any reply: they usually share a
    // batch, so the second must find the first inside the open batch.
    alice.send_request(bus::HelloRequest{"alice"});
    const bus::PublishRequest publish{"once", std::nullopt, text_body("x"), std::string("key-1"), std::nullopt};
    alice.send_request(publish);
    alice.send_request(publish);
    std::vector<bus::Reply> replies;
    for (int i = 0; i < 3; ++i) {
        auto reply = alice.receive_reply(10000ms);
        ASSERT_TRUE(reply);
        ASSERT_TRUE(reply->ok) << reply->error_name << ": " << reply->message;
        replies.push_back(std::move(*reply));
    }
    std::sort(replies.begin(), replies.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    EXPECT_EQ(u64_field(replies[1], "seq"), u64_field(replies[2], "seq"));
    EXPECT_EQ(u64_field(replies[1], "channel_seq"), 1U);
    EXPECT_EQ(u64_field(replies[2], "channel_seq"), 1U);
    EXPECT_FALSE(bool_field(replies[1], "duplicate"));
    EXPECT_TRUE(bool_field(replies[2], "duplicate"));
    EXPECT_EQ(full_history(alice, "once").size(), 1U);
}

TEST(EndToEnd, DirectMessageIsPushedToEveryFanOutConnectionOfTheRecipient) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    client::Client bob_phone(context, options_for(daemon));
    client::Client bob_laptop(context, options_for(daemon));
    alice.hello("alice");
    bus::HelloRequest fan_out{"bob"};
    fan_out.fan_out = true;
    bob_phone.call_ok(fan_out);
    bob_laptop.call_ok(fan_out);
    const auto sent = alice.send("bob", text_body("to both"));
    for (auto* bob : {&bob_phone, &bob_laptop}) {
        const auto push = bob->next_push(5s);
        ASSERT_TRUE(push);
        EXPECT_EQ(push->seq, sent.seq);
        EXPECT_EQ(push->body, text_body("to both"));
    }
    // A connection that re-identifies as someone else stops getting bob's mail.
    bob_laptop.hello("robert");
    const auto second = alice.send("bob", text_body("phone only"));
    const auto push = bob_phone.next_push(5s);
    ASSERT_TRUE(push);
    EXPECT_EQ(push->seq, second.seq);
    bob_laptop.call_ok(bus::PingRequest{});
    EXPECT_FALSE(bob_laptop.next_push(0ms));
}

TEST(EndToEnd, LockedDatabaseAnswersStorageErrorThenRecoversWithoutGap) {
    if (testing::test_store_is_postgres()) GTEST_SKIP() << "locks SQLite's file";
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    testing::DaemonProcess daemon(data);
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    const auto before = alice.publish("locked", text_body("before"));

    client::Client eve(context, options_for(daemon));
    {
        // Another writer holds the database: the daemon's batch cannot begin
        // (after its busy timeout, 5 s) and must fail as a whole.
        SQLite::Database intruder((data / "botbus.db").string(), SQLite::OPEN_READWRITE);
        intruder.exec("BEGIN IMMEDIATE");
        std::set<std::uint64_t> ids;
        ids.insert(eve.send_request(bus::HelloRequest{"eve"}));
        ids.insert(eve.send_request(
            bus::PublishRequest{"locked", std::nullopt, text_body("lost"), std::nullopt, std::nullopt}));
        for (int i = 0; i < 2; ++i) {
            const auto reply = eve.receive_reply(20000ms);
            ASSERT_TRUE(reply);
            EXPECT_FALSE(reply->ok);
            EXPECT_EQ(reply->error_name, "storage_error");
            ASSERT_TRUE(reply->id) << "the storage_error reply does not echo the request id";
            EXPECT_EQ(ids.erase(*reply->id), 1U);
        }
        intruder.exec("ROLLBACK");
    }

    // The failed hello did not identify the connection.
    const auto unidentified = eve.call(
        bus::PublishRequest{"locked", std::nullopt, text_body("eve"), std::nullopt, std::nullopt});
    EXPECT_FALSE(unidentified.ok);
    EXPECT_EQ(unidentified.error_name, "not_identified");

    const auto after = alice.publish("locked", text_body("after"));
    EXPECT_EQ(after.seq, before.seq + 1) << "a failed batch used up seqs";
    EXPECT_EQ(after.stream_seq, before.stream_seq + 1);
    const auto history = full_history(alice, "locked");
    ASSERT_EQ(history.size(), 2U);
    EXPECT_EQ(history[0].body, text_body("before"));
    EXPECT_EQ(history[1].body, text_body("after"));
}

TEST(EndToEnd, RestartKeepsChannelsSubscriptionsAndMessages) {
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    zmq::context_t context;

    std::string channels_before;
    std::vector<std::string> subscriptions_before;
    std::vector<std::string> subscribers_before;
    std::vector<bus::Message> ops_before;
    std::vector<bus::Message> inbox_before;
    std::uint64_t last_seq_before = 0;
    {
        testing::DaemonProcess daemon(data);
        client::Client alice(context, options_for(daemon));
        alice.hello("alice");
        bus::ChannelCreateRequest create;
        create.name = "ops";
        create.description = "operations";
        alice.call_ok(create);
        alice.call_ok(bus::SubscribeRequest{"ops", std::nullopt});
        alice.call_ok(bus::SubscribeRequest{"news", std::nullopt});
        alice.call_ok(bus::SubscribeRequest{"ops", std::string("bob")});
        for (int i = 0; i < 3; ++i) alice.publish("ops", text_body("ops " + std::to_string(i)));
        alice.publish("news", text_body("news 0"));
        alice.send("bob", text_body("direct"));

        channels_before = packed_field(alice.call_ok(bus::ChannelListRequest{}), "channels");
        subscriptions_before = string_list(alice.call_ok(bus::SubscriptionsRequest{std::string("alice")}), "channels");
        subscribers_before = string_list(alice.call_ok(bus::SubscribersRequest{"ops"}), "bots");
        ops_before = full_history(alice, "ops");
        bus::HistoryRequest inbox;
        inbox.inbox = true;
        inbox.bot = "bob";
        inbox_before = alice.history(inbox).messages;
        last_seq_before = u64_field(alice.call_ok(bus::StatsRequest{}), "last_seq");
        ASSERT_EQ(daemon.terminate(), 0);
    }
    ASSERT_EQ(subscriptions_before, (std::vector<std::string>{"news", "ops"}));
    ASSERT_EQ(subscribers_before, (std::vector<std::string>{"alice", "bob"}));
    ASSERT_EQ(ops_before.size(), 3U);
    ASSERT_EQ(inbox_before.size(), 1U);

    testing::DaemonProcess daemon(data);
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    EXPECT_EQ(packed_field(alice.call_ok(bus::ChannelListRequest{}), "channels"), channels_before);
    EXPECT_EQ(string_list(alice.call_ok(bus::SubscriptionsRequest{std::string("alice")}), "channels"),
              subscriptions_before);
    EXPECT_EQ(string_list(alice.call_ok(bus::SubscribersRequest{"ops"}), "bots"), subscribers_before);
    const auto ops_after = full_history(alice, "ops");
    ASSERT_EQ(ops_after.size(), ops_before.size());
    for (std::size_t i = 0; i < ops_after.size(); ++i) {
        EXPECT_TRUE(same_message(ops_after[i], ops_before[i])) << "message " << i;
    }
    bus::HistoryRequest inbox;
    inbox.inbox = true;
    inbox.bot = "bob";
    const auto inbox_after = alice.history(inbox).messages;
    ASSERT_EQ(inbox_after.size(), 1U);
    EXPECT_TRUE(same_message(inbox_after[0], inbox_before[0]));

    EXPECT_EQ(u64_field(alice.call_ok(bus::StatsRequest{}), "last_seq"), last_seq_before);
    const auto next = alice.publish("ops", text_body("after restart"));
    EXPECT_EQ(next.seq, last_seq_before + 1);
    EXPECT_EQ(next.stream_seq, ops_before.back().stream_seq + 1);
}

TEST(EndToEnd, ChannelOpsReportConflictsAndMissingChannels) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");

    bus::ChannelCreateRequest create;
    create.name = "dup";
    const auto created = alice.call(create);
    EXPECT_TRUE(created.ok) << created.error_name;
    const auto again = alice.call(create);
    EXPECT_FALSE(again.ok);
    EXPECT_EQ(again.error_name, "conflict");
    EXPECT_EQ(again.error, bus::Errc::conflict);

    const auto deleted_unknown = alice.call(bus::ChannelDeleteRequest{"nosuch"});
    EXPECT_FALSE(deleted_unknown.ok);
    EXPECT_EQ(deleted_unknown.error_name, "not_found");

    const auto subscribers_unknown = alice.call(bus::SubscribersRequest{"nosuch"});
    EXPECT_FALSE(subscribers_unknown.ok);
    EXPECT_EQ(subscribers_unknown.error_name, "not_found");

    EXPECT_TRUE(bool_field(alice.call_ok(bus::SubscribeRequest{"dup", std::nullopt}), "subscribed"));
    EXPECT_FALSE(bool_field(alice.call_ok(bus::SubscribeRequest{"dup", std::nullopt}), "subscribed"));
    EXPECT_TRUE(bool_field(alice.call_ok(bus::UnsubscribeRequest{"dup", std::nullopt}), "unsubscribed"));
    EXPECT_FALSE(bool_field(alice.call_ok(bus::UnsubscribeRequest{"dup", std::nullopt}), "unsubscribed"));

    // Deleting works once, then the channel is unknown again.
    EXPECT_TRUE(alice.call(bus::ChannelDeleteRequest{"dup"}).ok);
    EXPECT_EQ(alice.call(bus::ChannelDeleteRequest{"dup"}).error_name, "not_found");
}

}  // namespace
}  // namespace botbus
