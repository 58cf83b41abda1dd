// SQLite reads failing on the paths that run outside any request (release,
// delivery), against the real botbusd: the daemon logs the failure, keeps
// serving everyone, and delivers once reads work again. Reads are made to
// fail by tests/fault_shim.cpp (fail-db-read), which only sees the reads that
// miss SQLite's page cache: the messages read are older than the last few
// megabytes written.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::options_for;

// The trigger directory of tests/fault_shim.cpp and the environment that
// loads the shim into botbusd (as in fault_test.cpp).
class ReadFaults {
public:
    std::vector<std::string> env() const {
        std::string preload;
        if (const char* existing = std::getenv("LD_PRELOAD"); existing && *existing) {
            preload = std::string(existing) + ":";
        }
        preload += BOTBUS_FAULT_SHIM_PATH;
        std::string asan = "verify_asan_link_order=0";
        if (const char* existing = std::getenv("ASAN_OPTIONS"); existing && *existing) {
            asan = std::string(existing) + ":" + asan;
        }
        return {"LD_PRELOAD=" + preload, "BOTBUS_FAULT_DIR=" + m_dir.path().string(), "ASAN_OPTIONS=" + asan};
    }
    void arm() const { std::ofstream(m_dir.path() / "fail-db-read").put('1'); }
    void disarm() const { std::filesystem::remove(m_dir.path() / "fail-db-read"); }
    bool interposed() const { return std::filesystem::exists(m_dir.path() / "shim-interposed"); }

private:
    testing::TempDir m_dir;
};

bool logged(const testing::DaemonProcess& daemon, const std::string& line) {
    return daemon.stderr_text().find(line) != std::string::npos;
}

TEST(ReadFaults, AMailboxWhoseReadFailsOnReleaseIsReadAgainWhileTheDaemonKeepsServing) {
    BOTBUS_SQLITE_ONLY("the fault shim fails SQLite's file I/O");
    testing::TempDir dir;
    ReadFaults faults;
    testing::DaemonProcess daemon(dir.path() / "data", {}, faults.env());
    if (!faults.interposed()) {
        if (const char* other = std::getenv("BOTBUS_TEST_BOTBUSD"); other && *other) {
            GTEST_SKIP() << "the fault shim cannot intercept the libc calls of " << other;
        }
        FAIL() << "the fault shim did not intercept botbusd's libc calls; stderr:\n" << daemon.stderr_text();
    }
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    // 2000 messages of 4 KiB for bob, who is not connected: 8 MB, four times
    // SQLite's page cache, so his first messages are read from the files.
    const std::string filler(4096, 'x');
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 2000; ++i) {
        bus::SendRequest request;
        request.to = "bob";
        request.body = bus::pack_as_value(filler + std::to_string(i));
        ids.push_back(alice.send_request(request));
    }
    std::uint64_t first_seq = UINT64_MAX;
    for (const auto id : ids) first_seq = std::min(first_seq, testing::u64_field(alice.wait_reply(id, "send"), "seq"));

    client::Client bob(context, options_for(daemon));
    bob.hello("bob", false);  // as bob, without his messages: nothing is delivered yet

    faults.arm();
    // A push connection: its release starts bob's mailbox from the oldest
    // message, and that read fails.
    bob.hello("bob");
    ASSERT_TRUE(eventually([&] { return logged(daemon, "reading the log for the mailbox of bob failed"); }))
        << daemon.stderr_text();
    EXPECT_TRUE(logged(daemon, "fault_shim: failing pread64")) << daemon.stderr_text();
    EXPECT_TRUE(logged(daemon, "reading the mailbox of bob again in 1 s")) << daemon.stderr_text();
    // Still serving, on every connection.
    alice.call_ok(bus::PingRequest{});
    bob.call_ok(bus::PingRequest{});

    faults.disarm();
    const auto push = bob.next_push(10s);
    ASSERT_TRUE(push) << "nothing delivered once reads worked again; stderr:\n" << daemon.stderr_text();
    EXPECT_EQ(push->seq, first_seq);
    EXPECT_EQ(daemon.terminate(), 0) << daemon.stderr_text();
}

}  // namespace
}  // namespace botbus
