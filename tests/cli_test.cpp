// The botbus CLI against a real botbusd: each test runs the CLI binary as a
// child process and checks its stdout, stderr and exit status.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"

extern char** environ;

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

std::vector<Json> json_lines(const std::string& text) {
    std::vector<Json> values;
    for (const auto& line : lines_of(text)) values.push_back(Json::parse(line));
    return values;
}

struct CliResult {
    int exit_code = -1;  // -1: still running at the deadline (then killed)
    std::string out;
    std::string err;
};

// One run of the botbus binary: stdin from a file, stdout and stderr to
// files, the environment without BOTBUS_* (plus `env`).
class CliProcess {
public:
    CliProcess(const std::filesystem::path& dir, int number, const std::vector<std::string>& args,
               const std::string& stdin_text, const std::vector<std::string>& env)
        : m_out(dir / ("cli-" + std::to_string(number) + ".out")),
          m_err(dir / ("cli-" + std::to_string(number) + ".err")) {
        const auto in_path = dir / ("cli-" + std::to_string(number) + ".in");
        std::ofstream(in_path, std::ios::binary) << stdin_text;

        std::vector<std::string> argv_storage{BOTBUS_CLI_PATH};
        argv_storage.insert(argv_storage.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_storage) argv.push_back(a.data());
        argv.push_back(nullptr);

        std::vector<std::string> env_storage;
        for (char** e = environ; *e; ++e) {
            if (std::string_view(*e).rfind("BOTBUS_", 0) != 0) env_storage.emplace_back(*e);
        }
        env_storage.insert(env_storage.end(), env.begin(), env.end());
        std::vector<char*> envp;
        for (auto& e : env_storage) envp.push_back(e.data());
        envp.push_back(nullptr);

        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, in_path.c_str(), O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, m_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, m_err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int rc = posix_spawn(&m_pid, argv[0], &actions, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) throw std::runtime_error(std::string("cannot start ") + BOTBUS_CLI_PATH);
    }

    ~CliProcess() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            waitpid(m_pid, nullptr, 0);
        }
    }
    CliProcess(const CliProcess&) = delete;
    CliProcess& operator=(const CliProcess&) = delete;

    // Waits for the exit (killing the process at the deadline) and collects
    // what it printed.
    CliResult wait(std::chrono::milliseconds deadline = 20s) {
        CliResult result;
        // Debian 12's <sys/pidfd.h> lacks extern "C"; go through syscall().
        const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, m_pid, 0));
        if (pidfd < 0) throw std::runtime_error("pidfd_open failed");
        pollfd pfd{pidfd, POLLIN, 0};
        const bool exited = ::poll(&pfd, 1, static_cast<int>(deadline.count())) == 1;
        close(pidfd);
        if (!exited) ::kill(m_pid, SIGKILL);
        int status = 0;
        waitpid(m_pid, &status, 0);
        m_pid = -1;
        if (exited) result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        result.out = read_file(m_out);
        result.err = read_file(m_err);
        return result;
    }

private:
    std::filesystem::path m_out;
    std::filesystem::path m_err;
    pid_t m_pid = -1;
};

// A TCP port on loopback that is bound, so nobody else can take it, but not
// listening: connecting to it is refused.
class DeadPort {
public:
    DeadPort() : m_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        auto* generic = reinterpret_cast<sockaddr*>(&address);
        if (m_fd < 0 || ::bind(m_fd, generic, sizeof address) != 0 || ::getsockname(m_fd, generic, &length) != 0) {
            throw std::runtime_error("cannot reserve a loopback port");
        }
        m_port = ntohs(address.sin_port);
    }
    ~DeadPort() { close(m_fd); }
    DeadPort(const DeadPort&) = delete;
    DeadPort& operator=(const DeadPort&) = delete;

    std::string endpoint() const { return "tcp://127.0.0.1:" + std::to_string(m_port); }

private:
    int m_fd;
    unsigned m_port = 0;
};

class Cli : public ::testing::Test {
protected:
    Cli() : m_daemon(m_dir.path() / "data") {}

    // Runs the CLI against this test's daemon.
    CliResult cli(const std::vector<std::string>& args, const std::string& stdin_text = {}) {
        return start(args, stdin_text)->wait();
    }
    std::unique_ptr<CliProcess> start(const std::vector<std::string>& args, const std::string& stdin_text = {}) {
        std::vector<std::string> all{"--command-endpoint", m_daemon.command_endpoint(), "--feed-endpoint",
                                     m_daemon.feed_endpoint()};
        all.insert(all.end(), args.begin(), args.end());
        return start_raw(all, stdin_text);
    }
    // Runs the CLI with exactly these arguments and extra environment.
    CliResult cli_raw(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
        return start_raw(args, {}, env)->wait();
    }
    std::unique_ptr<CliProcess> start_raw(const std::vector<std::string>& args, const std::string& stdin_text,
                                          const std::vector<std::string>& env = {}) {
        return std::make_unique<CliProcess>(m_dir.path(), m_runs++, args, stdin_text, env);
    }

    // Publishes through the CLI and returns the seq it printed (--json).
    std::uint64_t publish(const std::string& channel, const std::string& body) {
        const auto r = cli({"--json", "publish", channel, body});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return Json::parse(r.out).at("seq").get<std::uint64_t>();
    }

    testing::TempDir m_dir;
    testing::DaemonProcess m_daemon;
    int m_runs = 0;
};

TEST_F(Cli, PublishedMessageShowsUpInHistory) {
    const auto published = cli({"--as", "alice", "publish", "news", "hello there"});
    ASSERT_EQ(published.exit_code, 0) << published.err;
    EXPECT_EQ(published.out.rfind("published seq=", 0), 0U) << published.out;
    EXPECT_NE(published.out.find("channel_seq=1"), std::string::npos) << published.out;

    const auto history = cli({"history", "news"});
    ASSERT_EQ(history.exit_code, 0) << history.err;
    const auto lines = lines_of(history.out);
    ASSERT_EQ(lines.size(), 1U) << history.out;
    EXPECT_EQ(lines[0].rfind("[seq ", 0), 0U) << lines[0];
    EXPECT_NE(lines[0].find(" #1 "), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("] alice (text): hello there"), std::string::npos) << lines[0];
}

TEST_F(Cli, JsonOutputCarriesTheSeq) {
    const auto first = cli({"--json", "publish", "news", "first"});
    ASSERT_EQ(first.exit_code, 0) << first.err;
    const auto first_ack = Json::parse(first.out);
    EXPECT_EQ(first_ack.at("channel_seq"), 1);
    EXPECT_EQ(first_ack.at("duplicate"), false);
    EXPECT_TRUE(first_ack.at("ts").is_number_integer());

    const auto second = Json::parse(cli({"--json", "publish", "news", "second", "--key", "k-2"}).out);
    const auto retried = Json::parse(cli({"--json", "publish", "news", "second", "--key", "k-2"}).out);
    EXPECT_EQ(retried.at("seq"), second.at("seq"));
    EXPECT_EQ(retried.at("duplicate"), true);

    const auto history = cli({"history", "news", "--json"});
    ASSERT_EQ(history.exit_code, 0) << history.err;
    const auto messages = json_lines(history.out);
    ASSERT_EQ(messages.size(), 2U) << history.out;
    EXPECT_EQ(messages[0].at("seq"), first_ack.at("seq"));
    EXPECT_EQ(messages[0].at("channel"), "news");
    EXPECT_EQ(messages[0].at("from"), "botbus-cli");
    EXPECT_EQ(messages[0].at("body"), "first");
    EXPECT_EQ(messages[1].at("seq"), second.at("seq"));
    EXPECT_EQ(messages[1].at("channel_seq"), 2);
    EXPECT_TRUE(messages[1].at("reply_to").is_null());
}

TEST_F(Cli, JsonBodyTravelsAsAMsgpackMap) {
    const auto r = cli({"publish", "news", R"({"n":1,"tags":["a","b"]})", "--json-body", "--type", "event"});
    ASSERT_EQ(r.exit_code, 0) << r.err;

    zmq::context_t context;
    client::Client reader(context, {m_daemon.command_endpoint(), m_daemon.feed_endpoint(), 5000ms});
    bus::HistoryRequest request;
    request.channel = "news";
    const auto page = reader.history(request);
    ASSERT_EQ(page.messages.size(), 1U);
    const auto& body = page.messages[0].body.bytes;
    const auto handle = msgpack::unpack(body.data(), body.size());
    EXPECT_EQ(handle.get().type, msgpack::type::MAP);
    EXPECT_EQ(page.messages[0].type, "event");

    const auto history = json_lines(cli({"--json", "history", "news"}).out);
    ASSERT_EQ(history.size(), 1U);
    EXPECT_EQ(history[0].at("body"), Json::parse(R"({"n":1,"tags":["a","b"]})"));
}

TEST_F(Cli, BodiesFromOtherBotsCannotDriveTheTerminalOrBreakJson) {
    zmq::context_t context;
    client::Client mallory(context, {m_daemon.command_endpoint(), m_daemon.feed_endpoint(), 5000ms});
    mallory.hello("mallory");
    mallory.publish("news", bus::pack_as_value(std::string("\x1b[2J\xc2\x9b" "31m\ninvalid \xff utf-8")));
    mallory.publish("news", bus::pack_as_value(std::map<int, std::string>{{1, "integer key"}}));

    const auto text = cli({"history", "news"});
    ASSERT_EQ(text.exit_code, 0) << text.err;
    const auto lines = lines_of(text.out);
    ASSERT_EQ(lines.size(), 2U) << text.out;
    EXPECT_EQ(text.out.find('\x1b'), std::string::npos) << text.out;
    EXPECT_NE(lines[0].find("\\x1b[2J\\xc2\\x9b31m\\ninvalid"), std::string::npos) << lines[0];
    EXPECT_NE(lines[1].find("integer key"), std::string::npos) << lines[1];

    const auto json = cli({"--json", "history", "news"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    const auto messages = json_lines(json.out);  // parses: invalid UTF-8 was replaced
    ASSERT_EQ(messages.size(), 2U);
    EXPECT_TRUE(messages[0].at("body").is_string());
}

TEST_F(Cli, BodyIsReadFromStdinWhenOmitted) {
    const auto r = cli({"publish", "news"}, "from stdin\n");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto history = lines_of(cli({"history", "news"}).out);
    ASSERT_EQ(history.size(), 1U);
    EXPECT_NE(history[0].find("): from stdin"), std::string::npos) << history[0];
    EXPECT_EQ(history[0].find("\\n"), std::string::npos) << "the trailing newline is dropped: " << history[0];
}

TEST_F(Cli, ChannelsListsACreatedChannel) {
    const auto created = cli({"channel", "create", "ops", "--description", "Ops room"});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    EXPECT_EQ(created.out.rfind("created channel ops", 0), 0U) << created.out;

    const auto table = cli({"channels"});
    ASSERT_EQ(table.exit_code, 0) << table.err;
    const auto lines = lines_of(table.out);
    ASSERT_EQ(lines.size(), 2U) << table.out;
    EXPECT_EQ(lines[0].rfind("NAME", 0), 0U) << lines[0];
    EXPECT_EQ(lines[1].rfind("ops ", 0), 0U) << lines[1];
    EXPECT_NE(lines[1].find("Ops room"), std::string::npos) << lines[1];

    const auto json = json_lines(cli({"--json", "channels"}).out);
    ASSERT_EQ(json.size(), 1U);
    EXPECT_EQ(json[0].at("name"), "ops");
    EXPECT_EQ(json[0].at("description"), "Ops room");
    EXPECT_EQ(json[0].at("subscribers"), 0);

    EXPECT_EQ(cli({"channel", "create", "ops"}).exit_code, 1) << "a second create is a conflict";
}

TEST_F(Cli, BadUsageExitsTwo) {
    const std::vector<std::vector<std::string>> cases{
        {},
        {"frobnicate"},
        {"publish"},
        {"publish", "news", "body", "extra"},
        {"publish", "news", "--no-such-option", "x"},
        {"publish", "news", "--json-body", "{not json"},
        {"history", "news", "--limit"},
        {"history"},
        {"history", "news", "--inbox"},
        {"tail", "news", "--count", "-1"},
        {"--timeout", "soon", "ping"},
        {"channel"},
    };
    for (const auto& args : cases) {
        std::string shown;
        for (const auto& a : args) shown += a + ' ';
        const auto r = cli(args);
        EXPECT_EQ(r.exit_code, 2) << shown << "\n" << r.err;
        EXPECT_NE(r.err.find("usage: botbus"), std::string::npos) << shown << "\n" << r.err;
        EXPECT_TRUE(r.out.empty()) << shown << "\n" << r.out;
    }
}

TEST_F(Cli, HistoryOfAnUnknownChannelExitsOneWithNotFound) {
    const auto r = cli({"history", "nowhere"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("botbus: not_found: "), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(Cli, TailFromZeroCatchesUpAndStopsAfterCount) {
    for (const char* body : {"one", "two", "three"}) publish("news", body);
    const auto r = cli({"tail", "news", "--from", "0", "--count", "3"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 3U) << r.out;
    EXPECT_NE(lines[0].find("): one"), std::string::npos) << lines[0];
    EXPECT_NE(lines[1].find("): two"), std::string::npos) << lines[1];
    EXPECT_NE(lines[2].find("): three"), std::string::npos) << lines[2];
}

TEST_F(Cli, TailWaitsForAMessagePublishedAfterItStarted) {
    const auto before = publish("news", "before");
    // --from makes this deterministic: whether the tail is live yet or not,
    // it delivers everything after `before`.
    auto tail = start({"--json", "tail", "news", "--from", std::to_string(before), "--count", "1"});
    const auto after = publish("news", "after");
    const auto r = tail->wait();
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto messages = json_lines(r.out);
    ASSERT_EQ(messages.size(), 1U) << r.out;
    EXPECT_EQ(messages[0].at("seq"), after);
    EXPECT_EQ(messages[0].at("body"), "after");
}

TEST_F(Cli, TailForExitsOnceIdle) {
    const auto r = cli({"tail", "quiet", "--for", "100"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(Cli, PingToADeadEndpointExitsThree) {
    const DeadPort port;
    const auto r = cli_raw({"--command-endpoint", port.endpoint(), "--timeout", "300", "ping"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("the daemon at " + port.endpoint() + " did not answer within 300 ms"), std::string::npos)
        << r.err;
}

TEST_F(Cli, PingAnswers) {
    const auto r = cli({"ping"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("pong from " + m_daemon.command_endpoint(), 0), 0U) << r.out;
    const auto json = Json::parse(cli({"--json", "ping"}).out);
    EXPECT_EQ(json.at("pong"), true);
}

TEST_F(Cli, EnvironmentNamesTheDaemon) {
    const auto r = cli_raw({"--json", "ping"}, {"BOTBUS_COMMAND_ENDPOINT=" + m_daemon.command_endpoint()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(Json::parse(r.out).at("pong"), true);
}

TEST_F(Cli, DirectMessageReachesTheRecipientsInbox) {
    const auto sent = cli({"--as", "alice", "--json", "send", "bob", "hi bob"});
    ASSERT_EQ(sent.exit_code, 0) << sent.err;
    const auto ack = Json::parse(sent.out);
    EXPECT_EQ(ack.at("mailbox_seq"), 1);

    const auto inbox = cli({"--as", "bob", "history", "--inbox"});
    ASSERT_EQ(inbox.exit_code, 0) << inbox.err;
    const auto lines = lines_of(inbox.out);
    ASSERT_EQ(lines.size(), 1U) << inbox.out;
    EXPECT_NE(lines[0].find("@bob #1 "), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("] alice (text): hi bob"), std::string::npos) << lines[0];

    const auto conversation = json_lines(cli({"--as", "alice", "--json", "history", "--peer", "bob"}).out);
    ASSERT_EQ(conversation.size(), 1U);
    EXPECT_EQ(conversation[0].at("to"), "bob");

    const auto seq = std::to_string(ack.at("seq").get<std::uint64_t>());
    const auto acked = cli({"--as", "bob", "ack", seq});
    EXPECT_EQ(acked.exit_code, 0) << acked.err;
    EXPECT_EQ(acked.out, "acked up to " + seq + " for bob\n");
}

TEST_F(Cli, SubscriptionsShowFromBothSides) {
    const auto subscribed = cli({"--as", "bob", "subscribe", "news"});
    ASSERT_EQ(subscribed.exit_code, 0) << subscribed.err;
    EXPECT_EQ(subscribed.out.rfind("subscribed bob to news", 0), 0U) << subscribed.out;

    EXPECT_EQ(cli({"--as", "bob", "subscriptions"}).out, "news\n");
    const auto subscribers = Json::parse(cli({"--json", "subscribers", "news"}).out);
    EXPECT_EQ(subscribers.at("bots"), Json::array({"bob"}));

    EXPECT_EQ(cli({"unsubscribe", "news", "--bot", "bob"}).exit_code, 0);
    EXPECT_EQ(cli({"subscribers", "news"}).out, "");
}

TEST_F(Cli, StatsJsonCountsThePublishedMessage) {
    const auto seq = publish("news", "counted");
    const auto r = cli({"--json", "stats"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto stats = Json::parse(r.out);
    EXPECT_EQ(stats.at("messages"), 1);
    EXPECT_GE(stats.at("last_seq").get<std::uint64_t>(), seq);
}

TEST_F(Cli, HelpListsTheCommands) {
    const auto r = cli_raw({"--help"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    for (const char* command : {"publish CHANNEL", "send BOT", "tail CHANNEL", "history", "channels",
                                "channel create NAME", "channel delete NAME", "subscribe CHANNEL", "unsubscribe",
                                "subscriptions", "subscribers CHANNEL", "ack SEQ", "stats", "ping"}) {
        EXPECT_NE(r.out.find(command), std::string::npos) << command;
    }
    const auto tail_help = cli_raw({"tail", "--help"});
    EXPECT_EQ(tail_help.exit_code, 0);
    EXPECT_NE(tail_help.out.find("--count"), std::string::npos) << tail_help.out;
}

}  // namespace
}  // namespace botbus
