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

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <fstream>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "daemon/cli_run_gate.hpp"
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
    // With `pipe_stdout`, stdout goes to a pipe that read_line reads as the
    // process runs (for commands that keep running, like watch).
    CliProcess(const std::filesystem::path& dir, int number, const std::vector<std::string>& args,
               const std::string& stdin_text, const std::vector<std::string>& env, bool pipe_stdout = false)
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
        int pipe_fds[2] = {-1, -1};
        if (pipe_stdout) {
            // Both ends close-on-exec; dup2 gives the child a plain stdout.
            if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
            posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
        } else {
            posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, m_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                             0644);
        }
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, m_err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int rc = posix_spawn(&m_pid, argv[0], &actions, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        if (pipe_stdout) {
            close(pipe_fds[1]);
            m_pipe = pipe_fds[0];
        }
        if (rc != 0) throw std::runtime_error(std::string("cannot start ") + BOTBUS_CLI_PATH);
    }

    ~CliProcess() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            waitpid(m_pid, nullptr, 0);
        }
        if (m_pipe >= 0) close(m_pipe);
    }

    // The next line the process printed (piped stdout only), or nullopt if
    // none was complete within the timeout or stdout closed first.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        for (;;) {
            if (const auto end = m_piped.find('\n', m_consumed); end != std::string::npos) {
                auto line = m_piped.substr(m_consumed, end - m_consumed);
                m_consumed = end + 1;
                return line;
            }
            if (!read_pipe(deadline)) return std::nullopt;
        }
    }
    CliProcess(const CliProcess&) = delete;
    CliProcess& operator=(const CliProcess&) = delete;

    // Waits for the exit (killing the process at the deadline) and collects
    // what it printed.
    CliResult wait(std::chrono::milliseconds deadline = 20s) {
        CliResult result;
        if (m_pipe >= 0) {
            // Drain stdout until it closes (the process exited) so a full
            // pipe cannot block it; the deadline covers both waits.
            const auto until = Clock::now() + deadline;
            while (read_pipe(until)) {
            }
            deadline = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
            if (deadline.count() < 0) deadline = 0ms;
        }
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
        result.out = m_pipe >= 0 ? m_piped : read_file(m_out);
        result.err = read_file(m_err);
        return result;
    }

private:
    // Appends what the pipe holds to m_piped; false at EOF or the deadline.
    bool read_pipe(Clock::time_point deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        pollfd pfd{m_pipe, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left.count())) != 1) return false;
        char buffer[4096];
        const auto n = ::read(m_pipe, buffer, sizeof buffer);
        if (n <= 0) return false;
        m_piped.append(buffer, static_cast<std::size_t>(n));
        return true;
    }

    std::filesystem::path m_out;
    std::filesystem::path m_err;
    pid_t m_pid = -1;
    int m_pipe = -1;              // read end of the piped stdout
    std::string m_piped;          // everything read from it
    std::size_t m_consumed = 0;   // how much of m_piped read_line returned
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
                                          const std::vector<std::string>& env = {}, bool pipe_stdout = false) {
        return std::make_unique<CliProcess>(m_dir.path(), m_runs++, args, stdin_text, env, pipe_stdout);
    }
    // Starts the CLI with its stdout on a pipe, for CliProcess::read_line.
    std::unique_ptr<CliProcess> start_piped(const std::vector<std::string>& args) {
        std::vector<std::string> all{"--command-endpoint", m_daemon.command_endpoint(), "--feed-endpoint",
                                     m_daemon.feed_endpoint()};
        all.insert(all.end(), args.begin(), args.end());
        return start_raw(all, {}, {}, true);
    }

    // A client of this test's daemon, as bot `bot`.
    std::unique_ptr<client::Client> bot(const std::string& name) {
        auto c = std::make_unique<client::Client>(
            m_context, client::ClientOptions{m_daemon.command_endpoint(), m_daemon.feed_endpoint(), 5000ms});
        c->hello(name);
        return c;
    }

    // Stores a definition through `c`; returns its workflow id.
    static std::string put_workflow(client::Client& c, const std::string& definition) {
        const auto bytes = Json::to_msgpack(Json::parse(definition));
        bus::WorkflowPutRequest request;
        request.definition = bus::PackedValue{std::string(bytes.begin(), bytes.end())};
        return c.call_ok(request).find("workflow_id")->as<std::string>();
    }

    static void start_run(client::Client& c, const std::string& workflow_id, const std::string& run_id) {
        bus::RunStartRequest request;
        request.workflow_id = workflow_id;
        request.run_id = run_id;
        c.call_ok(request);
    }

    // Publishes through the CLI and returns the seq it printed (--json).
    std::uint64_t publish(const std::string& channel, const std::string& body) {
        const auto r = cli({"--json", "publish", channel, body});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return Json::parse(r.out).at("seq").get<std::uint64_t>();
    }

    testing::TempDir m_dir;
    testing::DaemonProcess m_daemon;
    zmq::context_t m_context;
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
        {"workflow"},
        {"workflow", "frobnicate"},
        {"workflow", "put"},
        {"workflows", "extra"},
        {"runs", "--limit", "many"},
        {"run"},
        {"watch"},
        {"watch", "r1", "--for", "-5"},
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
                                "subscriptions", "subscribers CHANNEL", "ack SEQ", "stats", "ping",
                                "workflow put FILE", "workflow show ID", "workflow delete ID", "workflows", "runs",
                                "run RUN_ID", "watch RUN_ID"}) {
        EXPECT_NE(r.out.find(command), std::string::npos) << command;
    }
    const auto tail_help = cli_raw({"tail", "--help"});
    EXPECT_EQ(tail_help.exit_code, 0);
    EXPECT_NE(tail_help.out.find("--count"), std::string::npos) << tail_help.out;
    const auto workflow_help = cli_raw({"workflow", "--help"});
    EXPECT_EQ(workflow_help.exit_code, 0);
    EXPECT_NE(workflow_help.out.find("--replace"), std::string::npos) << workflow_help.out;
    EXPECT_NE(workflow_help.out.find("--archive"), std::string::npos) << workflow_help.out;
}

// ---- workflows

constexpr const char* k_deploy = R"({"name": "deploy", "id": "deploy",
    "steps": [{"id": "build", "name": "Build it"}, {"id": "ship", "depends_on": ["build"]}]})";

// A line split at runs of spaces.
std::vector<std::string> words(const std::string& line) {
    std::vector<std::string> out;
    std::istringstream in(line);
    for (std::string word; in >> word;) out.push_back(word);
    return out;
}

// The line of `lines` that contains `text`, or "" (then the test fails).
std::string line_with(const std::vector<std::string>& lines, const std::string& text) {
    for (const auto& line : lines) {
        if (line.find(text) != std::string::npos) return line;
    }
    ADD_FAILURE() << "no line contains '" << text << "'";
    return "";
}

TEST_F(Cli, WorkflowPutThenWorkflowsListsIt) {
    const auto file = m_dir.path() / "deploy.json";
    std::ofstream(file) << k_deploy;
    const auto put = cli({"workflow", "put", file.string()});
    ASSERT_EQ(put.exit_code, 0) << put.err;
    EXPECT_EQ(put.out, "workflow deploy created\n");

    const auto listed = cli({"workflows"});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    const auto lines = lines_of(listed.out);
    ASSERT_EQ(lines.size(), 2U) << listed.out;
    EXPECT_EQ(lines[0].rfind("NAME", 0), 0U) << lines[0];
    const auto row = words(lines[1]);
    ASSERT_EQ(row.size(), 5U) << lines[1];
    EXPECT_EQ(std::vector<std::string>(row.begin(), row.begin() + 4),
              (std::vector<std::string>{"deploy", "deploy", "global", "2"}));

    const auto json = json_lines(cli({"--json", "workflows"}).out);
    ASSERT_EQ(json.size(), 1U);
    EXPECT_EQ(json[0].at("id"), "deploy");
    EXPECT_EQ(json[0].at("owner_type"), "global");
    EXPECT_EQ(json[0].at("definition").at("steps").size(), 2U);

    const auto shown = cli({"workflow", "show", "deploy"});
    ASSERT_EQ(shown.exit_code, 0) << shown.err;
    EXPECT_EQ(shown.out.rfind("id:", 0), 0U) << shown.out;
    EXPECT_NE(shown.out.find("definition:\n"), std::string::npos) << shown.out;
    EXPECT_NE(shown.out.find("\"depends_on\""), std::string::npos) << shown.out;
    const auto shown_json = Json::parse(cli({"--json", "workflow", "show", "deploy"}).out);
    EXPECT_EQ(shown_json.at("definition").at("steps").at(0).at("name"), "Build it");
    EXPECT_EQ(shown_json.at("archived"), false);

    EXPECT_EQ(cli({"workflow", "show", "nothing"}).exit_code, 1);
}

TEST_F(Cli, PuttingTheSameWorkflowTwiceIsUnchanged) {
    const auto first = cli({"workflow", "put", "-"}, k_deploy);
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_EQ(first.out, "workflow deploy created\n");
    const auto again = cli({"workflow", "put", "-"}, k_deploy);
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(again.out, "workflow deploy unchanged\n");
    const auto again_json = Json::parse(cli({"--json", "workflow", "put", "-"}, k_deploy).out);
    EXPECT_EQ(again_json.at("workflow_id"), "deploy");
    EXPECT_EQ(again_json.at("created"), false);
    EXPECT_EQ(again_json.at("changed"), false);

    const std::string changed = R"({"name": "deploy", "id": "deploy", "steps": [{"id": "build"}]})";
    const auto conflict = cli({"workflow", "put", "-"}, changed);
    EXPECT_EQ(conflict.exit_code, 1);
    EXPECT_NE(conflict.err.find("conflict"), std::string::npos) << conflict.err;
    const auto replaced = cli({"workflow", "put", "-", "--replace"}, changed);
    ASSERT_EQ(replaced.exit_code, 0) << replaced.err;
    EXPECT_EQ(replaced.out, "workflow deploy updated\n");

    // The same name owned by a bot is another workflow.
    const auto owned = cli({"workflow", "put", "-", "--owner-bot", "alice"}, R"({"name": "deploy", "steps": [{"id": "x"}]})");
    ASSERT_EQ(owned.exit_code, 0) << owned.err;
    EXPECT_NE(owned.out.find(" created"), std::string::npos) << owned.out;
    const auto alices = json_lines(cli({"--json", "workflows", "--owner-bot", "alice"}).out);
    ASSERT_EQ(alices.size(), 1U);
    EXPECT_EQ(alices[0].at("owner_bot"), "alice");

    const auto bad = cli({"workflow", "put", "-"}, "{not json");
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("not valid JSON"), std::string::npos) << bad.err;
}

TEST_F(Cli, RunsAndRunShowARunWithItsSteps) {
    auto exec = bot("exec");
    const auto workflow_id = put_workflow(*exec, k_deploy);
    start_run(*exec, workflow_id, "r1");
    exec->call_ok(bus::StepStartRequest{"r1", "build", std::nullopt, std::nullopt, std::nullopt});
    exec->call_ok(bus::StepCompleteRequest{"r1", "build", bus::pack_as_value(std::map<std::string, std::string>{
                                                              {"artifact", "a.tar"}})});
    exec->call_ok(bus::StepStartRequest{"r1", "ship", std::nullopt, std::nullopt, std::nullopt});
    exec->call_ok(bus::StepFailRequest{"r1", "ship", "disk full", true});
    exec->call_ok(bus::StepStartRequest{"r1", "ship", std::nullopt, std::nullopt, std::nullopt});

    const auto runs = cli({"runs"});
    ASSERT_EQ(runs.exit_code, 0) << runs.err;
    const auto run_lines = lines_of(runs.out);
    ASSERT_EQ(run_lines.size(), 2U) << runs.out;
    EXPECT_EQ(run_lines[0].rfind("RUN", 0), 0U) << run_lines[0];
    const auto run_row = words(run_lines[1]);
    ASSERT_EQ(run_row.size(), 6U) << run_lines[1];
    EXPECT_EQ(run_row[0], "r1");
    EXPECT_EQ(run_row[1], "deploy");
    EXPECT_EQ(run_row[2], "running");
    EXPECT_EQ(run_row[4], "-") << "not completed";
    EXPECT_EQ(run_row[5], "exec");
    EXPECT_EQ(lines_of(cli({"runs", "--status", "completed"}).out).size(), 1U) << "only the header";
    const auto runs_json = json_lines(cli({"--json", "runs", "--workflow", workflow_id, "--limit", "5"}).out);
    ASSERT_EQ(runs_json.size(), 1U);
    EXPECT_EQ(runs_json[0].at("id"), "r1");
    EXPECT_EQ(runs_json[0].at("lease_owner"), "exec");

    const auto shown = cli({"run", "r1"});
    ASSERT_EQ(shown.exit_code, 0) << shown.err;
    const auto lines = lines_of(shown.out);
    EXPECT_NE(line_with(lines, "status:").find("running"), std::string::npos);
    EXPECT_NE(line_with(lines, "workflow:").find("deploy (deploy)"), std::string::npos);
    EXPECT_NE(line_with(lines, "lease owner:").find("exec"), std::string::npos);
    EXPECT_NE(line_with(lines, "cancel requested:").find("no"), std::string::npos);
    EXPECT_NE(line_with(lines, "context:").find("{}"), std::string::npos);
    // The timeline, in start order.
    const auto header = std::find_if(lines.begin(), lines.end(),
                                     [](const std::string& l) { return l.find("STARTED") != std::string::npos; });
    ASSERT_NE(header, lines.end()) << shown.out;
    ASSERT_EQ(lines.end() - header, 4) << shown.out;
    // words: started, step, attempt, status, duration, detail...
    const auto build = words(header[1]);
    const auto ship1 = words(header[2]);
    const auto ship2 = words(header[3]);
    ASSERT_GE(build.size(), 5U);
    ASSERT_GE(ship1.size(), 5U);
    EXPECT_EQ(std::vector<std::string>(build.begin() + 1, build.begin() + 4),
              (std::vector<std::string>{"build", "#1", "completed"}));
    EXPECT_NE(header[1].find(R"(output: {"artifact":"a.tar"})"), std::string::npos) << header[1];
    EXPECT_EQ(std::vector<std::string>(ship1.begin() + 1, ship1.begin() + 4),
              (std::vector<std::string>{"ship", "#1", "failed"}));
    EXPECT_NE(header[2].find("error: disk full (will retry)"), std::string::npos) << header[2];
    EXPECT_EQ(ship2, (std::vector<std::string>{ship2.at(0), "ship", "#2", "running", "-"}));

    const auto json = json_lines(cli({"--json", "run", "r1"}).out);
    ASSERT_EQ(json.size(), 1U);
    EXPECT_EQ(json[0].at("run").at("status"), "running");
    ASSERT_EQ(json[0].at("steps").size(), 3U);
    EXPECT_EQ(json[0].at("steps").at(0).at("output").at("artifact"), "a.tar");
    EXPECT_EQ(json[0].at("steps").at(1).at("error"), "disk full");
    EXPECT_EQ(json[0].at("steps").at(2).at("attempt"), 2);

    const auto missing = cli({"run", "nope"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.err.find("not_found"), std::string::npos) << missing.err;
}

TEST_F(Cli, WorkflowDeleteRefusesAWorkflowWithRunsUnlessArchiving) {
    auto exec = bot("exec");
    const auto workflow_id = put_workflow(*exec, k_deploy);
    start_run(*exec, workflow_id, "r1");

    const auto refused = cli({"workflow", "delete", workflow_id});
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.err.find("has_runs"), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("--archive"), std::string::npos) << refused.err;

    const auto archived = cli({"workflow", "delete", workflow_id, "--archive"});
    ASSERT_EQ(archived.exit_code, 0) << archived.err;
    EXPECT_EQ(archived.out, "workflow deploy archived\n");
    EXPECT_EQ(lines_of(cli({"workflows"}).out).size(), 1U) << "archived workflows are hidden";
    const auto all = lines_of(cli({"workflows", "--all"}).out);
    ASSERT_EQ(all.size(), 2U);
    EXPECT_NE(all[1].find("yes"), std::string::npos) << all[1];
    EXPECT_EQ(cli({"run", "r1"}).exit_code, 0) << "its runs stay readable";

    const auto other = put_workflow(*exec, R"({"name": "tmp", "steps": [{"id": "a"}]})");
    const auto deleted = Json::parse(cli({"--json", "workflow", "delete", other}).out);
    EXPECT_EQ(deleted.at("deleted"), true);
}

TEST_F(Cli, WatchExitsZeroWhenTheRunCompletes) {
    auto exec = bot("exec");
    const auto workflow_id = put_workflow(*exec, k_deploy);
    start_run(*exec, workflow_id, "r1");

    auto watch = start_piped({"watch", "r1"});
    // The first line comes after the subscription is confirmed: from now on
    // watch sees every event.
    const auto first = watch->read_line(20s);
    ASSERT_TRUE(first.has_value()) << watch->wait(0ms).err;
    EXPECT_EQ(first->rfind("run:", 0), 0U) << *first;

    exec->call_ok(bus::StepStartRequest{"r1", "build", std::nullopt, std::nullopt, std::nullopt});
    exec->call_ok(bus::StepCompleteRequest{"r1", "build", bus::pack_as_value(std::map<std::string, int>{{"n", 7}})});
    exec->call_ok(bus::StepSkipRequest{"r1", "ship", std::string("nothing to ship")});
    exec->call_ok(bus::RunCompleteRequest{"r1", std::nullopt});

    const auto r = watch->wait(20s);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    const auto lines = lines_of(r.out);
    ASSERT_GE(lines.size(), 4U) << r.out;
    const auto tail = std::vector<std::string>(lines.end() - 4, lines.end());
    EXPECT_NE(tail[0].find("  step.started build #1 by exec"), std::string::npos) << r.out;
    EXPECT_NE(tail[1].find(R"(step.completed build #1 by exec: output {"n":7})"), std::string::npos) << r.out;
    EXPECT_NE(tail[2].find("step.skipped ship #1 by exec: reason nothing to ship"), std::string::npos) << r.out;
    EXPECT_NE(tail[3].find("run.completed by exec"), std::string::npos) << r.out;
}

TEST_F(Cli, WatchJsonPrintsTheRunThenItsEvents) {
    auto exec = bot("exec");
    const auto workflow_id = put_workflow(*exec, k_deploy);
    start_run(*exec, workflow_id, "r1");

    auto watch = start_piped({"--json", "watch", "r1"});
    const auto first = watch->read_line(20s);
    ASSERT_TRUE(first.has_value()) << watch->wait(0ms).err;
    const auto snapshot = Json::parse(*first);
    EXPECT_EQ(snapshot.at("run").at("status"), "running");
    EXPECT_TRUE(snapshot.at("steps").empty());

    exec->call_ok(bus::StepStartRequest{"r1", "build", std::nullopt, std::nullopt, std::nullopt});
    exec->call_ok(bus::StepFailRequest{"r1", "build", "compiler crashed", false});
    exec->call_ok(bus::RunFailRequest{"r1", "build failed"});

    const auto r = watch->wait(20s);
    ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
    const auto events = json_lines(r.out);
    ASSERT_EQ(events.size(), 4U) << r.out;
    EXPECT_EQ(events[1].at("event"), "step.started");
    EXPECT_EQ(events[1].at("run_id"), "r1");
    EXPECT_EQ(events[1].at("workflow_id"), workflow_id);
    EXPECT_EQ(events[1].at("by"), "exec");
    EXPECT_EQ(events[1].at("data").at("step_id"), "build");
    EXPECT_EQ(events[2].at("event"), "step.failed");
    EXPECT_EQ(events[2].at("data").at("error"), "compiler crashed");
    EXPECT_EQ(events[2].at("stream_seq").get<std::uint64_t>(), events[1].at("stream_seq").get<std::uint64_t>() + 1);
    EXPECT_EQ(events[3].at("event"), "run.failed");
    EXPECT_EQ(events[3].at("data").at("error"), "build failed");
}

TEST_F(Cli, WatchOfAFinishedRunPrintsItAndExits) {
    auto exec = bot("exec");
    start_run(*exec, put_workflow(*exec, k_deploy), "r1");
    exec->call_ok(bus::RunCompleteRequest{"r1", bus::pack_as_value(std::map<std::string, int>{{"done", 1}})});

    const auto r = cli({"watch", "r1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(line_with(lines_of(r.out), "status:").find("completed"), std::string::npos) << r.out;
    EXPECT_NE(line_with(lines_of(r.out), "context:").find(R"({"done":1})"), std::string::npos) << r.out;

    EXPECT_EQ(cli({"watch", "no-such-run"}).exit_code, 1);
}

TEST_F(Cli, WatchForExitsOnceIdle) {
    auto exec = bot("exec");
    start_run(*exec, put_workflow(*exec, k_deploy), "r1");
    const auto r = cli({"--json", "watch", "r1", "--for", "100"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto lines = json_lines(r.out);
    ASSERT_EQ(lines.size(), 1U) << r.out;
    EXPECT_EQ(lines[0].at("run").at("id"), "r1");
}

// ---- the watch's gap detection, without a daemon

TEST(RunEventGate, DropsWhatTheSnapshotHasAndShowsWhatFollows) {
    cli::RunEventGate gate(10);
    EXPECT_EQ(gate.offer(9, 4), cli::RunEventGate::Verdict::drop);
    EXPECT_EQ(gate.offer(12, 5), cli::RunEventGate::Verdict::show);
    EXPECT_EQ(gate.offer(12, 5), cli::RunEventGate::Verdict::drop) << "a repeat";
    EXPECT_EQ(gate.offer(15, 6), cli::RunEventGate::Verdict::show);
    EXPECT_EQ(gate.reflected_seq(), 15U);
}

TEST(RunEventGate, StreamSeqJumpAsksForARefetch) {
    cli::RunEventGate gate(10);
    EXPECT_EQ(gate.offer(11, 3), cli::RunEventGate::Verdict::show);
    EXPECT_EQ(gate.offer(20, 6), cli::RunEventGate::Verdict::gap);
    gate.resynced(22);  // the re-fetch already reflects the next event too
    EXPECT_EQ(gate.offer(22, 7), cli::RunEventGate::Verdict::drop);
    EXPECT_EQ(gate.offer(25, 8), cli::RunEventGate::Verdict::show);
}

TEST(RunEventGate, AJumpToAnEventTheSnapshotHasIsNoGap) {
    cli::RunEventGate gate(30);
    EXPECT_EQ(gate.offer(21, 2), cli::RunEventGate::Verdict::drop);
    EXPECT_EQ(gate.offer(29, 5), cli::RunEventGate::Verdict::drop) << "3 and 4 are older still: in the snapshot";
    EXPECT_EQ(gate.offer(31, 6), cli::RunEventGate::Verdict::show);
}

}  // namespace
}  // namespace botbus
