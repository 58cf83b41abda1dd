// One client must never hurt another, against the real botbusd: a request
// that fails (here: JSON fields holding invalid UTF-8) fails alone, while the
// requests of other clients that share its batch are committed and answered.
// Requests are raw msgpack frames on several DEALER sockets, all sent before
// any reply is read, so that they land in the same batches.
#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon_process.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Packer = msgpack::packer<msgpack::sbuffer>;

// Packs whatever `pack` writes into one msgpack text.
template <typename F>
std::string packed_with(F&& pack) {
    msgpack::sbuffer buffer;
    Packer packer(buffer);
    pack(packer);
    return std::string(buffer.data(), buffer.size());
}

template <typename T>
std::string packed(const T& value) {
    return packed_with([&](Packer& p) { p.pack(value); });
}

// A request frame: op, id, then each field's key with its already packed value.
std::string request(std::string_view op, std::uint64_t id,
                    const std::vector<std::pair<std::string, std::string>>& fields = {}) {
    msgpack::sbuffer buffer;
    Packer packer(buffer);
    packer.pack_map(static_cast<std::uint32_t>(2 + fields.size()));
    packer.pack(std::string("op"));
    packer.pack(std::string(op));
    packer.pack(std::string("id"));
    packer.pack(id);
    for (const auto& [key, value] : fields) {
        packer.pack(key);
        buffer.write(value.data(), value.size());
    }
    return std::string(buffer.data(), buffer.size());
}

struct Reply {
    msgpack::object_handle handle;

    const msgpack::object* find(std::string_view key) const {
        const auto& root = handle.get();
        if (root.type != msgpack::type::MAP) return nullptr;
        for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
            const auto& k = root.via.map.ptr[i].key;
            if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
                return &root.via.map.ptr[i].val;
            }
        }
        return nullptr;
    }
    bool ok() const {
        const auto* v = find("ok");
        return v && v->type == msgpack::type::BOOLEAN && v->via.boolean;
    }
    std::string text(std::string_view key) const {
        const auto* v = find(key);
        if (!v || v->type != msgpack::type::STR) return "<missing>";
        return std::string(v->via.str.ptr, v->via.str.size);
    }
    std::optional<std::uint64_t> u64(std::string_view key) const {
        const auto* v = find(key);
        if (!v || v->type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
        return v->via.u64;
    }
};

class Dealer {
public:
    Dealer(zmq::context_t& context, const std::string& endpoint) : m_socket(context, zmq::socket_type::dealer) {
        m_socket.set(zmq::sockopt::linger, 0);
        m_socket.connect(endpoint);
    }

    void send(const std::string& frame) { ASSERT_TRUE(m_socket.send(zmq::buffer(frame), zmq::send_flags::none)); }

    // The next reply; a missing or malformed one fails the test.
    std::optional<Reply> read(std::chrono::milliseconds timeout = 20000ms) {
        zmq::pollitem_t item{m_socket.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, timeout) == 0) {
            ADD_FAILURE() << "no reply within " << timeout.count() << " ms";
            return std::nullopt;
        }
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(m_socket, std::back_inserter(parts), zmq::recv_flags::dontwait) ||
            parts.size() != 1) {
            ADD_FAILURE() << "a reply of " << parts.size() << " frames";
            return std::nullopt;
        }
        return Reply{msgpack::unpack(static_cast<const char*>(parts[0].data()), parts[0].size())};
    }

    Reply call_ok(const std::string& frame) {
        send(frame);
        auto reply = read();
        if (!reply) throw std::runtime_error("no reply");
        EXPECT_TRUE(reply->ok()) << reply->text("error") << ": " << reply->text("message");
        return std::move(*reply);
    }

private:
    zmq::socket_t m_socket;
};

std::uint64_t event_count(Dealer& socket) {
    return socket.call_ok(request("stats", 1)).u64("events").value_or(0);
}

// A request whose JSON field (named) holds a string that is not UTF-8.
struct BadRequest {
    std::string frame;
    std::string field;
};

TEST(Isolation, InvalidUtf8InJsonFieldsFailsAloneAmongAnotherClientsPipelinedPublishes) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    Dealer publisher(context, daemon.command_endpoint());
    Dealer executor(context, daemon.command_endpoint());
    publisher.call_ok(request("hello", 1, {{"bot", packed(std::string("alice"))}}));
    publisher.call_ok(request("channel.create", 2, {{"name", packed(std::string("load"))}}));
    executor.call_ok(request("hello", 1, {{"bot", packed(std::string("bob"))}}));
    const auto definition = packed_with([](Packer& p) {
        p.pack_map(3);
        p.pack(std::string("id"));
        p.pack(std::string("wf"));
        p.pack(std::string("name"));
        p.pack(std::string("wf"));
        p.pack(std::string("steps"));
        p.pack_array(2);
        for (const char* step : {"s1", "s2"}) {
            p.pack_map(1);
            p.pack(std::string("id"));
            p.pack(std::string(step));
        }
    });
    executor.call_ok(request("workflow.put", 2, {{"definition", definition}}));
    executor.call_ok(request("run.start", 3, {{"workflow_id", packed(std::string("wf"))}, {"run_id", packed(std::string("r1"))}}));
    executor.call_ok(request("step.start", 4, {{"run_id", packed(std::string("r1"))}, {"step_id", packed(std::string("s1"))}}));
    const auto events_before = event_count(publisher);

    // Lone continuation bytes, a truncated sequence, an overlong encoding, a
    // UTF-16 surrogate, a code point past U+10FFFF: none is UTF-8.
    const auto bad_definition_value = packed_with([](Packer& p) {
        p.pack_map(2);
        p.pack(std::string("name"));
        p.pack(std::string("bad-value"));
        p.pack(std::string("steps"));
        p.pack_array(1);
        p.pack_map(2);
        p.pack(std::string("id"));
        p.pack(std::string("a"));
        p.pack(std::string("name"));
        p.pack(std::string("\x80\x81"));
    });
    const auto bad_definition_key = packed_with([](Packer& p) {
        p.pack_map(3);
        p.pack(std::string("name"));
        p.pack(std::string("bad-key"));
        p.pack(std::string("steps"));
        p.pack_array(1);
        p.pack_map(1);
        p.pack(std::string("id"));
        p.pack(std::string("a"));
        p.pack(std::string("\xc3\x28"));
        p.pack(1);
    });
    const auto in_map = [](const std::string& bad) {
        return packed_with([&](Packer& p) {
            p.pack_map(1);
            p.pack(std::string("k"));
            p.pack(bad);
        });
    };
    const auto r1 = packed(std::string("r1"));
    const std::vector<BadRequest> bad = {
        {request("workflow.put", 1000, {{"definition", bad_definition_value}}), "definition"},
        {request("workflow.put", 1001, {{"definition", bad_definition_key}}), "definition"},
        {request("run.start", 1002, {{"workflow_id", packed(std::string("wf"))}, {"run_id", packed(std::string("r2"))},
                                     {"trigger_payload", packed(std::string("\xe2\x82"))}}),
         "trigger_payload"},
        {request("run.start", 1003, {{"workflow_id", packed(std::string("wf"))}, {"run_id", packed(std::string("r3"))},
                                     {"context", in_map("\xed\xa0\x80")}}),
         "context"},
        {request("step.start", 1004, {{"run_id", r1}, {"step_id", packed(std::string("s2"))},
                                      {"input", packed(std::vector<std::string>{"ok", "\xf4\x90\x80\x80"})}}),
         "input"},
        {request("step.complete", 1005, {{"run_id", r1}, {"step_id", packed(std::string("s1"))},
                                         {"output", in_map("\xff")}}),
         "output"},
        {request("run.complete", 1006, {{"run_id", r1}, {"context", packed(std::string("\xc0\xaf"))}}), "context"},
        {request("run.checkpoint", 1007, {{"run_id", r1}, {"context", in_map("caf\xe9")}}), "context"},
    };

    // Everything is sent before anything is read: the bad requests share
    // their batches with the publishes around them.
    constexpr std::uint64_t k_publishes = 400;
    const std::uint64_t spacing = k_publishes / bad.size();
    std::size_t sent_bad = 0;
    for (std::uint64_t i = 0; i < k_publishes; ++i) {
        publisher.send(request("publish", i, {{"channel", packed(std::string("load"))}, {"body", packed(i)}}));
        if (i % spacing == spacing / 2 && sent_bad < bad.size()) executor.send(bad[sent_bad++].frame);
    }
    ASSERT_EQ(sent_bad, bad.size());

    std::set<std::uint64_t> seqs;
    for (std::uint64_t i = 0; i < k_publishes; ++i) {
        const auto reply = publisher.read();
        ASSERT_TRUE(reply);
        EXPECT_EQ(reply->u64("id"), i);
        ASSERT_TRUE(reply->ok()) << "publish " << i << ": " << reply->text("error") << ": " << reply->text("message");
        const auto seq = reply->u64("seq");
        ASSERT_TRUE(seq);
        EXPECT_TRUE(seqs.insert(*seq).second) << "seq " << *seq << " acknowledged twice";
    }
    for (std::size_t k = 0; k < bad.size(); ++k) {
        SCOPED_TRACE("bad request " + std::to_string(k) + " (" + bad[k].field + ")");
        const auto reply = executor.read();
        ASSERT_TRUE(reply);
        EXPECT_EQ(reply->u64("id"), 1000 + k);
        EXPECT_FALSE(reply->ok());
        EXPECT_EQ(reply->text("error"), "invalid_field") << reply->text("message");
        EXPECT_NE(reply->text("message").find("'" + bad[k].field + "'"), std::string::npos) << reply->text("message");
        EXPECT_NE(reply->text("message").find("UTF-8"), std::string::npos) << reply->text("message");
    }

    // Exactly the publishes were appended, and the run is where it was: s1
    // still running (its bad step.complete did nothing), the run not complete.
    EXPECT_EQ(event_count(publisher), events_before + k_publishes);
    const auto completed = executor.call_ok(
        request("step.complete", 5, {{"run_id", r1}, {"step_id", packed(std::string("s1"))}, {"output", in_map("fine")}}));
    EXPECT_EQ(completed.text("status"), "completed");
    executor.call_ok(request("run.complete", 6, {{"run_id", r1}}));
    EXPECT_EQ(event_count(publisher), events_before + k_publishes + 2);
}

}  // namespace
}  // namespace botbus
