// Signals never interrupt the work of botbusd's event loop: SIGHUP (the
// allowlist reload an operator sends at any time) and SIGTERM arrive on a
// thread of their own. Before, a signal the kernel happened to deliver to
// the loop's thread interrupted the ZeroMQ call it was in, cppzmq threw
// EINTR, and the daemon exited 1 with "Interrupted system call".
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include "bus/protocol/codec.hpp"
#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "temp_dir.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using testing::options_for;

// Keeps a window of publishes in flight and takes their replies, so the
// loop spends its time inside ZeroMQ calls while the signals come.
std::uint64_t publish_pipelined(client::Client& client, std::uint64_t total) {
    constexpr std::uint64_t k_window = 64;
    std::uint64_t sent = 0;
    std::uint64_t acked = 0;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (acked < total && std::chrono::steady_clock::now() < deadline) {
        while (sent - acked < k_window && sent < total) {
            bus::PublishRequest publish;
            publish.channel = "load";
            publish.body = bus::pack_as_value(std::string(160, static_cast<char>('a' + sent % 26)));
            client.send_request(publish);
            ++sent;
        }
        auto reply = client.receive_reply(1000ms);
        if (!reply) break;  // the daemon stopped answering
        EXPECT_TRUE(reply->ok) << reply->error_name << ": " << reply->message;
        ++acked;
    }
    return acked;
}

TEST(Signals, HangupsArrivingUnderLoadInterruptNothingAndTermStillEndsTheDaemonCleanly) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client client(context, options_for(daemon));
    client.hello("alice");

    std::atomic<bool> done{false};
    std::atomic<int> sent_hangups{0};
    std::thread hangups([&] {
        // Bounded in count; paced so the daemon's loop sees them spread over the load.
        for (int i = 0; i < 20000 && !done.load(); ++i) {
            if (::kill(daemon.pid(), SIGHUP) != 0) break;
            sent_hangups.fetch_add(1);
            std::this_thread::sleep_for(50us);
        }
    });
    constexpr std::uint64_t k_total = 20000;
    const auto acked = publish_pipelined(client, k_total);
    done = true;
    hangups.join();

    EXPECT_EQ(acked, k_total) << daemon.stderr_text();
    EXPECT_GT(sent_hangups.load(), 100) << "the load ended before the signals had a chance to land";
    // Still serving, and SIGTERM still takes the clean way out.
    EXPECT_TRUE(client.call(bus::PingRequest{}).ok) << daemon.stderr_text();
    EXPECT_EQ(daemon.terminate(), 0) << daemon.stderr_text();
    // Logged at warn: nothing went wrong, so nothing was said (before, each
    // interrupted call logged an error).
    EXPECT_EQ(daemon.stderr_text(), "");
}

}  // namespace
}  // namespace botbus
