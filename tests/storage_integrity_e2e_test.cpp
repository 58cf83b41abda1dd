// Storage integrity against the real botbusd: a data directory that takes no
// writes is refused before the daemon says it is ready, naming the file and
// the cause; a WAL damaged after acknowledged commits makes start-up refuse
// and name the missing seqs (botbus.seq); and `botbusd verify` passes an
// intact log and names the first edited or missing event.
//
// Read-only: tests run as root in CI, which ignores permission bits, and may
// not mount a read-only file system, so tests/readonly_fs_shim.cpp, preloaded
// into botbusd, fails every write under the data directory with EROFS as a
// read-only mount does. When not root, a directory without write permission
// is tried as well.
#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "postgres_test_server.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using testing::options_for;

constexpr int k_cannot_serve = 1;

std::vector<std::string> serve_args(const std::filesystem::path& data) {
    return {"--data-dir", data.string(), "--command-endpoint", "tcp://127.0.0.1:*", "--feed-endpoint",
            "tcp://127.0.0.1:*"};
}

// The environment that makes `dir` a read-only file system for botbusd.
class ReadOnlyFs {
public:
    explicit ReadOnlyFs(std::filesystem::path dir) : m_dir(std::move(dir)) {}
    std::vector<std::string> env() const {
        std::string preload;
        if (const char* existing = std::getenv("LD_PRELOAD"); existing && *existing) {
            preload = std::string(existing) + ":";  // a sanitizer runtime preloaded by CI stays first
        }
        preload += BOTBUS_READONLY_SHIM_PATH;
        std::string asan = "verify_asan_link_order=0";
        if (const char* existing = std::getenv("ASAN_OPTIONS"); existing && *existing) {
            asan = std::string(existing) + ":" + asan;
        }
        return {"LD_PRELOAD=" + preload, "BOTBUS_READONLY_DIR=" + m_dir.string(),
                "BOTBUS_READONLY_MARKER=" + m_marker.file("interposed"), "ASAN_OPTIONS=" + asan};
    }
    bool interposed() const { return std::filesystem::exists(m_marker.file("interposed")); }

private:
    std::filesystem::path m_dir;
    testing::TempDir m_marker;
};

// Runs botbusd on a read-only `data` and expects the refusal.
void expect_read_only_refusal(const std::filesystem::path& data, const std::vector<std::string>& says) {
    ReadOnlyFs read_only(data);
    const auto run = testing::run_botbusd(serve_args(data), 10s, read_only.env());
    if (!read_only.interposed()) {
        if (const char* other = std::getenv("BOTBUS_TEST_BOTBUSD"); other && *other) {
            GTEST_SKIP() << "the read-only shim cannot intercept the libc calls of " << other;
        }
        FAIL() << "the read-only shim did not intercept botbusd's libc calls; stderr:\n" << run.stderr_text;
    }
    ASSERT_NE(run.exit_code, -1) << "botbusd started on a read-only data directory; stderr:\n" << run.stderr_text;
    EXPECT_EQ(run.exit_code, k_cannot_serve) << run.stderr_text;
    EXPECT_EQ(run.stdout_text.find("botbusd ready"), std::string::npos) << "it reported ready";
    for (const auto& text : says) {
        EXPECT_NE(run.stderr_text.find(text), std::string::npos) << "stderr does not say \"" << text << "\":\n"
                                                                 << run.stderr_text;
    }
}

// Publishes `count` messages on "log", each acknowledged before the next
// (one commit each); returns the last acknowledged seq.
std::uint64_t publish_acknowledged(const testing::DaemonProcess& daemon, int count) {
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    std::uint64_t last = 0;
    for (int i = 0; i < count; ++i) last = alice.publish("log", bus::pack_as_value("m" + std::to_string(i))).seq;
    return last;
}

TEST(ReadOnlyDataDir, AFreshDirectoryIsRefusedNamingTheFileAndTheCause) {
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    std::filesystem::create_directories(data);
    // The first file botbusd makes is the data directory's lock.
    expect_read_only_refusal(data, {(data / "botbus.lock").string(), "Read-only file system"});
    EXPECT_FALSE(std::filesystem::exists(data / "botbus.db"));
}

// The case that used to start: SQLite opens the files read-only without a
// word and the WAL left by a crash serves reads, so the daemon reported
// ready and answered every write with storage_error.
TEST(ReadOnlyDataDir, ADatabaseLeftByACrashIsRefusedBeforeReady) {
    BOTBUS_SQLITE_ONLY("checks the SQLite files in the data directory");
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    {
        testing::DaemonProcess daemon(data);
        publish_acknowledged(daemon, 3);
        daemon.kill_hard();
    }
    ASSERT_TRUE(std::filesystem::exists(data / "botbus.db-wal"));
    expect_read_only_refusal(data, {(data / "botbus.seq").string(), "Read-only file system"});

    // Without its record (a data directory from an older botbusd) the
    // database files themselves are checked.
    std::filesystem::remove(data / "botbus.seq");
    expect_read_only_refusal(data, {"Read-only file system", "botbus.seq"});
}

TEST(ReadOnlyDataDir, ADatabaseWithoutWritePermissionIsRefusedWhenNotRoot) {
    if (::geteuid() == 0) GTEST_SKIP() << "root ignores permission bits; the read-only shim covers this as root";
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    {
        testing::DaemonProcess daemon(data);
        publish_acknowledged(daemon, 1);
    }
    for (const auto& entry : std::filesystem::directory_iterator(data)) {
        std::filesystem::permissions(entry.path(), std::filesystem::perms::owner_read);
    }
    std::filesystem::permissions(data, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    const auto run = testing::run_botbusd(serve_args(data), 10s);
    std::filesystem::permissions(data, std::filesystem::perms::owner_all);
    EXPECT_EQ(run.exit_code, k_cannot_serve) << run.stderr_text;
    EXPECT_NE(run.stderr_text.find("Permission denied"), std::string::npos) << run.stderr_text;
    EXPECT_EQ(run.stdout_text.find("botbusd ready"), std::string::npos);
}

// Damage to a committed WAL frame ends SQLite's recovery there; the commits
// after it vanish without an error. botbus.seq still says what was
// acknowledged, so start-up refuses and names what is gone.
TEST(SeqRecord, AWalDamagedAfterAcknowledgedCommitsIsRefusedNamingTheMissingSeqs) {
    BOTBUS_SQLITE_ONLY("the seq record beside the SQLite WAL");
    testing::TempDir dir;
    const auto data = dir.path() / "data";
    std::uint64_t last_acked = 0;
    {
        testing::DaemonProcess daemon(data);
        last_acked = publish_acknowledged(daemon, 40);
        daemon.kill_hard();  // leaves the WAL as it is: no checkpoint at close
    }
    const auto wal = data / "botbus.db-wal";
    {
        std::fstream file(wal, std::ios::in | std::ios::out | std::ios::binary);
        ASSERT_TRUE(file);
        unsigned char header[32];
        file.read(reinterpret_cast<char*>(header), sizeof header);
        const std::uint32_t page_size = (std::uint32_t{header[8]} << 24) | (std::uint32_t{header[9]} << 16) |
                                        (std::uint32_t{header[10]} << 8) | header[11];
        const auto frame_size = 24 + static_cast<std::uintmax_t>(page_size);
        const auto frames = (std::filesystem::file_size(wal) - 32) / frame_size;
        ASSERT_GT(frames, 20U) << "the publishes should still be in the WAL";
        // A byte in the page of a frame three quarters in: its checksum
        // fails, and with it every later frame.
        const auto damaged = 32 + (frames * 3 / 4) * frame_size + 24 + 100;
        file.seekg(static_cast<std::streamoff>(damaged));
        char byte = 0;
        file.read(&byte, 1);
        byte = static_cast<char>(byte ^ 0x5a);
        file.seekp(static_cast<std::streamoff>(damaged));
        file.write(&byte, 1);
    }
    const auto run = testing::run_botbusd(serve_args(data), 10s);
    ASSERT_NE(run.exit_code, -1) << "botbusd started on a log missing acknowledged events; stderr:\n"
                                 << run.stderr_text;
    EXPECT_EQ(run.exit_code, k_cannot_serve) << run.stderr_text;
    EXPECT_EQ(run.stdout_text.find("botbusd ready"), std::string::npos);
    EXPECT_NE(run.stderr_text.find(".." + std::to_string(last_acked) + " are missing"), std::string::npos)
        << run.stderr_text;
    EXPECT_NE(run.stderr_text.find((data / "botbus.seq").string()), std::string::npos) << run.stderr_text;
}

class Verify : public ::testing::Test {
protected:
    testing::TempDir m_dir;
    std::filesystem::path m_data = m_dir.path() / "data";
    std::uint64_t m_last = 0;

    void SetUp() override {
        testing::DaemonProcess daemon(m_data);
        m_last = publish_acknowledged(daemon, 5);
        EXPECT_EQ(daemon.terminate(), 0);
    }
    // On either store: the e2e suite's second pass puts this data
    // directory's log in a PostgreSQL schema of its own.
    testing::RunResult verify() {
        auto args = testing::store_args(m_data);
        args.insert(args.begin(), "verify");
        return testing::run_botbusd(args, 20s);
    }
    void sql(const std::string& statement) {
        if (testing::test_store_is_postgres()) {
            testing::exec_sql(testing::postgres_store_for(m_data), statement);
            return;
        }
        SQLite::Database db((m_data / "botbus.db").string(), SQLite::OPEN_READWRITE);
        db.exec(statement);
    }
    // A msgpack map with nothing in it, as a blob literal of the engine.
    static std::string empty_map_blob() { return testing::test_store_is_postgres() ? "'\\xa0'::bytea" : "x'a0'"; }
};

TEST_F(Verify, AnIntactLogExitsZeroWithAOneLineSummary) {
    const auto run = verify();
    EXPECT_EQ(run.exit_code, 0) << run.stdout_text << run.stderr_text;
    EXPECT_NE(run.stdout_text.find("intact: log_head at seq " + std::to_string(m_last)), std::string::npos)
        << run.stdout_text;
    EXPECT_EQ(std::count(run.stdout_text.begin(), run.stdout_text.end(), '\n'), 1) << run.stdout_text;
}

TEST_F(Verify, AnEditedPayloadIsNamedBySeq) {
    const auto edited = m_last - 2;
    sql("UPDATE events SET payload = " + empty_map_blob() + " WHERE seq = " + std::to_string(edited));
    const auto run = verify();
    EXPECT_EQ(run.exit_code, 1) << run.stdout_text << run.stderr_text;
    EXPECT_NE(run.stdout_text.find("DAMAGED: seq " + std::to_string(edited) + " (ch/log"), std::string::npos)
        << run.stdout_text;
}

TEST_F(Verify, ADeletedEventIsNamedAsAGap) {
    const auto deleted = m_last - 2;
    sql("DELETE FROM events WHERE seq = " + std::to_string(deleted));
    const auto run = verify();
    EXPECT_EQ(run.exit_code, 1) << run.stdout_text << run.stderr_text;
    EXPECT_NE(run.stdout_text.find("DAMAGED: seq " + std::to_string(deleted) + " missing from the log"),
              std::string::npos)
        << run.stdout_text;
}

}  // namespace
}  // namespace botbus
