// Crash durability: SIGKILL botbusd and restart it on the same data dir.
// Every acknowledged event must survive with its seq, channel seq and body;
// seqs are never reused; and no event is half applied.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <optional>
#include <string>
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

bus::PackedValue body_of(int index) { return bus::pack_as_value("crash-" + std::to_string(index)); }

struct Acked {
    int index = 0;
    client::Ack ack;
};

// Sends `count` publishes without waiting (bodies first..first+count-1) and
// returns the ids in send order.
std::vector<std::uint64_t> send_burst(client::Client& client, const std::string& channel, int first, int count) {
    std::vector<std::uint64_t> ids;
    ids.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        ids.push_back(client.send_request(
            bus::PublishRequest{channel, std::nullopt, body_of(first + i), std::nullopt, std::nullopt}));
    }
    return ids;
}

// Collects replies to a burst until `wanted` arrived or the deadline passes.
std::vector<Acked> collect_acks(client::Client& client, const std::vector<std::uint64_t>& ids, int first,
                                std::size_t wanted, Clock::duration limit) {
    std::map<std::uint64_t, int> index_of_id;
    for (std::size_t i = 0; i < ids.size(); ++i) index_of_id.emplace(ids[i], first + static_cast<int>(i));
    std::vector<Acked> acked;
    const auto deadline = Clock::now() + limit;
    while (acked.size() < wanted && Clock::now() < deadline) {
        const auto reply =
            client.receive_reply(std::chrono::duration_cast<client::Millis>(deadline - Clock::now()));
        if (!reply) break;
        if (!reply->ok) {
            ADD_FAILURE() << "publish failed: " << reply->error_name << ": " << reply->message;
            break;
        }
        const auto it = reply->id ? index_of_id.find(*reply->id) : index_of_id.end();
        if (it == index_of_id.end()) {
            ADD_FAILURE() << "a reply with an unknown or repeated id";
            break;
        }
        acked.push_back({it->second, client::Ack{u64_field(*reply, "seq"), u64_field(*reply, "channel_seq"), 0,
                                                 false}});
        index_of_id.erase(it);
    }
    return acked;
}

// Checks that every acknowledged publish is in `history` unchanged.
void expect_all_acked_present(const std::vector<bus::Message>& history, const std::vector<Acked>& acked) {
    std::map<std::uint64_t, const bus::Message*> by_seq;
    for (const auto& message : history) by_seq[message.seq] = &message;
    for (const auto& a : acked) {
        const auto it = by_seq.find(a.ack.seq);
        ASSERT_NE(it, by_seq.end()) << "acknowledged seq " << a.ack.seq << " (message " << a.index << ") is lost";
        EXPECT_EQ(it->second->stream_seq, a.ack.stream_seq) << "seq " << a.ack.seq;
        EXPECT_EQ(it->second->body, body_of(a.index)) << "seq " << a.ack.seq;
    }
}

TEST(CrashDurability, EveryAcknowledgedPublishSurvivesSigkill) {
    constexpr int k_one_by_one = 300;
    constexpr int k_burst = 1000;
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    zmq::context_t context;

    std::vector<Acked> acked;
    {
        testing::DaemonProcess daemon(data);
        client::Client alice(context, options_for(daemon));
        alice.hello("alice");
        for (int i = 0; i < k_one_by_one; ++i) {
            acked.push_back({i, alice.publish("durable", body_of(i))});
        }
        const auto ids = send_burst(alice, "durable", k_one_by_one, k_burst);
        const auto burst = collect_acks(alice, ids, k_one_by_one, ids.size(), 30s);
        ASSERT_EQ(burst.size(), ids.size());
        acked.insert(acked.end(), burst.begin(), burst.end());
        daemon.kill_hard();
    }

    std::uint64_t last_acked = 0;
    for (const auto& a : acked) last_acked = std::max(last_acked, a.ack.seq);

    testing::DaemonProcess daemon(data);
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    const auto history = full_history(alice, "durable");
    EXPECT_EQ(history.size(), acked.size());
    expect_all_acked_present(history, acked);
    // Everything was acknowledged before the kill, so nothing beyond is in
    // the log and the next seq follows the last acknowledged one.
    EXPECT_EQ(u64_field(alice.call_ok(bus::StatsRequest{}), "last_seq"), last_acked);
    const auto next = alice.publish("durable", body_of(-1));
    EXPECT_EQ(next.seq, last_acked + 1);
    EXPECT_EQ(next.stream_seq, acked.size() + 1);
}

TEST(CrashDurability, SigkillDuringPipelinedBurstLosesNoAckAndHalfAppliesNothing) {
    constexpr int k_burst = 5000;
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    zmq::context_t context;

    std::vector<Acked> acked;
    {
        testing::DaemonProcess daemon(data);
        client::Client alice(context, options_for(daemon));
        alice.hello("alice");
        const auto ids = send_burst(alice, "burst", 0, k_burst);
        acked = collect_acks(alice, ids, 0, ids.size() / 2, 30s);
        ASSERT_GE(acked.size(), ids.size() / 2);
        daemon.kill_hard();
    }

    testing::DaemonProcess daemon(data);
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    const auto history = full_history(alice, "burst");
    std::cout << "[ info     ] " << acked.size() << " acknowledged before SIGKILL, " << history.size()
              << " in the log after restart\n";
    ASSERT_GE(history.size(), acked.size());
    ASSERT_LE(history.size(), std::size_t{k_burst});
    expect_all_acked_present(history, acked);

    // One connection's requests are applied in order, so the log holds a
    // prefix of the burst: channel seqs 1..n with bodies 0..n-1, no holes.
    for (std::size_t i = 0; i < history.size(); ++i) {
        ASSERT_EQ(history[i].stream_seq, i + 1) << "hole in the channel at " << i;
        ASSERT_EQ(history[i].body, body_of(static_cast<int>(i))) << "at channel seq " << i + 1;
        if (i > 0) {
            ASSERT_GT(history[i].seq, history[i - 1].seq);
        }
    }

    // No half-applied event: the log, the message index and the channel's
    // projection agree (one channel.created event plus one per message).
    const auto stats = alice.call_ok(bus::StatsRequest{});
    const auto n = static_cast<std::uint64_t>(history.size());
    EXPECT_EQ(u64_field(stats, "messages"), n);
    EXPECT_EQ(u64_field(stats, "events"), n + 1);
    EXPECT_EQ(u64_field(stats, "last_seq"), n + 1) << "the global seq has a gap";
    const auto channels = alice.call_ok(bus::ChannelListRequest{});
    const auto* list = channels.find("channels");
    ASSERT_TRUE(list && list->type == msgpack::type::ARRAY && list->via.array.size == 1);
    const auto& channel = list->via.array.ptr[0];
    ASSERT_EQ(channel.type, msgpack::type::MAP);
    std::optional<std::uint64_t> last_channel_seq;
    for (std::uint32_t i = 0; i < channel.via.map.size; ++i) {
        const auto& entry = channel.via.map.ptr[i];
        if (entry.key.type == msgpack::type::STR &&
            std::string_view(entry.key.via.str.ptr, entry.key.via.str.size) == "last_channel_seq" &&
            entry.val.type == msgpack::type::POSITIVE_INTEGER) {
            last_channel_seq = entry.val.via.u64;
        }
    }
    EXPECT_EQ(last_channel_seq, n);

    // Seqs continue after the restart; nothing is reused.
    const auto next = alice.publish("burst", body_of(k_burst));
    EXPECT_EQ(next.seq, n + 2);
    EXPECT_EQ(next.stream_seq, n + 1);
}

TEST(CrashDurability, SigtermDuringBurstAnswersOrRefusesEveryReceivedRequest) {
    // One request per batch, so the loop yields to the signal often and
    // SIGTERM lands while most of the burst is still queued.
    constexpr int k_burst = 3000;
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    zmq::context_t context;

    std::map<std::uint64_t, int> index_of_id;
    std::map<int, client::Ack> acked;  // by burst index
    std::vector<int> refused;
    {
        testing::DaemonProcess daemon(data, {"--max-batch", "1"});
        client::Client alice(context, options_for(daemon));
        alice.hello("alice");
        const auto ids = send_burst(alice, "term", 0, k_burst);
        for (std::size_t i = 0; i < ids.size(); ++i) index_of_id.emplace(ids[i], static_cast<int>(i));

        bool terminated = false;
        const auto deadline = Clock::now() + 30s;
        while (acked.size() + refused.size() < ids.size() && Clock::now() < deadline) {
            // Once the daemon has exited, whatever it sent has arrived or is
            // lost: stop after a second of silence.
            const auto wait = terminated ? client::Millis{1000} : client::Millis{10000};
            const auto reply = alice.receive_reply(wait);
            if (!reply) break;
            ASSERT_TRUE(reply->id);
            const auto it = index_of_id.find(*reply->id);
            ASSERT_NE(it, index_of_id.end()) << "unknown or repeated id";
            if (reply->ok) {
                acked[it->second] = client::Ack{u64_field(*reply, "seq"), u64_field(*reply, "channel_seq"), 0, false};
            } else {
                ASSERT_EQ(reply->error_name, "shutting_down") << reply->message;
                refused.push_back(it->second);
            }
            index_of_id.erase(it);
            if (!terminated && acked.size() >= 500) {
                ASSERT_EQ(daemon.terminate(), 0) << daemon.stderr_text();
                terminated = true;
            }
        }
        ASSERT_TRUE(terminated);
    }
    std::cout << "[ info     ] " << acked.size() << " acknowledged, " << refused.size() << " refused, "
              << index_of_id.size() << " unanswered at SIGTERM\n";

    testing::DaemonProcess daemon(data);
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    const auto history = full_history(alice, "term");
    // Requests run in order: the log holds exactly the acknowledged prefix of
    // the burst; nothing refused or unanswered was applied.
    ASSERT_EQ(history.size(), acked.size());
    for (std::size_t i = 0; i < history.size(); ++i) {
        const auto index = static_cast<int>(i);
        const auto it = acked.find(index);
        ASSERT_NE(it, acked.end()) << "message " << i << " is in the log but was never acknowledged";
        EXPECT_EQ(history[i].seq, it->second.seq);
        EXPECT_EQ(history[i].stream_seq, i + 1);
        EXPECT_EQ(history[i].body, body_of(index));
    }
    for (const int index : refused) {
        EXPECT_GE(index, static_cast<int>(acked.size())) << "a refused request was applied";
    }
    // One connection keeps its order: a request left unanswered never reached
    // the daemon, so it comes after every answered one. A gap (an unanswered
    // request before an answered one) is a request the daemon received and
    // dropped at shutdown.
    int last_answered = static_cast<int>(acked.size()) - 1;
    for (const int index : refused) last_answered = std::max(last_answered, index);
    for (const auto& [id, index] : index_of_id) {
        EXPECT_GT(index, last_answered) << "request " << index << " was received (a later one was answered) but never answered";
    }
    // Refused requests are the contiguous run right after the acknowledged
    // prefix: the daemon refuses what it had queued, in order.
    std::vector<int> sorted_refused = refused;
    std::sort(sorted_refused.begin(), sorted_refused.end());
    for (std::size_t i = 0; i < sorted_refused.size(); ++i) {
        EXPECT_EQ(sorted_refused[i], static_cast<int>(acked.size() + i)) << "refusals are not contiguous";
    }
}

}  // namespace
}  // namespace botbus
