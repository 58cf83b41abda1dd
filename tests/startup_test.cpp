// botbusd's start-up, against the real binary: every way it refuses to start
// (a bad option or config file: exit 2; a resource it cannot use: exit 1)
// with a message that names what is wrong and where, each range check below
// and above its bounds and at the accepted edges, --help and --version, and
// --durability normal serving and keeping what it acknowledged.
#include <gtest/gtest.h>

#include <zmq.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using testing::options_for;
using testing::u64_field;

constexpr int k_bad_configuration = 2;  // the options or the config file
constexpr int k_cannot_serve = 1;       // the data dir, the database, an endpoint

// Arguments that keep a botbusd that starts by mistake off the default
// ports and out of the working directory.
std::vector<std::string> isolated(const testing::TempDir& dir, std::vector<std::string> args) {
    std::vector<std::string> all{"--data-dir", (dir.path() / "data").string(), "--command-endpoint",
                                 "tcp://127.0.0.1:*", "--feed-endpoint", "tcp://127.0.0.1:*"};
    all.insert(all.end(), args.begin(), args.end());
    return all;
}

std::string joined(const std::vector<std::string>& args) {
    std::string out;
    for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
    return out;
}

// Runs botbusd expecting it to refuse to start: `exit_code`, and a stderr
// that contains every one of `says`. A botbusd that starts serving instead
// is killed at the deadline and reported.
void expect_refusal(const std::vector<std::string>& args, int exit_code, const std::vector<std::string>& says) {
    SCOPED_TRACE("botbusd " + joined(args));
    const auto run = testing::run_botbusd(args, 5s);
    ASSERT_NE(run.exit_code, -1) << "botbusd started instead of refusing; stderr:\n" << run.stderr_text;
    EXPECT_EQ(run.exit_code, exit_code) << "stderr:\n" << run.stderr_text;
    for (const auto& text : says) EXPECT_NE(run.stderr_text.find(text), std::string::npos)
        << "stderr does not say \"" << text << "\":\n" << run.stderr_text;
    EXPECT_EQ(run.stdout_text.find("botbusd ready"), std::string::npos) << "it reported ready";
}

// A configuration mistake is reported before logging starts, as
// "botbusd: <message>" on one line.
void expect_bad_configuration(const std::vector<std::string>& args, const std::vector<std::string>& says) {
    auto prefixed = says;
    prefixed.insert(prefixed.begin(), "botbusd: ");
    expect_refusal(args, k_bad_configuration, prefixed);
}

std::filesystem::path write_file(const testing::TempDir& dir, const std::string& name, const std::string& text) {
    const auto path = dir.path() / name;
    std::ofstream(path) << text;
    return path;
}

// Starts botbusd with `args` and checks that it answers a ping.
void expect_serves(const testing::TempDir& dir, const std::string& name, const std::vector<std::string>& args) {
    SCOPED_TRACE("botbusd " + joined(args));
    try {
        testing::DaemonProcess daemon(dir.path() / name, args);
        zmq::context_t context;
        client::Client client(context, options_for(daemon));
        EXPECT_TRUE(client.call(bus::PingRequest{}).ok);
    } catch (const std::exception& e) {
        ADD_FAILURE() << "refused an accepted value: " << e.what();
    }
}

// One numeric option's range: the values just outside are refused naming
// the option and its bounds, the bounds themselves start a serving daemon.
struct Range {
    std::string option;
    std::vector<std::string> refused;
    std::vector<std::string> accepted;
    std::string message;  // the refusal's text
};

const std::vector<Range>& ranges() {
    static const std::vector<Range> k_ranges{
        {"max-frame", {"63", "268435457"}, {"64", "268435456"}, "max-frame must be between 64 bytes and 256 MiB"},
        {"max-batch", {"0", "100001"}, {"1", "100000"}, "max-batch must be between 1 and 100000"},
        {"send-hwm", {"0", "1000001", "-1"}, {"1", "1000000"}, "send-hwm must be between 1 and 1000000"},
        {"max-feed-bytes", {"1048575", "68719476737"}, {"1048576", "68719476736"},
         "max-feed-bytes must be between 1 MiB and 64 GiB"},
        {"max-feed-connections", {"0", "1000001"}, {"1", "1000000"},
         "max-feed-connections must be between 1 and 1000000"},
        {"max-peer-backlog", {"0", "10000001", "-1"}, {"1", "10000000"},
         "max-peer-backlog must be between 1 and 10000000"},
        {"lease-ms", {"9", "86400001"}, {"10", "86400000"}, "lease-ms must be between 10 ms and 24 h"},
        {"ack-timeout-ms", {"9", "86400001"}, {"10", "86400000"}, "ack-timeout-ms must be between 10 ms and 24 h"},
        {"max-deliveries", {"0", "1001"}, {"1", "1000"}, "max-deliveries must be between 1 and 1000"},
        {"mailbox-window", {"0", "100001"}, {"1", "100000"}, "mailbox-window must be between 1 and 100000"},
        {"max-hops", {"0", "1001"}, {"1", "1000"}, "max-hops must be between 1 and 1000"},
        {"rate-limit", {"0.0009", "1000000001", "-1", "nan"}, {"0", "0.001", "1000000000"},
         "rate-limit must be 0 (no limit) or between 0.001 and 1e9 messages per second"},
        {"rate-burst", {"-1", "1000000001", "nan"}, {"0", "1000000000"}, "rate-burst must be between 0 and 1e9"},
        {"trim-interval-ms", {"9", "3600001"}, {"10", "3600000"}, "trim-interval-ms must be between 10 ms and 1 h"},
        {"retention-max-age-ms", {"9007199254740993"}, {"0", "9007199254740992"},
         "retention-max-age-ms must be at most 2^53"},
        {"retention-max-messages", {"9007199254740993"}, {"0", "9007199254740992"},
         "retention-max-messages must be at most 2^53"},
    };
    return k_ranges;
}

TEST(StartUp, AValueOutsideARangeIsRefusedNamingTheOptionAndItsBounds) {
    testing::TempDir dir;
    for (const auto& range : ranges()) {
        for (const auto& value : range.refused) {
            expect_bad_configuration(isolated(dir, {"--" + range.option + "=" + value}), {range.message});
        }
    }
}

TEST(StartUp, TheBoundsOfEachRangeAreAcceptedAndTheDaemonServes) {
    testing::TempDir dir;
    int n = 0;
    for (const auto& range : ranges()) {
        for (const auto& value : range.accepted) {
            expect_serves(dir, "data-" + std::to_string(++n), {"--" + range.option + "=" + value});
        }
    }
}

TEST(StartUp, AValueFromTheConfigFileThatIsOutOfRangeIsRefusedNamingTheFile) {
    testing::TempDir dir;
    const auto config = write_file(dir, "botbusd.conf", "max-hops = 0\n");
    expect_bad_configuration(isolated(dir, {"--config", config.string()}),
                             {"max-hops must be between 1 and 1000 (in config file " + config.string() + ")"});
    const auto durability = write_file(dir, "durability.conf", "durability = sometimes\n");
    expect_bad_configuration(isolated(dir, {"--config", durability.string()}),
                             {"durability must be 'full' or 'normal', not 'sometimes' (in config file " +
                              durability.string() + ")"});
}

TEST(StartUp, AnOutOfRangeFlagIsNotBlamedOnTheConfigFile) {
    testing::TempDir dir;
    const auto config = write_file(dir, "botbusd.conf", "max-hops = 3\n");
    const auto run = testing::run_botbusd(isolated(dir, {"--config", config.string(), "--max-hops", "0"}), 5s);
    EXPECT_EQ(run.exit_code, k_bad_configuration) << run.stderr_text;
    EXPECT_EQ(run.stderr_text, "botbusd: max-hops must be between 1 and 1000\n");
}

TEST(StartUp, AnEmptyDataDirIsRefused) {
    testing::TempDir dir;
    expect_bad_configuration({"--data-dir", "", "--command-endpoint", "tcp://127.0.0.1:*", "--feed-endpoint",
                              "tcp://127.0.0.1:*"},
                             {"data-dir must not be empty"});
}

TEST(StartUp, AConfigFileThatCannotBeReadIsRefusedWithItsPath) {
    testing::TempDir dir;
    const auto missing = (dir.path() / "no-such.conf").string();
    expect_bad_configuration(isolated(dir, {"--config", missing}), {"cannot read config file " + missing});
}

TEST(StartUp, AConfigFileThatIsADirectoryIsRefusedWithItsPath) {
    testing::TempDir dir;
    const auto directory = dir.path() / "conf.d";
    std::filesystem::create_directory(directory);
    expect_bad_configuration(isolated(dir, {"--config", directory.string()}),
                             {"cannot read config file " + directory.string(), "directory"});
}

TEST(StartUp, AnUnknownKeyInTheConfigFileIsRefusedNamingTheFileAndTheKey) {
    testing::TempDir dir;
    const auto config = write_file(dir, "botbusd.conf", "max-hops = 3\ncolour = red\n");
    expect_bad_configuration(isolated(dir, {"--config", config.string()}),
                             {"config file " + config.string() + ":", "colour"});
}

TEST(StartUp, ABadValueInTheConfigFileIsRefusedNamingTheFileTheOptionAndTheValue) {
    testing::TempDir dir;
    const auto config = write_file(dir, "botbusd.conf", "max-frame = lots\n");
    expect_bad_configuration(isolated(dir, {"--config", config.string()}),
                             {"config file " + config.string() + ":", "max-frame", "lots"});
}

TEST(StartUp, ALineThatIsNotKeyEqualsValueInTheConfigFileIsRefusedNamingTheFileAndTheLine) {
    testing::TempDir dir;
    const auto config = write_file(dir, "botbusd.conf", "just some words\n");
    expect_bad_configuration(isolated(dir, {"--config", config.string()}),
                             {"config file " + config.string() + ":", "just some words"});
}

TEST(StartUp, FlagsOverrideTheConfigFile) {
    testing::TempDir dir;
    const auto config = write_file(dir, "botbusd.conf", "max-hops = 0\n");
    expect_serves(dir, "data", {"--config", config.string(), "--max-hops", "3"});
}

TEST(StartUp, SettingsFromTheConfigFileTakeEffect) {
    testing::TempDir dir;
    const auto config = write_file(dir, "botbusd.conf", "# one answer deep at most\nmax-hops = 1\n");
    testing::DaemonProcess daemon(dir.path() / "data", {"--config", config.string()});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    const auto question = alice.publish("talk", bus::pack_as_value(std::string("q")));
    const auto answer =
        alice.publish("talk", bus::pack_as_value(std::string("a")), "text", std::nullopt, question.seq);
    bus::PublishRequest deeper{"talk", std::nullopt, bus::pack_as_value(std::string("aa")), std::nullopt,
                               std::nullopt};
    deeper.reply_to = answer.seq;
    const auto refused = alice.call(deeper);
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.error_name, "depth_exceeded") << refused.message;
}

TEST(StartUp, AnUnknownOptionIsRefusedNamingIt) {
    testing::TempDir dir;
    expect_bad_configuration(isolated(dir, {"--colour", "red"}), {"--colour"});
}

TEST(StartUp, AValueOfTheWrongTypeIsRefusedNamingTheOptionAndTheValue) {
    testing::TempDir dir;
    expect_bad_configuration(isolated(dir, {"--max-frame", "lots"}), {"max-frame", "lots"});
    expect_bad_configuration(isolated(dir, {"--rate-limit", "fast"}), {"rate-limit", "fast"});
}

TEST(StartUp, AnOptionWithoutItsValueIsRefusedNamingIt) {
    testing::TempDir dir;
    expect_bad_configuration(isolated(dir, {"--max-frame"}), {"max-frame"});
}

TEST(StartUp, AnOptionGivenTwiceIsRefusedNamingIt) {
    testing::TempDir dir;
    expect_bad_configuration(isolated(dir, {"--max-hops", "2", "--max-hops", "3"}), {"max-hops"});
}

TEST(StartUp, AnUnknownCommandWordIsRefusedNamingItAndTheKnownOnes) {
    testing::TempDir dir;
    expect_bad_configuration(isolated(dir, {"frobnicate"}),
                             {"unknown command 'frobnicate' (expected serve, rebuild, verify or restore)"});
}

TEST(StartUp, ASecondCommandWordIsRefused) {
    testing::TempDir dir;
    expect_bad_configuration(isolated(dir, {"serve", "rebuild"}),
                             {"unexpected argument 'rebuild': only verify and restore take a FILE"});
    expect_bad_configuration(isolated(dir, {"verify", "a.db", "b.db"}), {"positional"});
    expect_bad_configuration(isolated(dir, {"restore"}), {"restore needs the backup copy: botbusd restore FILE"});
}

TEST(StartUp, ABadDurabilityIsRefusedNamingTheChoices) {
    testing::TempDir dir;
    expect_bad_configuration(isolated(dir, {"--durability", "sometimes"}),
                             {"durability must be 'full' or 'normal', not 'sometimes'"});
}

TEST(StartUp, ABadLogLevelIsRefusedNamingTheChoices) {
    testing::TempDir dir;
    expect_bad_configuration(isolated(dir, {"--log-level", "loud"}),
                             {"log-level must be trace, debug, info, warn, error, critical or off, not 'loud'"});
}

TEST(StartUp, EveryLogLevelIsAccepted) {
    testing::TempDir dir;
    for (const auto* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
        // `rebuild` parses and checks every option, then stops at the missing
        // database (exit 1): the level was accepted.
        const auto run = testing::run_botbusd({"rebuild", "--data-dir", (dir.path() / "none").string(),
                                               "--log-level", level},
                                              5s);
        EXPECT_EQ(run.exit_code, k_cannot_serve) << level << ": " << run.stderr_text;
        EXPECT_EQ(run.stderr_text.find("log-level"), std::string::npos) << level << ": " << run.stderr_text;
    }
}

// Binds `socket` to a free loopback port and returns its endpoint.
std::string occupy_port(zmq::socket_t& socket) {
    socket.set(zmq::sockopt::linger, 0);
    socket.bind("tcp://127.0.0.1:*");
    return socket.get(zmq::sockopt::last_endpoint);
}

TEST(StartUp, ACommandEndpointInUseIsRefusedNamingTheEndpoint) {
    testing::TempDir dir;
    zmq::context_t context;
    zmq::socket_t holder(context, zmq::socket_type::rep);
    const auto endpoint = occupy_port(holder);
    expect_refusal({"--data-dir", (dir.path() / "data").string(), "--command-endpoint", endpoint,
                    "--feed-endpoint", "tcp://127.0.0.1:*"},
                   k_cannot_serve, {"cannot bind command endpoint " + endpoint, "Address already in use"});
}

TEST(StartUp, AFeedEndpointInUseIsRefusedNamingTheEndpoint) {
    testing::TempDir dir;
    zmq::context_t context;
    zmq::socket_t holder(context, zmq::socket_type::rep);
    const auto endpoint = occupy_port(holder);
    expect_refusal({"--data-dir", (dir.path() / "data").string(), "--command-endpoint", "tcp://127.0.0.1:*",
                    "--feed-endpoint", endpoint},
                   k_cannot_serve, {"cannot bind feed endpoint " + endpoint, "Address already in use"});
}

TEST(StartUp, AnEndpointThatIsNotAnEndpointIsRefusedNamingIt) {
    testing::TempDir dir;
    expect_refusal({"--data-dir", (dir.path() / "data").string(), "--command-endpoint", "nowhere",
                    "--feed-endpoint", "tcp://127.0.0.1:*"},
                   k_cannot_serve, {"cannot bind command endpoint nowhere"});
}

TEST(StartUp, ADataDirThatCannotBeCreatedIsRefusedNamingIt) {
    testing::TempDir dir;
    const auto file = write_file(dir, "a-file", "not a directory\n");
    const auto data_dir = (file / "data").string();
    expect_refusal({"--data-dir", data_dir, "--command-endpoint", "tcp://127.0.0.1:*", "--feed-endpoint",
                    "tcp://127.0.0.1:*"},
                   k_cannot_serve, {"cannot create data directory " + data_dir});
}

TEST(StartUp, ADataDirWhoseDatabaseCannotBeOpenedIsRefusedNamingTheFile) {
    testing::TempDir dir;
    const auto data_dir = dir.path() / "data";
    std::filesystem::create_directories(data_dir / "botbus.db");  // a directory where the database belongs
    expect_refusal({"--data-dir", data_dir.string(), "--command-endpoint", "tcp://127.0.0.1:*", "--feed-endpoint",
                    "tcp://127.0.0.1:*"},
                   k_cannot_serve, {(data_dir / "botbus.db").string()});
}

TEST(StartUp, RebuildWithoutADatabaseIsRefusedNamingThePath) {
    testing::TempDir dir;
    const auto data_dir = dir.path() / "empty";
    expect_refusal({"rebuild", "--data-dir", data_dir.string()}, k_cannot_serve,
                   {"no database at " + (data_dir / "botbus.db").string()});
}

TEST(StartUp, HelpListsTheOptionsAndExitsZero) {
    const auto run = testing::run_botbusd({"--help"}, 5s);
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_EQ(run.stderr_text, "");
    EXPECT_NE(run.stdout_text.find("usage: botbusd"), std::string::npos) << run.stdout_text;
    for (const auto& range : ranges()) {
        EXPECT_NE(run.stdout_text.find("--" + range.option), std::string::npos) << range.option << " is not listed";
    }
    for (const auto* option : {"--config", "--data-dir", "--command-endpoint", "--feed-endpoint", "--durability",
                               "--log-level", "--version"}) {
        EXPECT_NE(run.stdout_text.find(option), std::string::npos) << option << " is not listed";
    }
}

TEST(StartUp, HelpWinsOverABadValue) {
    const auto run = testing::run_botbusd({"--help", "--max-hops", "0"}, 5s);
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_NE(run.stdout_text.find("usage: botbusd"), std::string::npos);
}

TEST(StartUp, VersionPrintsTheVersionAndExitsZero) {
    const auto run = testing::run_botbusd({"--version"}, 5s);
    EXPECT_EQ(run.exit_code, 0) << run.stderr_text;
    EXPECT_EQ(run.stderr_text, "");
    EXPECT_TRUE(std::regex_match(run.stdout_text, std::regex("botbusd [0-9]+\\.[0-9]+\\.[0-9]+.*\n")))
        << run.stdout_text;
}

// --durability normal: replies before the WAL sync, so no syncs are counted,
// and a clean shutdown keeps every acknowledged event.
TEST(StartUp, DurabilityNormalServesNeverSyncsAndKeepsAcknowledgedEventsAcrossACleanRestart) {
    BOTBUS_SQLITE_ONLY("--durability is the SQLite store's");
    testing::TempDir dir;
    const auto data_dir = dir.path() / "data";
    zmq::context_t context;
    std::vector<std::uint64_t> seqs;
    std::uint64_t events = 0;
    {
        testing::DaemonProcess daemon(data_dir, {"--durability", "normal"});
        client::Client alice(context, options_for(daemon));
        alice.hello("alice");
        for (int i = 0; i < 20; ++i) seqs.push_back(alice.publish("lobby", bus::pack_as_value(i)).seq);
        alice.send("bob", bus::pack_as_value(std::string("direct")));
        const auto stats = alice.call_ok(bus::StatsRequest{});
        EXPECT_GT(u64_field(stats, "batches"), 0U);
        EXPECT_EQ(u64_field(stats, "syncs"), 0U) << "a sync under --durability normal";
        events = u64_field(stats, "events");
        EXPECT_EQ(daemon.terminate(), 0) << daemon.stderr_text();
    }
    testing::DaemonProcess daemon(data_dir, {"--durability", "full"});
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    EXPECT_EQ(u64_field(alice.call_ok(bus::StatsRequest{}), "events"), events);
    const auto kept = testing::full_history(alice, "lobby");
    std::vector<std::uint64_t> kept_seqs;
    for (const auto& m : kept) kept_seqs.push_back(m.seq);
    EXPECT_EQ(kept_seqs, seqs);
    bus::HistoryRequest inbox;
    inbox.inbox = true;
    inbox.bot = "bob";
    EXPECT_EQ(alice.history(inbox).messages.size(), 1U);
    // The same daemon under full durability does sync: the counter is live.
    alice.publish("lobby", bus::pack_as_value(std::string("synced")));
    EXPECT_TRUE(testing::eventually([&] { return u64_field(alice.call_ok(bus::StatsRequest{}), "syncs") > 0; }))
        << "no sync under --durability full";
}

}  // namespace
}  // namespace botbus
