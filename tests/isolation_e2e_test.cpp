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
#include "raw_wire.hpp"

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

using testing::packed;

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

using Dealer = testing::RawDealer;

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
        const auto reply = publisher.reply(20000ms);
        ASSERT_TRUE(reply);
        EXPECT_EQ(reply->u64("id"), i);
        ASSERT_EQ(reply->ok(), true) << "publish " << i << ": " << reply->text("error") << ": " << reply->text("message");
        const auto seq = reply->u64("seq");
        ASSERT_TRUE(seq);
        EXPECT_TRUE(seqs.insert(*seq).second) << "seq " << *seq << " acknowledged twice";
    }
    for (std::size_t k = 0; k < bad.size(); ++k) {
        SCOPED_TRACE("bad request " + std::to_string(k) + " (" + bad[k].field + ")");
        const auto reply = executor.reply(20000ms);
        ASSERT_TRUE(reply);
        EXPECT_EQ(reply->u64("id"), 1000 + k);
        EXPECT_EQ(reply->ok(), false);
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
