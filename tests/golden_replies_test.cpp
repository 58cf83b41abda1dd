// Golden requests against the real botbusd, over raw ZeroMQ (no client
// library, no bus/protocol/codec): every request is a golden frame packed by
// python3-msgpack (golden_frames.hpp), and every reply, push and feed event
// is checked against the shape docs/PROTOCOL.md documents for it: exactly
// the documented keys, each value's type, and the value itself where the
// protocol makes it deterministic. The shapes below are written from the
// document, not from what the daemon answers.
#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "golden_support.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using testing::canonical;
using testing::golden;

// ---- value checks

// Checks one value; `path` names it in failure messages.
using Check = std::function<void(const msgpack::object&, const std::string& path)>;

// A map's documented keys: each with its check, and whether it may be absent.
struct Key {
    Check check;
    bool optional = false;
};
using Shape = std::map<std::string, Key>;

std::string type_name(const msgpack::object& value) {
    switch (value.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "bool";
    case msgpack::type::POSITIVE_INTEGER: return "uint";
    case msgpack::type::NEGATIVE_INTEGER: return "negative int";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return "float";
    case msgpack::type::STR: return "str";
    case msgpack::type::BIN: return "bin";
    case msgpack::type::ARRAY: return "array";
    case msgpack::type::MAP: return "map";
    case msgpack::type::EXT: return "ext";
    }
    return "?";
}

bool expect_type(const msgpack::object& value, const std::string& path, msgpack::type::object_type type,
                 const char* documented) {
    if (value.type == type) return true;
    ADD_FAILURE() << path << ": documented as " << documented << ", got " << type_name(value) << " "
                  << canonical(value);
    return false;
}

std::string as_text(const msgpack::object& value) { return std::string(value.via.str.ptr, value.via.str.size); }

Check str() {
    return [](const msgpack::object& v, const std::string& p) { expect_type(v, p, msgpack::type::STR, "str"); };
}
Check str(std::string expected) {
    return [expected](const msgpack::object& v, const std::string& p) {
        if (expect_type(v, p, msgpack::type::STR, "str")) { EXPECT_EQ(as_text(v), expected) << p; }
    };
}
Check str_starting(std::string prefix) {
    return [prefix](const msgpack::object& v, const std::string& p) {
        if (expect_type(v, p, msgpack::type::STR, "str")) { EXPECT_TRUE(as_text(v).starts_with(prefix)) << p << ": " << as_text(v); }
    };
}
Check uint_() {
    return [](const msgpack::object& v, const std::string& p) {
        expect_type(v, p, msgpack::type::POSITIVE_INTEGER, "uint");
    };
}
Check uint_(std::uint64_t expected) {
    return [expected](const msgpack::object& v, const std::string& p) {
        if (expect_type(v, p, msgpack::type::POSITIVE_INTEGER, "uint")) { EXPECT_EQ(v.via.u64, expected) << p; }
    };
}
Check uint_at_least(std::uint64_t least) {
    return [least](const msgpack::object& v, const std::string& p) {
        if (expect_type(v, p, msgpack::type::POSITIVE_INTEGER, "uint")) { EXPECT_GE(v.via.u64, least) << p; }
    };
}
// Takes the value too, for later requests and comparisons.
Check uint_into(std::uint64_t& out) {
    return [&out](const msgpack::object& v, const std::string& p) {
        if (expect_type(v, p, msgpack::type::POSITIVE_INTEGER, "uint")) out = v.via.u64;
    };
}
// A time in µs since the epoch: an integer, within a day of now.
Check ts() {
    return [](const msgpack::object& v, const std::string& p) {
        if (v.type != msgpack::type::POSITIVE_INTEGER && v.type != msgpack::type::NEGATIVE_INTEGER) {
            ADD_FAILURE() << p << ": documented as int (µs), got " << type_name(v);
            return;
        }
        const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
        const std::int64_t day = 86'400'000'000;
        EXPECT_GT(v.via.i64, now - day) << p << " is not a plausible µs timestamp";
        EXPECT_LT(v.via.i64, now + day) << p << " is not a plausible µs timestamp";
    };
}
Check boolean(bool expected) {
    return [expected](const msgpack::object& v, const std::string& p) {
        if (expect_type(v, p, msgpack::type::BOOLEAN, "bool")) { EXPECT_EQ(v.via.boolean, expected) << p; }
    };
}
Check nil() {
    return [](const msgpack::object& v, const std::string& p) { expect_type(v, p, msgpack::type::NIL, "nil"); };
}
Check or_nil(Check check) {
    return [check](const msgpack::object& v, const std::string& p) {
        if (v.type != msgpack::type::NIL) check(v, p);
    };
}
// Any value equal to this canonical text (see testing::canonical).
Check equals(std::string expected) {
    return [expected](const msgpack::object& v, const std::string& p) { EXPECT_EQ(canonical(v), expected) << p; };
}
void check_map(const msgpack::object& value, const std::string& path, const Shape& shape) {
    if (!expect_type(value, path, msgpack::type::MAP, "map")) return;
    std::set<std::string> present;
    for (std::uint32_t i = 0; i < value.via.map.size; ++i) {
        const auto& kv = value.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) {
            ADD_FAILURE() << path << ": a key that is not a string: " << canonical(kv.key);
            continue;
        }
        const auto key = as_text(kv.key);
        present.insert(key);
        const auto documented = shape.find(key);
        if (documented == shape.end()) {
            ADD_FAILURE() << path << "." << key << ": not documented (value " << canonical(kv.val) << ")";
            continue;
        }
        documented->second.check(kv.val, path + "." + key);
    }
    for (const auto& [key, documented] : shape) {
        if (!documented.optional && !present.contains(key)) ADD_FAILURE() << path << "." << key << ": missing";
    }
}
Check map(Shape shape) {
    return [shape](const msgpack::object& v, const std::string& p) { check_map(v, p, shape); };
}
// An array with exactly these elements.
Check array(std::vector<Check> elements) {
    return [elements](const msgpack::object& v, const std::string& p) {
        if (!expect_type(v, p, msgpack::type::ARRAY, "array")) return;
        ASSERT_EQ(v.via.array.size, elements.size()) << p << " = " << canonical(v);
        for (std::size_t i = 0; i < elements.size(); ++i) elements[i](v.via.array.ptr[i], p + "[" + std::to_string(i) + "]");
    };
}

// A connection consuming a mailbox or subscription, as mailbox and consumers list it.
Check replica(std::uint64_t in_flight) {
    return map({{"connection", {str()}}, {"credit", {uint_()}}, {"in_flight", {uint_(in_flight)}}});
}
Check strings(std::vector<std::string> expected) {
    std::vector<Check> elements;
    for (auto& s : expected) elements.push_back(str(s));
    return array(elements);
}
Key opt(Check check) { return Key{std::move(check), true}; }

// ---- documented shapes

// A channel map (PROTOCOL.md, channel.create).
Check channel_map(std::string name, std::optional<std::string> description, std::uint64_t subscribers,
                  std::optional<std::uint64_t> max_age_ms = std::nullopt,
                  std::optional<std::uint64_t> max_messages = std::nullopt) {
    return map({{"name", {str(name)}},
                {"description", {description ? str(*description) : nil()}},
                {"created_by", {str("alice")}},
                {"created_at", {ts()}},
                {"subscribers", {uint_(subscribers)}},
                {"last_channel_seq", {uint_()}},
                {"max_age_ms", {max_age_ms ? uint_(*max_age_ms) : nil()}},
                {"max_messages", {max_messages ? uint_(*max_messages) : nil()}}});
}

// A message map (PROTOCOL.md, history): the common keys; callers add the
// channel or direct-message keys and those present only sometimes.
Shape message_shape(std::uint64_t seq, std::string from, std::string type, std::string body) {
    return {{"seq", {uint_(seq)}}, {"ts", {ts()}}, {"from", {str(from)}}, {"type", {str(type)}}, {"body", {equals(body)}}};
}
Shape channel_message(std::uint64_t seq, std::string from, std::string type, std::string body, std::string channel,
                      std::uint64_t channel_seq) {
    auto shape = message_shape(seq, from, type, body);
    shape["channel"] = {str(channel)};
    shape["channel_seq"] = {uint_(channel_seq)};
    return shape;
}
Shape direct_message(std::uint64_t seq, std::string from, std::string type, std::string body, std::string to,
                     std::uint64_t mailbox_seq) {
    auto shape = message_shape(seq, from, type, body);
    shape["to"] = {str(to)};
    shape["mailbox_seq"] = {uint_(mailbox_seq)};
    return shape;
}
Shape answering(Shape shape, std::uint64_t reply_to, std::uint64_t conversation, std::uint64_t hop) {
    shape["reply_to"] = {uint_(reply_to)};
    shape["conversation"] = {uint_(conversation)};
    shape["hop"] = {uint_(hop)};
    return shape;
}

// A message push (PROTOCOL.md, Direct-message delivery).
Shape message_push(Shape message, std::uint64_t deliveries = 1, bool redelivered = false) {
    return {{"push", {str("message")}},
            {"message", {map(std::move(message))}},
            {"deliveries", {uint_(deliveries)}},
            {"redelivered", {boolean(redelivered)}}};
}

Shape error_shape(const std::string& id, std::string code) {
    return {{"ok", {boolean(false)}}, {"id", {equals(id)}}, {"error", {str(code)}}, {"message", {str()}}};
}

// ---- the wire

struct Received {
    msgpack::object_handle handle;
    const msgpack::object& get() const { return handle.get(); }
    const msgpack::object* find(std::string_view key) const { return testing::find_key(handle.get(), key); }
    std::uint64_t u64(std::string_view key) const {
        const auto* v = find(key);
        return v && v->type == msgpack::type::POSITIVE_INTEGER ? v->via.u64 : 0;
    }
};

// A raw DEALER on the command socket: sends golden frames, checks replies.
// Pushes that arrive while waiting for a reply are kept for next_push().
class Dealer {
public:
    Dealer(zmq::context_t& context, const testing::DaemonProcess& daemon, std::uint64_t& last_seq)
        : m_socket(context, zmq::socket_type::dealer), m_last_seq(last_seq) {
        m_socket.set(zmq::sockopt::linger, 0);
        m_socket.connect(daemon.command_endpoint());
    }

    // Sends golden frame `name` and checks the reply: ok true, the request's
    // id, and exactly `fields`. A "seq" in `fields` marked new_seq() must be
    // above every seq seen before.
    Received ok(std::string_view name, Shape fields) {
        SCOPED_TRACE(::testing::Message() << "reply to golden frame " << name);
        fields["ok"] = {boolean(true)};
        fields["id"] = {equals(id_of(name))};
        auto reply = call(name);
        check_map(reply.get(), std::string(name), fields);
        return reply;
    }
    // Sends golden frame `name` and checks for the documented error reply.
    Received error(std::string_view name, std::string code) {
        SCOPED_TRACE(::testing::Message() << "error reply to golden frame " << name);
        auto reply = call(name);
        check_map(reply.get(), std::string(name), error_shape(id_of(name), std::move(code)));
        return reply;
    }
    // Checks that a seq is new: above every seq appended before.
    Check new_seq() {
        return [this](const msgpack::object& v, const std::string& p) {
            if (!expect_type(v, p, msgpack::type::POSITIVE_INTEGER, "uint")) return;
            EXPECT_GT(v.via.u64, m_last_seq) << p << ": seqs increase";
            m_last_seq = v.via.u64;
        };
    }

    // The next push (a frame without "ok"), checked against `shape`.
    Received push(Shape shape, std::string_view what) {
        SCOPED_TRACE(::testing::Message() << what);
        auto pushed = next_push();
        if (pushed) check_map(pushed->get(), std::string(what), shape);
        if (!pushed) return Received{msgpack::unpack("\xc0", 1)};
        return std::move(*pushed);
    }

    void send(std::string_view name) { m_socket.send(zmq::buffer(golden(name)), zmq::send_flags::none); }

private:
    static std::string id_of(std::string_view name) {
        const auto bytes = golden(name);
        const auto handle = msgpack::unpack(bytes.data(), bytes.size());
        const auto* id = testing::find_key(handle.get(), "id");
        return id ? canonical(*id) : "<none>";
    }

    std::optional<Received> receive(std::chrono::milliseconds timeout) {
        zmq::pollitem_t item{m_socket.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(m_socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) return std::nullopt;
        EXPECT_EQ(parts.size(), 1u) << "replies and pushes are single frames";
        return Received{msgpack::unpack(static_cast<const char*>(parts[0].data()), parts[0].size())};
    }

    Received call(std::string_view name) {
        send(name);
        for (;;) {
            auto frame = receive(10s);
            if (!frame) {
                ADD_FAILURE() << "no reply to " << name;
                return Received{msgpack::unpack("\xc0", 1)};
            }
            if (frame->find("ok") == nullptr) {
                EXPECT_NE(frame->find("push"), nullptr) << "a frame with neither ok nor push: " << canonical(frame->get());
                m_pushes.push_back(std::move(*frame));
                continue;
            }
            return std::move(*frame);
        }
    }

    std::optional<Received> next_push() {
        if (!m_pushes.empty()) {
            auto pushed = std::move(m_pushes.front());
            m_pushes.pop_front();
            return pushed;
        }
        auto frame = receive(10s);
        if (!frame) {
            ADD_FAILURE() << "no push arrived";
            return std::nullopt;
        }
        EXPECT_EQ(frame->find("ok"), nullptr) << "expected a push, got a reply: " << canonical(frame->get());
        return frame;
    }

    zmq::socket_t m_socket;
    std::uint64_t& m_last_seq;
    std::deque<Received> m_pushes;
};

// A raw SUB socket on the feed, confirmed live with the golden feed.sync
// frame (the documented way: repeat feed.sync until the marker arrives).
class Sub {
public:
    Sub(zmq::context_t& context, const testing::DaemonProcess& daemon, const std::vector<std::string>& topics,
        Dealer& dealer)
        : m_socket(context, zmq::socket_type::sub) {
        m_socket.set(zmq::sockopt::linger, 0);
        for (const auto& topic : topics) m_socket.set(zmq::sockopt::subscribe, topic);
        m_socket.set(zmq::sockopt::subscribe, "sync/golden-1/");
        m_socket.connect(daemon.feed_endpoint());
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            dealer.ok("feed.sync", {{"topic", {str("sync/golden-1/")}}});
            auto event = receive(100ms);
            if (!event) continue;
            EXPECT_EQ(event->first, "sync/golden-1/");
            check_map(event->second.get(), "sync marker", {{"event", {str("sync")}}, {"token", {str("golden-1")}}});
            m_socket.set(zmq::sockopt::unsubscribe, "sync/golden-1/");
            while (auto extra = receive(0ms)) EXPECT_EQ(extra->first, "sync/golden-1/") << "only markers so far";
            return;
        }
        ADD_FAILURE() << "the feed never delivered the sync marker";
    }

    // The next event: its topic, and its map checked against `shape`.
    void expect(std::string topic, Shape shape) {
        SCOPED_TRACE(::testing::Message() << "feed event on " << topic);
        auto event = receive(10s);
        ASSERT_TRUE(event) << "no feed event";
        EXPECT_EQ(event->first, topic);
        check_map(event->second.get(), "feed " + topic, shape);
    }

private:
    std::optional<std::pair<std::string, Received>> receive(std::chrono::milliseconds timeout) {
        zmq::pollitem_t item{m_socket.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(m_socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) return std::nullopt;
        if (parts.size() != 2) {
            ADD_FAILURE() << "a feed message of " << parts.size() << " frames; documented: [topic][event]";
            return std::nullopt;
        }
        return std::pair{parts[0].to_string(),
                         Received{msgpack::unpack(static_cast<const char*>(parts[1].data()), parts[1].size())}};
    }

    zmq::socket_t m_socket;
};

class GoldenReplies : public ::testing::Test {
protected:
    void start(std::vector<std::string> args = {}) {
        m_daemon = std::make_unique<testing::DaemonProcess>(m_dir.path() / "data", std::move(args));
    }
    Dealer dealer() { return Dealer(m_context, *m_daemon, m_last_seq); }

    Shape hello_reply(std::string bot, std::uint64_t mailbox_acked = 0) {
        return {{"bot", {str(bot)}}, {"protocol", {uint_(1)}}, {"mailbox_acked", {uint_(mailbox_acked)}},
                {"last_seq", {uint_(m_last_seq)}}, {"connection", {str()}}};
    }

    testing::TempDir m_dir;
    zmq::context_t m_context;
    std::unique_ptr<testing::DaemonProcess> m_daemon;
    std::uint64_t m_last_seq = 0;  // the newest seq any reply showed
};

// ---- sessions and channels

TEST_F(GoldenReplies, SessionAndChannelOpsAnswerWithTheDocumentedFields) {
    start();
    auto alice = dealer();
    alice.ok("ping", {{"pong", {boolean(true)}}, {"ts", {ts()}}});
    alice.error("channel.create.full", "not_identified");
    alice.error("subscriptions.nil_bot", "not_identified");
    alice.ok("hello.alice", hello_reply("alice"));
    Sub feed(m_context, *m_daemon, {"sys/channels/"}, alice);

    std::uint64_t created = 0;
    alice.ok("channel.create.full",
             {{"seq", {alice.new_seq()}}, {"channel", {channel_map("lobby", "front room", 0)}}});
    created = m_last_seq;
    feed.expect("sys/channels/", {{"event", {str("channel.created")}}, {"seq", {uint_(created)}}, {"ts", {ts()}},
                                  {"by", {str("alice")}}, {"channel", {str("lobby")}}});
    alice.error("channel.create.full", "conflict");
    alice.error("channel.create.no_name", "missing_field");
    alice.ok("channel.create.minimal", {{"seq", {alice.new_seq()}}, {"channel", {channel_map("attic", std::nullopt, 0)}}});
    feed.expect("sys/channels/", {{"event", {str("channel.created")}}, {"seq", {uint_(m_last_seq)}}, {"ts", {ts()}},
                                  {"by", {str("alice")}}, {"channel", {str("attic")}}});
    alice.ok("channel.retention.full",
             {{"seq", {alice.new_seq()}}, {"channel", {channel_map("lobby", "front room", 0, 86400000, 500)}}});
    feed.expect("sys/channels/", {{"event", {str("channel.retention_set")}}, {"seq", {uint_(m_last_seq)}},
                                  {"ts", {ts()}}, {"by", {str("alice")}}, {"channel", {str("lobby")}}});
    alice.ok("channel.retention.minimal",
             {{"seq", {alice.new_seq()}}, {"channel", {channel_map("attic", std::nullopt, 0)}}});
    feed.expect("sys/channels/", {{"event", {str("channel.retention_set")}}, {"seq", {uint_(m_last_seq)}},
                                  {"ts", {ts()}}, {"by", {str("alice")}}, {"channel", {str("attic")}}});

    alice.ok("subscribe.minimal", {{"subscribed", {boolean(true)}}, {"seq", {alice.new_seq()}}});
    feed.expect("sys/channels/", {{"event", {str("subscription.added")}}, {"seq", {uint_(m_last_seq)}}, {"ts", {ts()}},
                                  {"by", {str("alice")}}, {"channel", {str("lobby")}}, {"bot", {str("alice")}}});
    alice.ok("subscribe.minimal", {{"subscribed", {boolean(false)}}});
    alice.ok("subscriptions.full", {{"bot", {str("alice")}}, {"channels", {strings({"lobby"})}}, {"more", {boolean(false)}}});
    alice.ok("subscriptions.nil_bot",
             {{"bot", {str("alice")}}, {"channels", {strings({"lobby"})}}, {"more", {boolean(false)}}});
    alice.ok("subscriptions.page", {{"bot", {str("alice")}}, {"channels", {strings({"lobby"})}}, {"more", {boolean(false)}}});
    alice.ok("subscribers.lobby", {{"channel", {str("lobby")}}, {"bots", {strings({"alice"})}}, {"more", {boolean(false)}}});
    alice.ok("subscribers.page", {{"channel", {str("lobby")}}, {"bots", {strings({})}}, {"more", {boolean(false)}}});
    alice.ok("channel.list", {{"channels", {array({channel_map("attic", std::nullopt, 0),
                                                     channel_map("lobby", "front room", 1, 86400000, 500)})}},
                              {"more", {boolean(false)}}});
    alice.ok("channel.list.page",
             {{"channels", {array({channel_map("lobby", "front room", 1, 86400000, 500)})}}, {"more", {boolean(false)}}});
    alice.ok("stats", {{"last_seq", {uint_(m_last_seq)}}, {"events", {uint_(m_last_seq)}}, {"channels", {uint_(2)}},
                       {"subscriptions", {uint_(1)}}, {"messages", {uint_(0)}}, {"db_bytes", {uint_()}},
                       {"requests", {uint_()}}, {"batches", {uint_()}}, {"errors", {uint_()}},
                       {"sessions", {uint_()}}, {"connections", {uint_()}}, {"refused_connections", {uint_(0)}},
                       {"backlog_bytes", {uint_(0)}}, {"feed_connections", {uint_()}}, {"feed_bytes", {uint_()}},
                       {"feed_disconnects", {uint_(0)}}, {"dropped_replies", {uint_(0)}},
                       {"paused_deliveries", {uint_(0)}},
                       {"syncs", {uint_()}}, {"checkpoints", {uint_()}}, {"uptime_us", {uint_()}},
                       {"auth_refusals", {uint_(0)}}, {"auth_disconnects", {uint_(0)}},
                       {"refused_bot_connections", {uint_(0)}}, {"refused_subscriptions", {uint_(0)}},
                       {"refused_in_flight", {uint_(0)}}});

    alice.ok("unsubscribe.full", {{"unsubscribed", {boolean(true)}}, {"seq", {alice.new_seq()}}});
    feed.expect("sys/channels/", {{"event", {str("subscription.removed")}}, {"seq", {uint_(m_last_seq)}}, {"ts", {ts()}},
                                  {"by", {str("alice")}}, {"channel", {str("lobby")}}, {"bot", {str("alice")}}});
    alice.ok("unsubscribe.minimal", {{"unsubscribed", {boolean(false)}}});
    alice.ok("channel.delete", {{"seq", {alice.new_seq()}}});
    feed.expect("sys/channels/", {{"event", {str("channel.deleted")}}, {"seq", {uint_(m_last_seq)}}, {"ts", {ts()}},
                                  {"by", {str("alice")}}, {"channel", {str("attic")}}});
    alice.error("subscribers.attic", "not_found");
    alice.error("unknown_op", "unknown_op");
}

// ---- messages, pushes and the channel feed

TEST_F(GoldenReplies, MessagesHistoryAndAcksAnswerWithTheDocumentedFieldsPushesAndFeedEvents) {
    start();
    auto alice = dealer();
    auto bob = dealer();
    alice.ok("hello.alice", hello_reply("alice"));
    bob.ok("hello.bob", hello_reply("bob"));
    Sub feed(m_context, *m_daemon, {"ch/lobby/"}, bob);

    // The automatic channel.created takes seq 1 (PROTOCOL.md, A worked example).
    const auto greet = channel_message(2, "alice", "text", "s\"hi all\"", "lobby", 1);
    alice.ok("publish.greet", {{"seq", {uint_(2)}}, {"channel_seq", {uint_(1)}}, {"ts", {ts()}},
                               {"duplicate", {boolean(false)}}});
    auto feed_greet = greet;
    feed_greet["event"] = {str("message")};
    feed.expect("ch/lobby/", feed_greet);
    alice.ok("publish.greet", {{"seq", {uint_(2)}}, {"channel_seq", {uint_(1)}}, {"ts", {ts()}},
                               {"duplicate", {boolean(true)}}});

    const auto note = answering(
        channel_message(3, "alice", "note", "{s\"n\":u1,s\"tags\":[s\"a\",s\"b\"]}", "lobby", 2), 2, 2, 1);
    alice.ok("publish.full", {{"seq", {uint_(3)}}, {"channel_seq", {uint_(2)}}, {"ts", {ts()}},
                              {"duplicate", {boolean(false)}}});
    auto feed_note = note;
    feed_note["event"] = {str("message")};
    feed.expect("ch/lobby/", feed_note);

    const auto question = direct_message(4, "alice", "question", "{s\"q\":s\"lunch?\"}", "bob", 1);
    alice.ok("send.question", {{"seq", {uint_(4)}}, {"mailbox_seq", {uint_(1)}}, {"ts", {ts()}},
                               {"duplicate", {boolean(false)}}});
    bob.push(message_push(question), "push of the question");
    auto answer = answering(direct_message(5, "alice", "answer", "s\"yes\"", "bob", 2), 4, 4, 1);
    answer["expires_at"] = {ts()};
    alice.ok("send.full", {{"seq", {uint_(5)}}, {"mailbox_seq", {uint_(2)}}, {"ts", {ts()}},
                           {"duplicate", {boolean(false)}}});
    bob.push(message_push(answer), "push of the answer");
    m_last_seq = 5;

    const auto in_flight = [](std::uint64_t seq) {
        return map({{"seq", {uint_(seq)}}, {"deliveries", {uint_(1)}}, {"ack_deadline", {ts()}},
                    {"connection", {str()}}});
    };
    bob.ok("mailbox.minimal", {{"bot", {str("bob")}}, {"acked", {uint_()}}, {"unsettled", {uint_(2)}},
                               {"in_flight", {array({in_flight(4), in_flight(5)})}}, {"in_flight_count", {uint_(2)}},
                               {"replicas", {array({replica(2)})}}});
    bob.ok("history.channel", {{"messages", {array({map(greet), map(note)})}}, {"more", {boolean(false)}}});
    bob.ok("history.peer", {{"messages", {array({map(answer)})}}, {"more", {boolean(true)}}});
    bob.ok("history.inbox", {{"messages", {array({map(question), map(answer)})}}, {"more", {boolean(false)}}});

    bob.ok("ack.seqs", {{"acked", {uint_(4)}}, {"seq", {bob.new_seq()}}});
    bob.ok("ack.upto", {{"acked", {uint_(5)}}, {"seq", {bob.new_seq()}}});
    bob.ok("ack.upto", {{"acked", {uint_(5)}}});
    bob.ok("mailbox.minimal", {{"bot", {str("bob")}}, {"acked", {uint_(5)}}, {"unsettled", {uint_(0)}},
                               {"in_flight", {array({})}}, {"in_flight_count", {uint_(0)}},
                               {"replicas", {array({replica(0)})}}});
    bob.ok("hello.bob", hello_reply("bob", 5));
}

// ---- delivered subscriptions

TEST_F(GoldenReplies, DeliveredSubscriptionsPushFetchAndReportWithTheDocumentedFields) {
    start();
    auto alice = dealer();
    auto bob = dealer();
    auto carol = dealer();
    alice.ok("hello.alice", hello_reply("alice"));
    alice.ok("publish.job1", {{"seq", {uint_(2)}}, {"channel_seq", {uint_(1)}}, {"ts", {ts()}},
                              {"duplicate", {boolean(false)}}});
    alice.ok("publish.job2", {{"seq", {uint_(3)}}, {"channel_seq", {uint_(2)}}, {"ts", {ts()}},
                              {"duplicate", {boolean(false)}}});
    m_last_seq = 3;
    const auto job1 = channel_message(2, "alice", "text", "s\"job one\"", "jobs", 1);
    const auto job2 = channel_message(3, "alice", "text", "{s\"n\":u2}", "jobs", 2);

    bob.ok("hello.bob", hello_reply("bob"));
    bob.ok("subscribe.full", {{"subscribed", {boolean(true)}}, {"seq", {bob.new_seq()}}, {"durable", {boolean(true)}},
                              {"resumed", {boolean(false)}}, {"start_after", {uint_(0)}}, {"deliver", {str("push")}}});
    bob.push(message_push(job1), "first pushed job");
    bob.push(message_push(job2), "second pushed job");
    bob.push({{"push", {str("caught_up")}}, {"channel", {str("jobs")}}, {"seq", {uint_at_least(3)}}}, "caught_up");

    const auto in_flight = [](std::uint64_t seq) {
        return map({{"seq", {uint_(seq)}}, {"deliveries", {uint_(1)}}, {"ack_deadline", {ts()}},
                    {"connection", {str()}}});
    };
    bob.ok("mailbox.full", {{"bot", {str("bob")}}, {"channel", {str("jobs")}}, {"acked", {uint_()}},
                            {"unsettled", {uint_(2)}}, {"in_flight", {array({in_flight(2), in_flight(3)})}},
                            {"in_flight_count", {uint_(2)}}, {"replicas", {array({replica(2)})}}});
    const auto consumer = [&](std::string bot, std::uint64_t lag, std::uint64_t in_flight_count, std::string mode) {
        return map({{"bot", {str(bot)}}, {"channel", {str("jobs")}}, {"acked", {uint_()}}, {"head", {uint_(3)}},
                    {"lag", {uint_(lag)}}, {"in_flight", {uint_(in_flight_count)}}, {"mode", {str(mode)}},
                    {"last_ack", {ts()}}, {"stuck", {boolean(false)}}, {"created_at", {ts()}},
                    {"replica_count", {uint_(1)}}, {"replicas", {array({replica(in_flight_count)})}}});
    };
    bob.ok("consumers.full", {{"consumers", {array({consumer("bob", 2, 2, "push")})}}, {"more", {boolean(false)}}});
    bob.ok("ack.channel", {{"acked", {uint_(3)}}, {"seq", {bob.new_seq()}}});
    bob.ok("subscribe.full", {{"subscribed", {boolean(false)}}, {"seq", opt(bob.new_seq())},
                              {"durable", {boolean(true)}}, {"resumed", {boolean(true)}}, {"start_after", {uint_(3)}},
                              {"deliver", {str("push")}}});
    bob.push({{"push", {str("caught_up")}}, {"channel", {str("jobs")}}, {"seq", {uint_at_least(3)}}},
             "caught_up of the resumed subscription");

    carol.ok("hello.carol", hello_reply("carol"));
    carol.ok("subscribe.pull", {{"subscribed", {boolean(true)}}, {"seq", {carol.new_seq()}},
                                {"durable", {boolean(true)}}, {"resumed", {boolean(false)}},
                                {"start_after", {uint_(2)}}, {"deliver", {str("pull")}}});
    carol.ok("fetch.full", {{"messages", {array({map({{"message", {map(job2)}},
                                                       {"deliveries", {uint_(1)}},
                                                       {"redelivered", {boolean(false)}}})})}},
                            {"position", {uint_at_least(3)}}, {"caught_up", {boolean(true)}}});
    carol.ok("fetch.minimal", {{"messages", {array({})}}, {"position", {uint_at_least(3)}},
                               {"caught_up", {boolean(true)}}});
    carol.ok("consumers.minimal",
             {{"consumers", {array({consumer("bob", 0, 0, "push"), consumer("carol", 1, 1, "pull")})}},
              {"more", {boolean(false)}}});

    bob.ok("subscribe.from_time", {{"subscribed", {boolean(true)}}, {"seq", {bob.new_seq()}},
                                   {"durable", {boolean(false)}}, {"resumed", {boolean(false)}},
                                   {"start_after", {uint_()}}, {"deliver", {str("push")}}});
    bob.push({{"push", {str("caught_up")}}, {"channel", {str("news")}}, {"seq", {uint_()}}}, "caught_up on news");
}

// ---- dead letters

TEST_F(GoldenReplies, DeadLettersAreListedPublishedAndReplayedWithTheDocumentedFields) {
    start({"--ack-timeout-ms", "100", "--max-deliveries", "1"});
    auto alice = dealer();
    auto bob = dealer();
    alice.ok("hello.alice", hello_reply("alice"));
    bob.ok("hello.bob", hello_reply("bob"));
    Sub feed(m_context, *m_daemon, {"sys/dead_letters/"}, alice);

    const auto doomed = direct_message(1, "alice", "text", "s\"never acked\"", "bob", 1);
    alice.ok("send.doomed", {{"seq", {uint_(1)}}, {"mailbox_seq", {uint_(1)}}, {"ts", {ts()}},
                             {"duplicate", {boolean(false)}}});
    bob.push(message_push(doomed), "push of the doomed message");

    feed.expect("sys/dead_letters/", {{"event", {str("message.dead_lettered")}}, {"seq", {uint_at_least(2)}},
                                      {"ts", {ts()}}, {"bot", {str("bob")}}, {"message_seq", {uint_(1)}},
                                      {"reason", {str_starting("max_deliveries")}}, {"deliveries", {uint_(1)}}});
    std::uint64_t dead_seq = 0;
    const auto dead_letter = [&](bool replayed) {
        Shape shape{{"seq", {uint_into(dead_seq)}}, {"message_seq", {uint_(1)}}, {"bot", {str("bob")}},
                    {"reason", {str_starting("max_deliveries")}}, {"deliveries", {uint_(1)}}, {"ts", {ts()}},
                    {"message", {map(doomed)}}};
        if (replayed) shape["replayed_seq"] = {uint_()};
        return map(shape);
    };
    alice.ok("dlq.list.full", {{"dead_letters", {array({dead_letter(false)})}}, {"more", {boolean(false)}}});
    EXPECT_GE(dead_seq, 2u);
    m_last_seq = dead_seq;

    alice.ok("dlq.replay.full", {{"seq", {alice.new_seq()}}, {"mailbox_seq", {uint_(2)}}});
    const auto replay_seq = m_last_seq;
    auto copy = direct_message(replay_seq, "alice", "text", "s\"never acked\"", "bob", 2);
    copy["replay_of"] = {uint_(1)};
    bob.push(message_push(copy), "push of the replayed copy");
    // The copy may be dead-lettered in turn (one delivery, 100 ms): only the first entry is checked.
    alice.ok("dlq.list.minimal", {{"dead_letters", {[&](const msgpack::object& v, const std::string& p) {
                                                    if (!expect_type(v, p, msgpack::type::ARRAY, "array")) return;
                                                    ASSERT_GE(v.via.array.size, 1u);
                                                    dead_letter(true)(v.via.array.ptr[0], p + "[0]");
                                                }}},
                                                {"more", {boolean(false)}}});
    alice.error("dlq.replay.minimal", "conflict");
}

// ---- workflows

TEST_F(GoldenReplies, WorkflowRunAndStepOpsAnswerWithTheDocumentedFields) {
    start();
    auto alice = dealer();
    alice.error("workflow.put.minimal", "not_identified");
    alice.ok("hello.alice", hello_reply("alice"));
    Sub feed(m_context, *m_daemon, {"run/deploy-7/"}, alice);

    const std::string deploy =
        "{s\"id\":s\"wf-deploy\",s\"name\":s\"deploy\",s\"steps\":[{s\"id\":s\"build\",s\"name\":s\"Build\"},"
        "{s\"depends_on\":[s\"build\"],s\"id\":s\"test\"},{s\"depends_on\":[s\"test\"],s\"id\":s\"ship\"},"
        "{s\"id\":s\"gate\"},{s\"id\":s\"docs\"}]}";
    const std::string mine = "{s\"id\":s\"wf-mine\",s\"name\":s\"mine\",s\"note\":s\"kept\",s\"steps\":[{s\"id\":s\"a\"}]}";
    alice.ok("workflow.put.minimal", {{"workflow_id", {str("wf-deploy")}}, {"created", {boolean(true)}},
                                      {"changed", {boolean(true)}}, {"seq", {alice.new_seq()}}});
    alice.ok("workflow.put.minimal", {{"workflow_id", {str("wf-deploy")}}, {"created", {boolean(false)}},
                                      {"changed", {boolean(false)}}});
    alice.ok("workflow.put.full", {{"workflow_id", {str("wf-mine")}}, {"created", {boolean(true)}},
                                   {"changed", {boolean(true)}}, {"seq", {alice.new_seq()}}});
    const auto workflow_map = [](std::string id, std::string name, std::string owner_type,
                                 std::optional<std::string> owner_bot, std::string definition, bool archived) {
        return map({{"id", {str(id)}}, {"name", {str(name)}}, {"owner_type", {str(owner_type)}},
                    {"owner_bot", {owner_bot ? str(*owner_bot) : nil()}}, {"definition", {equals(definition)}},
                    {"created_at", {ts()}}, {"updated_at", {ts()}}, {"archived", {boolean(archived)}},
                    {"archived_at", {archived ? ts() : nil()}}});
    };
    alice.ok("workflow.get.id", {{"workflow", {workflow_map("wf-deploy", "deploy", "global", std::nullopt, deploy, false)}}});
    alice.ok("workflow.get.name", {{"workflow", {workflow_map("wf-mine", "mine", "bot", "alice", mine, false)}}});
    alice.ok("workflow.list.full", {{"workflows", {array({workflow_map("wf-mine", "mine", "bot", "alice", mine, false)})}},
                                    {"more", {boolean(false)}}});
    alice.ok("workflow.list.minimal",
             {{"workflows", {array({workflow_map("wf-deploy", "deploy", "global", std::nullopt, deploy, false),
                                    workflow_map("wf-mine", "mine", "bot", "alice", mine, false)})}},
              {"more", {boolean(false)}}});
    alice.ok("workflow.list.page", {{"workflows", {array({})}}, {"more", {boolean(false)}}});
    alice.ok("workflow.delete.full", {{"workflow_id", {str("wf-mine")}}, {"deleted", {boolean(false)}},
                                      {"archived", {boolean(true)}}, {"changed", {boolean(true)}},
                                      {"seq", {alice.new_seq()}}});
    alice.ok("workflow.list.full", {{"workflows", {array({workflow_map("wf-mine", "mine", "bot", "alice", mine, true)})}},
                                    {"more", {boolean(false)}}});

    alice.ok("run.start.full", {{"run_id", {str("deploy-7")}}, {"seq", {alice.new_seq()}}, {"status", {str("running")}},
                                {"duplicate", {boolean(false)}}, {"lease_expires_at", {ts()}}});
    const auto start_seq = m_last_seq;
    feed.expect("run/deploy-7/", {{"event", {str("run.started")}}, {"seq", {uint_(start_seq)}}, {"stream_seq", {uint_(1)}},
                                  {"ts", {ts()}}, {"by", {str("alice")}}, {"workflow_id", {str("wf-deploy")}},
                                  {"run_id", {str("deploy-7")}}, {"data", {[](const msgpack::object& v, const std::string& p) {
                                      expect_type(v, p, msgpack::type::MAP, "map");
                                  }}}});
    alice.ok("run.start.full", {{"run_id", {str("deploy-7")}}, {"seq", {uint_(start_seq)}}, {"status", {str("running")}},
                                {"duplicate", {boolean(true)}}, {"lease_expires_at", opt(ts())}});
    std::uint64_t minimal_seq = 0;
    auto minimal = alice.ok("run.start.minimal", {{"run_id", {str_starting("run-")}}, {"seq", {alice.new_seq()}},
                                                  {"status", {str("running")}}, {"duplicate", {boolean(false)}},
                                                  {"lease_expires_at", {ts()}}});
    minimal_seq = m_last_seq;
    if (const auto* run_id = minimal.find("run_id"); run_id && run_id->type == msgpack::type::STR) {
        EXPECT_EQ(as_text(*run_id), "run-" + std::to_string(minimal_seq)) << "default run id is run-<seq>";
    }
    alice.ok("run.heartbeat", {{"run_id", {str("deploy-7")}}, {"status", {str("running")}},
                               {"cancel_requested", {boolean(false)}}, {"lease_expires_at", {ts()}}});

    const auto step_reply = [&](std::string step, std::uint64_t attempt, std::string status) {
        return Shape{{"run_id", {str("deploy-7")}}, {"step_id", {str(step)}}, {"attempt", {uint_(attempt)}},
                     {"attempt_id", {str("deploy-7:" + step + ":" + std::to_string(attempt))}},
                     {"status", {str(status)}}, {"seq", {alice.new_seq()}}};
    };
    alice.error("step.complete.minimal", "invalid_transition");  // ship was never started
    auto started = step_reply("build", 1, "running");
    started["duplicate"] = {boolean(false)};
    alice.ok("step.start.full", started);
    auto again = step_reply("build", 1, "running");
    again["duplicate"] = {boolean(true)};
    again["seq"] = {uint_(m_last_seq)};
    alice.ok("step.start.full", again);
    alice.ok("step.fail.full", step_reply("build", 1, "failed"));
    auto retry = step_reply("build", 2, "running");
    retry["duplicate"] = {boolean(false)};
    alice.ok("step.start.minimal", retry);
    alice.ok("step.complete.full", step_reply("build", 2, "completed"));
    auto test = step_reply("test", 1, "running");
    test["duplicate"] = {boolean(false)};
    alice.ok("step.start.test", test);
    alice.ok("step.fail.minimal", step_reply("test", 1, "failed"));
    alice.ok("step.skip.full", step_reply("test", 2, "skipped"));
    alice.ok("step.skip.minimal", step_reply("docs", 1, "skipped"));
    auto ship = step_reply("ship", 1, "running");
    ship["duplicate"] = {boolean(false)};
    alice.ok("step.start.ship", ship);
    alice.ok("step.complete.minimal", step_reply("ship", 1, "completed"));
    auto gate = step_reply("gate", 1, "running");
    gate["duplicate"] = {boolean(false)};
    alice.ok("step.start.gate", gate);
    alice.ok("step.wait_approval", step_reply("gate", 1, "waiting_approval"));

    alice.ok("run.pause", {{"run_id", {str("deploy-7")}}, {"status", {str("paused")}}, {"seq", {alice.new_seq()}}});
    auto approved = step_reply("gate", 1, "completed");
    approved["approved_by"] = {str("alice")};
    alice.ok("step.approve", approved);
    alice.ok("run.resume", {{"run_id", {str("deploy-7")}}, {"status", {str("running")}}, {"seq", {alice.new_seq()}},
                            {"lease_owner", {str("alice")}}, {"lease_expires_at", {ts()}}});
    alice.ok("run.checkpoint", {{"run_id", {str("deploy-7")}}, {"status", {str("running")}}, {"seq", {alice.new_seq()}}});

    const auto step_map = [](std::string step, std::uint64_t attempt, std::string status, Check step_name,
                             std::string input, std::string output, Check error, bool will_retry, Check skip_reason,
                             Check approved_by, bool completed) {
        const auto id = "deploy-7:" + step + ":" + std::to_string(attempt);
        return map({{"id", {str(id)}}, {"idempotency_key", {str(id)}}, {"run_id", {str("deploy-7")}},
                    {"step_id", {str(step)}}, {"step_name", {std::move(step_name)}}, {"status", {str(status)}},
                    {"attempt", {uint_(attempt)}}, {"input", {equals(input)}}, {"output", {equals(output)}},
                    {"error", {std::move(error)}}, {"will_retry", {boolean(will_retry)}},
                    {"skip_reason", {std::move(skip_reason)}}, {"approved_by", {std::move(approved_by)}},
                    {"started_at", {ts()}}, {"completed_at", {completed ? or_nil(ts()) : nil()}},
                    {"start_seq", {uint_()}}, {"last_seq", {uint_()}}});
    };
    alice.ok("run.steps",
             {{"run_id", {str("deploy-7")}},
              {"steps", {array({
                            step_map("build", 1, "failed", str("Build it"), "{s\"ref\":s\"main\"}", "nil",
                                     str("exit 1"), true, nil(), nil(), true),
                            step_map("build", 2, "completed", str("Build"), "nil", "{s\"artifact\":s\"a.tar\"}", nil(),
                                     false, nil(), nil(), true),
                            step_map("test", 1, "failed", nil(), "nil", "nil", str("flaky"), false, nil(), nil(), true),
                            step_map("test", 2, "skipped", nil(), "nil", "nil", nil(), false, str("not today"), nil(),
                                     true),
                            step_map("docs", 1, "skipped", nil(), "nil", "nil", nil(), false, nil(), nil(), true),
                            step_map("ship", 1, "completed", nil(), "nil", "nil", nil(), false, nil(), nil(), true),
                            step_map("gate", 1, "completed", nil(), "nil", "nil", nil(), false, nil(), str("alice"),
                                     true),
                        })}},
              {"more", {boolean(false)}}});
    alice.ok("run.steps.page",  // one attempt after seq 1: the first of seven
             {{"run_id", {str("deploy-7")}},
              {"steps", {array({step_map("build", 1, "failed", str("Build it"), "{s\"ref\":s\"main\"}", "nil",
                                         str("exit 1"), true, nil(), nil(), true)})}},
              {"more", {boolean(true)}}});
    alice.ok("run.completed_steps",
             {{"run_id", {str("deploy-7")}}, {"step_ids", {strings({"build", "test", "docs", "ship", "gate"})}},
              {"more", {boolean(false)}}, {"last_start_seq", {uint_()}}});
    alice.ok("run.completed_steps.page", {{"run_id", {str("deploy-7")}}, {"step_ids", {strings({"build"})}},
                                          {"more", {boolean(true)}}, {"last_start_seq", {uint_()}}});

    const auto run_map = [&](std::string id, std::string status, Check trigger_type, std::string trigger_payload,
                             std::string context, Check error, Check concurrency_key, Check lease_owner,
                             bool completed) {
        return map({{"id", {str(id)}}, {"workflow_id", {str("wf-deploy")}}, {"workflow_name", {str("deploy")}},
                    {"status", {str(status)}}, {"trigger_type", {std::move(trigger_type)}},
                    {"trigger_payload", {equals(trigger_payload)}}, {"context", {equals(context)}},
                    {"started_at", {ts()}}, {"completed_at", {completed ? ts() : nil()}}, {"error", {std::move(error)}},
                    {"concurrency_key", {std::move(concurrency_key)}}, {"lease_owner", {std::move(lease_owner)}},
                    {"cancel_requested", {boolean(false)}}, {"start_seq", {uint_()}}, {"last_seq", {uint_()}}});
    };
    const auto deploy7 = [&](std::string status, std::string context, bool completed) {
        return run_map("deploy-7", status, str("cron"), "{s\"at\":s\"noon\"}", context, nil(), str("prod"),
                       completed ? nil() : str("alice"), completed);
    };
    const auto minimal_run = run_map("run-" + std::to_string(minimal_seq), "running", str("manual"), "nil", "{}", nil(),
                                     nil(), str("alice"), false);
    alice.ok("run.get", {{"run", {deploy7("running", "{s\"stage\":s\"after-gate\"}", false)}}});
    alice.ok("run.list.full",
             {{"runs", {array({minimal_run, deploy7("running", "{s\"stage\":s\"after-gate\"}", false)})}},
              {"more", {boolean(false)}}});
    alice.ok("run.list.page", {{"runs", {array({})}}, {"more", {boolean(false)}}});  // before seq 1: none
    alice.ok("run.crashed", {{"runs", {array({})}}, {"more", {boolean(false)}}});
    alice.ok("run.crashed.page", {{"runs", {array({})}}, {"more", {boolean(false)}}});
    alice.ok("run.complete.full", {{"run_id", {str("deploy-7")}}, {"status", {str("completed")}}, {"seq", {alice.new_seq()}}});
    alice.error("run.complete.minimal", "invalid_transition");
    alice.ok("run.get", {{"run", {deploy7("completed", "{s\"done\":true}", true)}}});

    alice.ok("run.start.pending8", {{"run_id", {str("deploy-8")}}, {"seq", {alice.new_seq()}}, {"status", {str("pending")}},
                                    {"duplicate", {boolean(false)}}});
    alice.ok("run.fail", {{"run_id", {str("deploy-8")}}, {"status", {str("failed")}}, {"seq", {alice.new_seq()}}});
    alice.ok("run.start.pending9", {{"run_id", {str("deploy-9")}}, {"seq", {alice.new_seq()}}, {"status", {str("pending")}},
                                    {"duplicate", {boolean(false)}}});
    alice.ok("run.cancel", {{"run_id", {str("deploy-9")}}, {"status", {str("cancelled")}}, {"seq", {alice.new_seq()}},
                            {"cancel_requested", {boolean(false)}}, {"changed", {boolean(true)}}});
    alice.ok("run.list.minimal",
             {{"runs", {array({run_map("deploy-9", "cancelled", str("manual"), "nil", "{}", nil(), nil(), nil(), true),
                               run_map("deploy-8", "failed", str("manual"), "nil", "{}", str("no capacity"), nil(),
                                       nil(), true),
                               minimal_run, deploy7("completed", "{s\"done\":true}", true)})}},
              {"more", {boolean(false)}}});
    alice.error("workflow.delete.minimal", "has_runs");
}

}  // namespace
}  // namespace botbus
