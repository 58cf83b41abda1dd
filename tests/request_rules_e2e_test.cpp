// The validation rules of `subscribe` and `fetch`, against the real botbusd:
// each refused request gets its documented error code and appends nothing
// (stats.events is unchanged; a refused subscribe does not even create its
// channel), and the values at the edges of each rule are accepted. REQ
// sockets, and DEALERs that frame like REQ, take no pushes: they may pull.
#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using testing::options_for;
using testing::u64_field;

bus::SubscribeRequest subscribe_to(const std::string& channel) {
    bus::SubscribeRequest request;
    request.channel = channel;
    return request;
}

bus::FetchRequest fetch_from(const std::string& channel) {
    bus::FetchRequest request;
    request.channel = channel;
    return request;
}

// A command connection that frames like REQ: a REQ socket, or a DEALER that
// sends the empty delimiter frame itself. Replies come back with the
// delimiter; nothing else may arrive on it.
class ReqStyle {
public:
    enum class Kind { req, dealer_with_delimiter };

    ReqStyle(zmq::context_t& context, const std::string& endpoint, Kind kind)
        : m_kind(kind), m_socket(context, kind == Kind::req ? zmq::socket_type::req : zmq::socket_type::dealer) {
        m_socket.set(zmq::sockopt::linger, 0);
        m_socket.connect(endpoint);
    }

    bus::Reply call(const bus::Request& request) {
        const auto id = ++m_id;
        const auto frame = bus::encode_request(request, bus::pack_as_value(id));
        if (m_kind == Kind::dealer_with_delimiter) m_socket.send(zmq::message_t(), zmq::send_flags::sndmore);
        m_socket.send(zmq::buffer(frame), zmq::send_flags::none);
        auto frames = receive(10000ms);
        if (m_kind == Kind::dealer_with_delimiter) {
            if (frames.size() != 2 || !frames[0].empty()) {
                ADD_FAILURE() << "expected [empty][reply], got " << frames.size() << " frames";
                return {};
            }
            frames.erase(frames.begin());
        }
        if (frames.size() != 1) {
            ADD_FAILURE() << "expected one reply frame, got " << frames.size();
            return {};
        }
        auto reply = bus::decode_reply(frames[0]);
        if (!reply) {
            ADD_FAILURE() << "the reply does not decode";
            return {};
        }
        EXPECT_EQ(reply->id, id) << "not the reply to this request (a push read as the reply?)";
        return std::move(*reply);
    }

    // Whatever arrives within `timeout` (empty: nothing).
    std::vector<std::string> receive(std::chrono::milliseconds timeout) {
        zmq::pollitem_t item{m_socket.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, timeout) == 0) return {};
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(m_socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) return {};
        std::vector<std::string> out;
        for (const auto& part : parts) out.push_back(part.to_string());
        return out;
    }

private:
    Kind m_kind;
    zmq::socket_t m_socket;
    std::uint64_t m_id = 0;
};

// A request frame built by hand, for values of the wrong type.
std::string raw_request(const std::string& op, const std::string& channel, const std::string& key,
                        const msgpack::object& value) {
    msgpack::sbuffer buffer;
    msgpack::packer<msgpack::sbuffer> p(buffer);
    p.pack_map(4);
    p.pack("op");
    p.pack(op);
    p.pack("id");
    p.pack(1);
    p.pack("channel");
    p.pack(channel);
    p.pack(key);
    p.pack(value);
    return std::string(buffer.data(), buffer.size());
}

class RequestRules : public ::testing::Test {
protected:
    void SetUp() override {
        m_daemon = std::make_unique<testing::DaemonProcess>(m_dir.path() / "data");
        m_observer = std::make_unique<client::Client>(m_context, options_for(*m_daemon));
        m_alice = std::make_unique<client::Client>(m_context, options_for(*m_daemon));
        m_alice->hello("alice");
        m_alice->publish("news", bus::pack_as_value(std::string("first")));
    }

    std::uint64_t events() { return u64_field(m_observer->call_ok(bus::StatsRequest{}), "events"); }

    // Sends a hand-built request frame (the client library cannot send a
    // value of the wrong type) on a fresh DEALER identified as alice.
    bus::Reply raw_call_as_alice(const std::string& frame) {
        zmq::socket_t dealer(m_context, zmq::socket_type::dealer);
        dealer.set(zmq::sockopt::linger, 0);
        dealer.set(zmq::sockopt::rcvtimeo, 10000);
        dealer.connect(m_daemon->command_endpoint());
        dealer.send(zmq::buffer(bus::encode_request(bus::HelloRequest{"alice"}, bus::pack_as_value(0))),
                    zmq::send_flags::none);
        zmq::message_t hello;
        if (!dealer.recv(hello)) {
            ADD_FAILURE() << "no reply to hello";
            return {};
        }
        dealer.send(zmq::buffer(frame), zmq::send_flags::none);
        zmq::message_t reply;
        if (!dealer.recv(reply)) {
            ADD_FAILURE() << "no reply";
            return {};
        }
        auto decoded = bus::decode_reply(reply.to_string_view());
        if (!decoded) {
            ADD_FAILURE() << "the reply does not decode";
            return {};
        }
        return std::move(*decoded);
    }

    // `reply` is refused with `code`, and the log did not grow.
    void expect_refused(const std::string& what, const std::function<bus::Reply()>& call, const std::string& code) {
        SCOPED_TRACE(what);
        const auto before = events();
        const auto reply = call();
        EXPECT_FALSE(reply.ok) << "accepted";
        EXPECT_EQ(reply.error_name, code) << reply.message;
        EXPECT_FALSE(reply.message.empty());
        EXPECT_EQ(events(), before) << "a refused request appended events";
    }
    void expect_refused(const std::string& what, client::Client& client, const bus::Request& request,
                        const std::string& code) {
        expect_refused(what, [&] { return client.call(request); }, code);
    }
    void expect_accepted(const std::string& what, client::Client& client, const bus::Request& request) {
        const auto reply = client.call(request);
        EXPECT_TRUE(reply.ok) << what << ": " << reply.error_name << " " << reply.message;
    }

    testing::TempDir m_dir;
    zmq::context_t m_context;
    std::unique_ptr<testing::DaemonProcess> m_daemon;
    std::unique_ptr<client::Client> m_observer;
    std::unique_ptr<client::Client> m_alice;
};

TEST_F(RequestRules, SubscribeWithoutAnIdentityIsNotIdentified) {
    expect_refused("subscribe before hello", *m_observer, subscribe_to("fresh"), "not_identified");
    auto durable = subscribe_to("fresh");
    durable.durable = true;
    expect_refused("durable subscribe before hello", *m_observer, durable, "not_identified");
}

TEST_F(RequestRules, EachBrokenSubscribeRuleIsInvalidFieldAndAppendsNothing) {
    std::vector<std::pair<std::string, bus::SubscribeRequest>> cases;
    auto add = [&](const std::string& what, auto change) {
        auto request = subscribe_to("fresh");  // does not exist: a refusal must not create it
        change(request);
        cases.emplace_back(what, request);
    };
    add("deliver is neither push nor pull", [](auto& r) { r.deliver = "shove"; });
    add("pull without durable", [](auto& r) { r.deliver = "pull"; });
    add("pull with durable: false", [](auto& r) { r.deliver = "pull"; r.durable = false; });
    add("from_seq and from_time", [](auto& r) { r.from_seq = 1; r.from_time = 1; });
    add("from_seq and last", [](auto& r) { r.from_seq = 1; r.last = 1; });
    add("from_time and last", [](auto& r) { r.from_time = 1; r.last = 1; });
    add("all three start positions", [](auto& r) { r.from_seq = 1; r.from_time = 1; r.last = 1; });
    add("from_seq 0", [](auto& r) { r.from_seq = 0; });
    add("durable from_seq 0", [](auto& r) { r.durable = true; r.from_seq = 0; });
    add("credit 0", [](auto& r) { r.credit = 0; });
    add("credit 100001", [](auto& r) { r.credit = 100001; });
    add("durable pull, credit 0", [](auto& r) { r.durable = true; r.deliver = "pull"; r.credit = 0; });
    add("a delivering subscribe for another bot", [](auto& r) { r.bot = "bob"; r.durable = true; });
    add("a from_seq subscribe for another bot", [](auto& r) { r.bot = "bob"; r.from_seq = 1; });
    for (const auto& [what, request] : cases) expect_refused(what, *m_alice, request, "invalid_field");

    bus::ChannelListRequest list;
    const auto channels = m_alice->call_ok(list);  // kept: `listed` points into it
    const auto* listed = channels.find("channels");
    ASSERT_TRUE(listed && listed->type == msgpack::type::ARRAY);
    EXPECT_EQ(listed->via.array.size, 1U) << "a refused subscribe created its channel";
}

TEST_F(RequestRules, SubscribeFieldsOfTheWrongTypeAreInvalidField) {
    struct Case {
        std::string what, key;
        msgpack::object value;
    };
    msgpack::zone zone;
    const std::vector<Case> cases{
        {"from_seq as a string", "from_seq", msgpack::object(std::string("1"), zone)},
        {"from_seq negative", "from_seq", msgpack::object(-1)},
        {"credit negative", "credit", msgpack::object(-5)},
        {"durable as an integer", "durable", msgpack::object(1)},
        {"deliver as an integer", "deliver", msgpack::object(1)},
        {"last as a float", "last", msgpack::object(2.5)},
    };
    for (const auto& c : cases) {
        const auto frame = raw_request("subscribe", "fresh", c.key, c.value);
        expect_refused(c.what, [&] { return raw_call_as_alice(frame); }, "invalid_field");
    }
}

TEST_F(RequestRules, TheEdgesOfEachSubscribeRuleAreAccepted) {
    auto bob = std::make_unique<client::Client>(m_context, options_for(*m_daemon));
    bob->hello("bob");
    auto one = subscribe_to("news");
    one.credit = 1;
    expect_accepted("credit 1", *bob, one);
    auto most = subscribe_to("other");
    most.credit = 100000;
    expect_accepted("credit 100000", *bob, most);
    auto from_one = subscribe_to("third");
    from_one.from_seq = 1;
    expect_accepted("from_seq 1", *bob, from_one);
    // A subscribe that delivers nothing may name another bot: membership only.
    auto for_carol = subscribe_to("news");
    for_carol.bot = "carol";
    const auto reply = bob->call_ok(for_carol);
    const auto* subscribed = reply.find("subscribed");
    ASSERT_TRUE(subscribed && subscribed->type == msgpack::type::BOOLEAN);
    EXPECT_TRUE(subscribed->via.boolean);
    EXPECT_EQ(reply.find("durable"), nullptr) << "a membership-only subscribe answered like a delivering one";
}

TEST_F(RequestRules, PushDeliveryIsRefusedOnAReqSocketAndOnADealerThatFramesLikeReq) {
    for (const auto kind : {ReqStyle::Kind::req, ReqStyle::Kind::dealer_with_delimiter}) {
        const std::string which = kind == ReqStyle::Kind::req ? "REQ: " : "DEALER with a delimiter: ";
        ReqStyle socket(m_context, m_daemon->command_endpoint(), kind);
        ASSERT_TRUE(socket.call(bus::HelloRequest{"reqbot"}).ok);
        auto durable = subscribe_to("fresh");
        durable.durable = true;
        expect_refused(which + "durable push (the default)", [&] { return socket.call(durable); }, "invalid_field");
        auto explicit_push = subscribe_to("fresh");
        explicit_push.deliver = "push";
        expect_refused(which + "deliver push", [&] { return socket.call(explicit_push); }, "invalid_field");
        auto from_seq = subscribe_to("fresh");
        from_seq.from_seq = 1;
        expect_refused(which + "from_seq", [&] { return socket.call(from_seq); }, "invalid_field");

        // Pulling needs no pushes: allowed, and fetch answers on the same socket.
        auto pull = subscribe_to("news");
        pull.durable = true;
        pull.deliver = "pull";
        pull.from_seq = 1;
        const auto subscribed = socket.call(pull);
        ASSERT_TRUE(subscribed.ok) << which << subscribed.message;
        auto fetch = fetch_from("news");
        const auto fetched = socket.call(fetch);
        ASSERT_TRUE(fetched.ok) << which << fetched.message;
        const auto* messages = fetched.find("messages");
        ASSERT_TRUE(messages && messages->type == msgpack::type::ARRAY);
        EXPECT_EQ(messages->via.array.size, 1U) << which;
        ASSERT_TRUE(socket.call(bus::UnsubscribeRequest{"news", std::nullopt}).ok);
    }
}

TEST_F(RequestRules, FetchWithoutAnIdentityIsNotIdentified) {
    expect_refused("fetch before hello", *m_observer, fetch_from("news"), "not_identified");
}

TEST_F(RequestRules, FetchWithoutADurableSubscriptionIsNotFound) {
    expect_refused("no subscription at all", *m_alice, fetch_from("news"), "not_found");
    expect_refused("a channel that does not exist", *m_alice, fetch_from("nowhere"), "not_found");
    m_alice->call_ok(subscribe_to("news"));  // membership only
    expect_refused("a membership without a cursor", *m_alice, fetch_from("news"), "not_found");
    auto live = subscribe_to("news");
    live.deliver = "push";  // delivered, but not durable
    m_alice->call_ok(live);
    expect_refused("a delivered subscription that is not durable", *m_alice, fetch_from("news"), "not_found");
}

TEST_F(RequestRules, FetchFromAPushedDurableSubscriptionIsInvalidField) {
    auto pushed = subscribe_to("news");
    pushed.durable = true;
    m_alice->call_ok(pushed);
    expect_refused("fetch of a pushed subscription", *m_alice, fetch_from("news"), "invalid_field");
}

TEST_F(RequestRules, FetchMaxAndWaitOutOfRangeAreInvalidFieldAndTheirEdgesAreAccepted) {
    auto pull = subscribe_to("news");
    pull.durable = true;
    pull.deliver = "pull";
    pull.from_seq = 1;
    m_alice->call_ok(pull);

    auto zero = fetch_from("news");
    zero.max = 0;
    expect_refused("max 0", *m_alice, zero, "invalid_field");
    auto over = fetch_from("news");
    over.max = 1001;
    expect_refused("max 1001", *m_alice, over, "invalid_field");
    auto too_long = fetch_from("news");
    too_long.wait_ms = 60001;
    expect_refused("wait_ms 60001", *m_alice, too_long, "invalid_field");
    // Checked before the subscription is looked up: a wrong max on an unknown channel is still invalid_field.
    auto unknown = fetch_from("nowhere");
    unknown.max = 0;
    expect_refused("max 0 on an unknown channel", *m_alice, unknown, "invalid_field");

    // The edges: a message is waiting, so even the longest wait returns at once.
    auto edges = fetch_from("news");
    edges.max = 1000;
    edges.wait_ms = 60000;
    const auto started = std::chrono::steady_clock::now();
    const auto fetched = m_alice->call(edges);
    ASSERT_TRUE(fetched.ok) << fetched.error_name << " " << fetched.message;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 30s) << "waited although a message was there";
    EXPECT_EQ(fetched.find("messages")->via.array.size, 1U);
    auto one = fetch_from("news");
    one.max = 1;
    expect_accepted("max 1", *m_alice, one);
}

TEST_F(RequestRules, FetchFieldsOfTheWrongTypeAreInvalidField) {
    auto pull = subscribe_to("news");
    pull.durable = true;
    pull.deliver = "pull";
    m_alice->call_ok(pull);
    msgpack::zone zone;
    for (const auto& [key, value] : std::vector<std::pair<std::string, msgpack::object>>{
             {"max", msgpack::object(std::string("10"), zone)}, {"max", msgpack::object(-1)},
             {"wait_ms", msgpack::object(-1)}, {"wait_ms", msgpack::object(1.5)}}) {
        const auto frame = raw_request("fetch", "news", key, value);
        expect_refused("fetch " + key + " of the wrong type", [&] { return raw_call_as_alice(frame); },
                       "invalid_field");
    }
}

}  // namespace
}  // namespace botbus
