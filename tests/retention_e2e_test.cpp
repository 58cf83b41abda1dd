// Retention against the real botbusd: the trimming timer deletes what is past
// the limits while the daemon serves, seqs stay unique, idempotency holds
// while the keyed message is kept, and channel.retention changes a channel's
// limits over the wire.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::full_history;
using testing::eventually;
using testing::options_for;

TEST(RetentionOverTheWire, TrimmingKeepsTheNewestSeqsUniqueAndKeysWhileKept) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--retention-max-messages", "5", "--trim-interval-ms", "20"});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");

    const auto keyed = alice.publish("lobby", bus::pack_as_value(std::string("once")), "text", "greeting-1");
    const auto retried = alice.publish("lobby", bus::pack_as_value(std::string("once")), "text", "greeting-1");
    EXPECT_TRUE(retried.duplicate);
    EXPECT_EQ(retried.seq, keyed.seq);

    std::set<std::uint64_t> seqs{keyed.seq};
    for (int i = 0; i < 10; ++i) seqs.insert(alice.publish("lobby", bus::pack_as_value(i)).seq);
    EXPECT_EQ(seqs.size(), 11U);
    ASSERT_TRUE(eventually([&] { return full_history(alice, "lobby").size() == 5; }))
        << "still " << full_history(alice, "lobby").size() << " messages";
    const auto kept = full_history(alice, "lobby");
    EXPECT_EQ(kept.front().stream_seq, 7U);
    EXPECT_EQ(kept.back().stream_seq, 11U);

    // The keyed message is gone, and its key with it: a retry is new.
    const auto after = alice.publish("lobby", bus::pack_as_value(std::string("once")), "text", "greeting-1");
    EXPECT_FALSE(after.duplicate);
    EXPECT_FALSE(seqs.contains(after.seq)) << "a seq was handed out twice";
    EXPECT_EQ(after.stream_seq, 12U);

    // A channel's own limit.
    bus::ChannelRetentionRequest retention;
    retention.name = "lobby";
    retention.max_messages = 2;
    const auto reply = alice.call_ok(retention);
    EXPECT_GT(testing::u64_field(reply, "seq"), after.seq);
    const auto* channel = reply.find("channel");
    ASSERT_TRUE(channel && channel->type == msgpack::type::MAP);
    std::map<std::string, msgpack::object> fields;
    for (const auto& kv : channel->via.map) fields.emplace(kv.key.as<std::string>(), kv.val);
    EXPECT_EQ(fields.at("name").as<std::string>(), "lobby");
    EXPECT_EQ(fields.at("created_by").as<std::string>(), "alice");
    EXPECT_EQ(fields.at("last_channel_seq").as<std::uint64_t>(), 12U);
    EXPECT_EQ(fields.at("max_messages").as<std::uint64_t>(), 2U);
    EXPECT_TRUE(fields.at("max_age_ms").is_nil()) << "absent in the request: the daemon's default";
    ASSERT_TRUE(eventually([&] { return full_history(alice, "lobby").size() == 2; }));
    bus::ChannelRetentionRequest unknown;
    unknown.name = "nowhere";
    const auto refused = alice.call(unknown);
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.error_name, "not_found");
}

}  // namespace
}  // namespace botbus
