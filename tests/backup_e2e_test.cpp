// Online backup (issue 14) against the real botbusd: `backup` while
// publishes keep coming, `botbusd verify FILE`, `botbusd restore FILE`, and
// what each refuses.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "temp_dir.hpp"

namespace bus = botbus::bus;
namespace client = botbus::client;
namespace fs = std::filesystem;
using botbus::testing::DaemonProcess;
using botbus::testing::options_for;
using botbus::testing::run_botbusd;
using botbus::testing::RunResult;
using botbus::testing::u64_field;
using namespace std::chrono_literals;

namespace {

std::string text_of(const bus::Reply& reply, std::string_view key) {
    const auto* value = reply.find(key);
    return value && value->type == msgpack::type::STR ? value->as<std::string>() : std::string();
}

// Keeps `window` publishes in flight on its own connection and counts the
// highest seq acknowledged so far.
class Publisher {
public:
    Publisher(zmq::context_t& context, const DaemonProcess& daemon) : m_client(context, options_for(daemon)) {
        m_client.hello("loader");
    }
    // Tops the window up and takes the replies that are there within `wait`.
    void turn(std::chrono::milliseconds wait) {
        while (m_in_flight < k_window && m_sent < k_limit) {
            bus::PublishRequest publish;
            publish.channel = "load";
            publish.body = bus::pack_as_value(std::string(512, static_cast<char>('a' + m_sent % 26)));
            m_client.send_request(publish);
            ++m_in_flight;
            ++m_sent;
        }
        while (auto reply = m_client.receive_reply(wait)) {
            ASSERT_TRUE(reply->ok) << reply->error_name << ": " << reply->message;
            m_acked_seq = std::max(m_acked_seq, u64_field(*reply, "seq"));
            --m_in_flight;
            ++m_acked;
            wait = 0ms;
        }
    }
    std::uint64_t acked_seq() const { return m_acked_seq; }
    std::uint64_t acked() const { return m_acked; }

private:
    static constexpr std::size_t k_window = 64;
    static constexpr std::size_t k_limit = 200000;  // a bound on the load, never reached in a passing run
    client::Client m_client;
    std::size_t m_in_flight = 0;
    std::size_t m_sent = 0;
    std::uint64_t m_acked = 0;
    std::uint64_t m_acked_seq = 0;
};

std::size_t messages_in(client::Client& reader, const std::string& channel) {
    std::size_t count = 0;
    bus::HistoryRequest request;
    request.channel = channel;
    request.limit = 1000;
    for (;;) {
        const auto page = reader.history(request);
        count += page.messages.size();
        if (!page.more || page.messages.empty()) return count;
        request.after = page.messages.back().seq;
    }
}

}  // namespace

TEST(Backup, ACopyTakenUnderLoadHoldsEveryAcknowledgedEventAndRestoresEqual) {
    BOTBUS_SQLITE_ONLY("the backup op copies the SQLite file");
    botbus::testing::TempDir dir;
    zmq::context_t context;
    fs::path copy;
    std::uint64_t acked_before = 0;
    std::uint64_t copy_last_seq = 0;
    {
        DaemonProcess daemon(dir.path() / "data");
        Publisher load(context, daemon);
        // A few MB first, so the copy takes long enough for publishes to
        // go on beside it.
        while (load.acked() < 20000) load.turn(10000ms);
        acked_before = load.acked_seq();

        client::Client admin(context, options_for(daemon));
        const auto id = admin.send_request(bus::BackupRequest{"under-load.db"});
        const auto acked_at_request = load.acked();
        std::optional<bus::Reply> answer;
        const auto deadline = std::chrono::steady_clock::now() + 60s;
        while (!answer && std::chrono::steady_clock::now() < deadline) {
            load.turn(1ms);
            if (auto reply = admin.receive_reply(0ms)) answer = std::move(reply);
        }
        ASSERT_TRUE(answer) << "no answer to the backup in 60 s\n" << daemon.stderr_text();
        ASSERT_TRUE(answer->ok) << answer->error_name << ": " << answer->message;
        EXPECT_EQ(answer->id, id);
        // Publishes went on while the copy was written (informative: a fast
        // copy may finish before the next reply).
        RecordProperty("publishes_acked_during_backup", std::to_string(load.acked() - acked_at_request));
        copy = text_of(*answer, "path");
        copy_last_seq = u64_field(*answer, "last_seq");
        EXPECT_EQ(copy, fs::absolute(dir.path() / "data" / "backups" / "under-load.db").lexically_normal());
        EXPECT_TRUE(fs::exists(copy));
        EXPECT_FALSE(fs::exists(copy.string() + ".partial"));
        EXPECT_EQ(u64_field(*answer, "bytes"), fs::file_size(copy));
        // Everything acknowledged before the request is in the copy.
        EXPECT_GE(copy_last_seq, acked_before);
        EXPECT_GE(u64_field(*answer, "events"), acked_before);
        EXPECT_EQ(daemon.terminate(), 0);
    }

    const auto verified = run_botbusd({"verify", copy.string(), "--log-level", "warn"}, 120s);
    ASSERT_EQ(verified.exit_code, 0) << verified.stdout_text << verified.stderr_text;
    EXPECT_NE(verified.stdout_text.find("good: the log up to seq " + std::to_string(copy_last_seq)), std::string::npos)
        << verified.stdout_text;
    EXPECT_NE(verified.stdout_text.find("projections: equal to a replay"), std::string::npos) << verified.stdout_text;

    // Restored into the original data directory: the later publishes go
    // aside with the database they were in.
    const auto restored = run_botbusd({"restore", copy.string(), "--data-dir", (dir.path() / "data").string()}, 120s);
    ASSERT_EQ(restored.exit_code, 0) << restored.stdout_text << restored.stderr_text;
    std::vector<fs::path> aside;
    for (const auto& entry : fs::directory_iterator(dir.path() / "data")) {
        if (entry.path().filename().string().starts_with("replaced-")) aside.push_back(entry.path());
    }
    ASSERT_EQ(aside.size(), 1U) << restored.stdout_text;
    EXPECT_TRUE(fs::exists(aside[0] / "botbus.db"));
    EXPECT_TRUE(fs::exists(aside[0] / "botbus.seq"));

    DaemonProcess daemon(dir.path() / "data");
    client::Client reader(context, options_for(daemon));
    reader.hello("reader");
    EXPECT_EQ(u64_field(reader.call_ok(bus::StatsRequest{}), "last_seq"), copy_last_seq);
    // seq 1 is the channel's creation; every message up to the copy's end.
    EXPECT_EQ(messages_in(reader, "load"), copy_last_seq - 1);
    // The restored log goes on from its own end.
    EXPECT_EQ(reader.publish("load", bus::pack_as_value("after the restore")).seq, copy_last_seq + 1);
    EXPECT_EQ(daemon.terminate(), 0);
    const auto rebuilt = run_botbusd({"rebuild", "--data-dir", (dir.path() / "data").string(), "--log-level", "warn"});
    EXPECT_EQ(rebuilt.exit_code, 0) << rebuilt.stdout_text << rebuilt.stderr_text;
}

TEST(Backup, RefusesNamesInUseOrNotPlainFileNames) {
    BOTBUS_SQLITE_ONLY("the backup op copies the SQLite file");
    botbus::testing::TempDir dir;
    DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client admin(context, options_for(daemon));
    ASSERT_TRUE(admin.call(bus::BackupRequest{"once"}).ok);
    const auto again = admin.call(bus::BackupRequest{"once"});
    EXPECT_FALSE(again.ok);
    EXPECT_EQ(again.error, bus::Errc::conflict) << again.message;
    for (const std::string name : {"../escape", "a/b", ".hidden", "copy.partial", ""}) {
        const auto refused = admin.call(bus::BackupRequest{name});
        EXPECT_FALSE(refused.ok) << name;
        EXPECT_EQ(refused.error, bus::Errc::invalid_name) << name << ": " << refused.message;
    }
    EXPECT_FALSE(fs::exists(dir.path() / "escape"));
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.path() / "data" / "backups")) ++files;
    EXPECT_EQ(files, 1U);
}

TEST(Backup, ABackupDirectoryThatCannotBeMadeIsAStorageErrorAndTheDaemonServesOn) {
    botbus::testing::TempDir dir;
    std::ofstream(dir.path() / "a-file") << "not a directory";
    DaemonProcess daemon(dir.path() / "data", {"--backup-dir", (dir.path() / "a-file" / "backups").string()});
    zmq::context_t context;
    client::Client admin(context, options_for(daemon));
    const auto refused = admin.call(bus::BackupRequest{"copy"});
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.error, bus::Errc::storage_error) << refused.message;
    EXPECT_NE(refused.message.find("a-file"), std::string::npos) << refused.message;
    admin.hello("alice");
    EXPECT_EQ(admin.publish("general", bus::pack_as_value("still serving")).seq, 2U);
}

TEST(Backup, OnlyAdminsTakeBackupsWhenOwnersRulesAreOn) {
    BOTBUS_SQLITE_ONLY("the backup op copies the SQLite file");
    botbus::testing::TempDir dir;
    DaemonProcess daemon(dir.path() / "data", {"--default-policy", "deny", "--admin", "ops"});
    zmq::context_t context;
    client::Client bob(context, options_for(daemon));
    bob.hello("bob");
    const auto refused = bob.call(bus::BackupRequest{"by-bob"});
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.error, bus::Errc::forbidden) << refused.message;
    client::Client ops(context, options_for(daemon));
    ops.hello("ops");
    EXPECT_TRUE(ops.call(bus::BackupRequest{"by-ops"}).ok);
    EXPECT_FALSE(fs::exists(dir.path() / "data" / "backups" / "by-bob"));
}

TEST(Backup, TheCliWritesACopyAndSaysWhere) {
    BOTBUS_SQLITE_ONLY("the backup op copies the SQLite file");
    botbus::testing::TempDir dir;
    DaemonProcess daemon(dir.path() / "data");
    const auto result = botbus::testing::run_program(
        BOTBUS_CLI_PATH, {"--command-endpoint", daemon.command_endpoint(), "--feed-endpoint", daemon.feed_endpoint(),
                          "backup", "nightly"});
    ASSERT_EQ(result.exit_code, 0) << result.stdout_text << result.stderr_text;
    const auto path = fs::absolute(dir.path() / "data" / "backups" / "nightly").lexically_normal().string();
    EXPECT_NE(result.stdout_text.find("wrote " + path), std::string::npos) << result.stdout_text;
    EXPECT_TRUE(fs::exists(path));
}

TEST(Restore, IsRefusedWhileADaemonServesTheDirectoryAndChangesNothing) {
    BOTBUS_SQLITE_ONLY("restore installs a SQLite file");
    botbus::testing::TempDir dir;
    DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client admin(context, options_for(daemon));
    const auto copy = text_of(admin.call_ok(bus::BackupRequest{"copy"}), "path");
    const auto refused = run_botbusd({"restore", copy, "--data-dir", (dir.path() / "data").string()});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.stderr_text.find("another botbusd (pid " + std::to_string(daemon.pid()) + ")"),
              std::string::npos)
        << refused.stderr_text;
    // Nor may a second daemon serve it.
    const auto second = run_botbusd({"--data-dir", (dir.path() / "data").string(), "--command-endpoint",
                                     "tcp://127.0.0.1:*", "--feed-endpoint", "tcp://127.0.0.1:*"});
    EXPECT_EQ(second.exit_code, 1);
    EXPECT_NE(second.stderr_text.find("is using the data directory"), std::string::npos) << second.stderr_text;
    admin.hello("alice");
    EXPECT_EQ(admin.publish("general", bus::pack_as_value("unharmed")).seq, 2U);
}

TEST(Restore, ADamagedCopyIsNamedAndNothingIsReplaced) {
    BOTBUS_SQLITE_ONLY("restore installs a SQLite file");
    botbus::testing::TempDir dir;
    fs::path copy;
    {
        DaemonProcess daemon(dir.path() / "data");
        zmq::context_t context;
        client::Client alice(context, options_for(daemon));
        alice.hello("alice");
        for (int i = 0; i < 200; ++i) alice.publish("general", bus::pack_as_value(std::string(400, 'x')));
        copy = text_of(alice.call_ok(bus::BackupRequest{"copy"}), "path");
        EXPECT_EQ(daemon.terminate(), 0);
    }
    // A page in the middle overwritten: what a bad disk or a careless copy does.
    {
        std::fstream file(copy, std::ios::in | std::ios::out | std::ios::binary);
        file.seekp(static_cast<std::streamoff>(fs::file_size(copy) / 2 / 4096 * 4096));
        const std::string junk(4096, '\x5a');
        file.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    const auto verified = run_botbusd({"verify", copy.string()});
    EXPECT_EQ(verified.exit_code, 1) << verified.stdout_text << verified.stderr_text;
    EXPECT_NE((verified.stdout_text + verified.stderr_text).find(copy.string()), std::string::npos);
    const auto before = fs::file_size(dir.path() / "data" / "botbus.db");
    const auto restored = run_botbusd({"restore", copy.string(), "--data-dir", (dir.path() / "data").string()});
    EXPECT_EQ(restored.exit_code, 1) << restored.stdout_text << restored.stderr_text;
    EXPECT_EQ(fs::file_size(dir.path() / "data" / "botbus.db"), before);
    for (const auto& entry : fs::directory_iterator(dir.path() / "data")) {
        EXPECT_FALSE(entry.path().filename().string().starts_with("replaced-")) << entry.path();
    }
    // Not a database at all.
    std::ofstream(dir.path() / "notes.txt") << "hello";
    const auto not_a_database = run_botbusd({"verify", (dir.path() / "notes.txt").string()});
    EXPECT_EQ(not_a_database.exit_code, 1);
    EXPECT_NE(not_a_database.stderr_text.find("notes.txt"), std::string::npos) << not_a_database.stderr_text;
}
