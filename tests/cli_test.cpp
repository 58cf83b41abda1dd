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
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <fstream>
#include <map>
#include <regex>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/client.hpp"
#include "daemon/cli_run_gate.hpp"
#include "daemon/cli_output.hpp"
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
    Cli() : Cli(std::vector<std::string>{}) {}
    // A daemon started with these extra options (--max-deliveries 2 ...).
    explicit Cli(std::vector<std::string> daemon_args) : m_daemon(m_dir.path() / "data", std::move(daemon_args)) {}

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

TEST_F(Cli, SeveralNodesAreTriedInTurnAndAPublishMovedToTheNextIsStoredOnce) {
    const DeadPort dead_command;
    const DeadPort dead_feed;
    const std::vector<std::string> nodes{
        "--command-endpoint", dead_command.endpoint() + "," + m_daemon.command_endpoint(),
        "--feed-endpoint", dead_feed.endpoint() + "," + m_daemon.feed_endpoint(), "--timeout", "300"};
    auto args = nodes;
    args.insert(args.end(), {"--as", "alice", "publish", "news", "via the second node"});
    const auto published = cli_raw(args);
    EXPECT_EQ(published.exit_code, 0) << published.err;
    args = nodes;
    args.push_back("ping");
    const auto ping = cli_raw(args);
    EXPECT_EQ(ping.out.rfind("pong from " + m_daemon.command_endpoint(), 0), 0U) << ping.out << ping.err;
    const auto history = lines_of(cli({"history", "news"}).out);
    ASSERT_EQ(history.size(), 1U);
    EXPECT_NE(history[0].find("via the second node"), std::string::npos) << history[0];

    const auto mismatched = cli_raw({"--command-endpoint", dead_command.endpoint() + "," + m_daemon.command_endpoint(),
                                     "--feed-endpoint", m_daemon.feed_endpoint(), "ping"});
    EXPECT_EQ(mismatched.exit_code, 2);
    EXPECT_NE(mismatched.err.find("--command-endpoint names 2 node(s) and --feed-endpoint 1"), std::string::npos)
        << mismatched.err;
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

TEST_F(Cli, StatsShowsDurationsAndSizesInUnitsAndJsonKeepsTheRawFigures) {
    publish("news", "counted");
    const auto human = cli({"stats"});
    ASSERT_EQ(human.exit_code, 0) << human.err;
    EXPECT_NE(human.out.find("\nuptime: "), std::string::npos) << human.out;
    EXPECT_EQ(human.out.find("uptime_us"), std::string::npos) << human.out;
    EXPECT_TRUE(std::regex_search(human.out, std::regex("\ndb_bytes: [0-9.]+ (KiB|MiB)\n"))) << human.out;
    EXPECT_TRUE(std::regex_search(human.out, std::regex("\nuptime: [0-9.]+ (us|ms|s)\n"))) << human.out;
    const auto raw = Json::parse(cli({"--json", "stats"}).out);
    EXPECT_TRUE(raw.at("uptime_us").is_number_unsigned());
    EXPECT_GT(raw.at("db_bytes").get<std::uint64_t>(), 1024U);
}

TEST(CliUnits, DurationsAndSizesReadAsPeopleWriteThem) {
    EXPECT_EQ(botbus::cli::human_duration(12), "12 us");
    EXPECT_EQ(botbus::cli::human_duration(850'000), "850 ms");
    EXPECT_EQ(botbus::cli::human_duration(2'500'000), "2.500 s");
    EXPECT_EQ(botbus::cli::human_duration(3'723'000'000), "1 h 02 min 03 s");
    EXPECT_EQ(botbus::cli::human_duration(90'061'000'000), "1 d 01 h 01 min");
    EXPECT_EQ(botbus::cli::human_size(930), "930 B");
    EXPECT_EQ(botbus::cli::human_size(1536), "1.5 KiB");
    EXPECT_EQ(botbus::cli::human_size(5ULL << 30), "5.0 GiB");
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

// ---- direct-message delivery: mailbox, ack --only, dead letters

// The field `key` of a msgpack map, or nullptr.
const msgpack::object* map_field(const msgpack::object& map, std::string_view key) {
    if (map.type != msgpack::type::MAP) return nullptr;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        const auto& kv = map.via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR && std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
            return &kv.val;
        }
    }
    return nullptr;
}

std::string str(std::uint64_t n) { return std::to_string(n); }

class CliMailbox : public Cli {
protected:
    CliMailbox() = default;
    explicit CliMailbox(std::vector<std::string> daemon_args) : Cli(std::move(daemon_args)) {}

    // Sends a direct message through the CLI and returns its seq.
    std::uint64_t send(const std::string& from, const std::string& to, const std::string& body) {
        const auto r = cli({"--as", from, "--json", "send", to, body});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return Json::parse(r.out).at("seq").get<std::uint64_t>();
    }

    // `botbus --json mailbox --bot BOT`, parsed.
    Json mailbox_json(const std::string& bot) {
        const auto r = cli({"--json", "mailbox", "--bot", bot});
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return Json::parse(r.out);
    }

    struct DeadLetter {
        std::uint64_t seq = 0;             // the message's
        std::vector<bus::Message> pushes;  // what the recipient got of it
    };
    // alice sends `body` to `bot`; `recipient`, connected as `bot`, reads
    // its pushes without acknowledging them until dlq.list holds the message
    // (deadline 20 s; between polls it waits for pushes, not blindly).
    DeadLetter dead_letter(client::Client& recipient, const std::string& bot, const std::string& body) {
        DeadLetter dead;
        dead.seq = send("alice", bot, body);
        client::Client reader(m_context, {m_daemon.command_endpoint(), m_daemon.feed_endpoint(), 5000ms});
        const auto deadline = Clock::now() + 20s;
        for (;;) {
            bus::DlqListRequest request;
            request.bot = bot;
            const auto reply = reader.call_ok(request);
            const auto* list = reply.find("dead_letters");
            for (std::uint32_t i = 0; list && list->type == msgpack::type::ARRAY && i < list->via.array.size; ++i) {
                const auto* message = map_field(list->via.array.ptr[i], "message");
                const auto* seq = message ? map_field(*message, "seq") : nullptr;
                if (seq && seq->type == msgpack::type::POSITIVE_INTEGER && seq->via.u64 == dead.seq) {
                    // The last push came an ack timeout before: it is here.
                    while (auto push = recipient.next_push(0ms)) dead.pushes.push_back(std::move(*push));
                    return dead;
                }
            }
            if (Clock::now() >= deadline) {
                ADD_FAILURE() << "message " << dead.seq << " to " << bot << " was not dead-lettered within 20 s\n"
                              << m_daemon.stderr_text();
                return dead;
            }
            if (auto push = recipient.next_push(20ms)) dead.pushes.push_back(std::move(*push));
        }
    }

    // The next push to `recipient` (deadline 10 s), or a failure.
    static std::optional<bus::Message> next_push(client::Client& recipient) {
        auto push = recipient.next_push(10s);
        if (!push) ADD_FAILURE() << "no push within 10 s";
        return push;
    }
};

// Pushes not acknowledged are delivered again after 100 ms and given up
// after the second delivery.
class CliDeadLetters : public CliMailbox {
protected:
    CliDeadLetters() : CliMailbox({"--ack-timeout-ms", "100", "--max-deliveries", "2"}) {}
};

// Given up after the second delivery; the ack timeout (30 s) does not pass
// within a test, so only new push connections deliver again.
class CliTwoDeliveries : public CliMailbox {
protected:
    CliTwoDeliveries() : CliMailbox({"--max-deliveries", "2"}) {}
};

TEST_F(CliMailbox, MailboxShowsTheFloorTheUnsettledAndWhatIsInFlight) {
    const auto s1 = send("alice", "bob", "one");
    const auto s2 = send("alice", "bob", "two");
    const auto s3 = send("alice", "bob", "three");

    const auto text = cli({"--as", "bob", "mailbox"});
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_EQ(text.out, "bob: acknowledged up to 0, 3 unsettled\n");
    EXPECT_TRUE(text.err.empty()) << text.err;
    EXPECT_EQ(cli({"mailbox", "--bot", "bob"}).out, "bob: acknowledged up to 0, 3 unsettled\n");
    const auto expected = Json::parse(
        R"({"bot": "bob", "acked": 0, "unsettled": 3, "in_flight": [], "in_flight_count": 0, "replicas": []})");
    EXPECT_EQ(Json::parse(cli({"--json", "--as", "bob", "mailbox"}).out), expected);
    EXPECT_EQ(mailbox_json("bob"), expected);
    EXPECT_EQ(cli({"--as", "carol", "mailbox"}).out, "carol: acknowledged up to 0, 0 unsettled\n");
    EXPECT_EQ(cli({"mailbox"}).out, "botbus-cli: acknowledged up to 0, 0 unsettled\n") << "default: --as";

    // bob connects: the three are pushed and wait for their acks; the first
    // one acknowledged moves the floor.
    auto bob = bot("bob");
    for (const auto seq : {s1, s2, s3}) {
        const auto push = next_push(*bob);
        ASSERT_TRUE(push.has_value());
        EXPECT_EQ(push->seq, seq);
        EXPECT_EQ(push->deliveries, 1U);
    }
    EXPECT_EQ(bob->ack(s1), s1);
    const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();

    const auto shown = cli({"mailbox", "--bot", "bob"});
    ASSERT_EQ(shown.exit_code, 0) << shown.err;
    const auto lines = lines_of(shown.out);
    ASSERT_EQ(lines.size(), 4U) << shown.out;
    const auto json = mailbox_json("bob");
    ASSERT_EQ(json.at("replicas").size(), 1U) << json;
    const auto replica = json.at("replicas")[0].at("connection").get<std::string>();
    EXPECT_EQ(json.at("replicas")[0].at("in_flight"), 2);
    EXPECT_EQ(json.at("replicas")[0].at("credit"), 1000);
    EXPECT_EQ(lines[0], "bob: acknowledged up to " + str(s1) + ", 2 unsettled");
    EXPECT_EQ(lines[1], "  replica " + replica + "  holds 2 of credit 1000");
    EXPECT_EQ(lines[2].rfind("  seq " + str(s2) + "  delivered 1x  ack due 20", 0), 0U) << lines[2];
    EXPECT_EQ(lines[3].rfind("  seq " + str(s3) + "  delivered 1x  ack due 20", 0), 0U) << lines[3];
    EXPECT_TRUE(lines[2].ends_with("Z  held by " + replica)) << lines[2];

    EXPECT_EQ(json.at("bot"), "bob");
    EXPECT_EQ(json.at("acked"), s1);
    EXPECT_EQ(json.at("unsettled"), 2);
    const auto& in_flight = json.at("in_flight");
    ASSERT_EQ(in_flight.size(), 2U) << json;
    EXPECT_EQ(in_flight[0].at("seq"), s2);
    EXPECT_EQ(in_flight[0].at("deliveries"), 1);
    EXPECT_EQ(in_flight[0].at("connection"), replica);
    EXPECT_EQ(in_flight[1].at("seq"), s3);
    // Pushed before now, due 30 s (the default ack timeout) after that.
    const auto due = in_flight[0].at("ack_deadline").get<std::int64_t>();
    EXPECT_LE(due, now_us + 30'000'000) << json;
    EXPECT_GT(due, now_us + 20'000'000) << json;
}

TEST_F(CliMailbox, AckOnlySettlesJustTheGivenMessages) {
    const auto s1 = send("alice", "bob", "one");
    const auto s2 = send("alice", "bob", "two");
    const auto s3 = send("alice", "bob", "three");
    const auto s4 = send("alice", "bob", "four");
    const auto news = publish("news", "not a direct message");
    const auto to_carol = send("alice", "carol", "not bob's");

    // s1 is still unacknowledged: the floor stays where it was.
    const auto only = cli({"--as", "bob", "ack", "--only", str(s2), str(s3)});
    ASSERT_EQ(only.exit_code, 0) << only.err;
    EXPECT_EQ(only.out, "acked up to 0 for bob\n");
    auto box = mailbox_json("bob");
    EXPECT_EQ(box.at("acked"), 0);
    EXPECT_EQ(box.at("unsettled"), 2) << "s1 and s4";

    // Acknowledging s1 moves the floor over s1, s2 and s3, not s4.
    const auto json = cli({"--json", "--as", "bob", "ack", "--only", str(s1)});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    const auto acked = Json::parse(json.out);
    EXPECT_EQ(acked.at("acked"), s3) << json.out;
    EXPECT_GT(acked.at("seq").get<std::uint64_t>(), to_carol) << "the seq of the mailbox.acked event";
    box = mailbox_json("bob");
    EXPECT_EQ(box.at("acked"), s3);
    EXPECT_EQ(box.at("unsettled"), 1);

    // Settled already: nothing is logged.
    EXPECT_EQ(Json::parse(cli({"--json", "--as", "bob", "ack", "--only", str(s2), str(s1)}).out),
              Json({{"acked", s3}}));

    // A seq that is not a message to bob refuses the whole ack: s4 stays
    // unsettled too.
    for (const auto seq : {news, to_carol, to_carol + 1000}) {
        const auto r = cli({"--as", "bob", "ack", "--only", str(s4), str(seq)});
        EXPECT_EQ(r.exit_code, 1) << seq;
        EXPECT_EQ(r.err, "botbus: invalid_field: seqs: " + str(seq) + " is not a message to bob\n");
        EXPECT_TRUE(r.out.empty()) << r.out;
    }
    box = mailbox_json("bob");
    EXPECT_EQ(box.at("acked"), s3);
    EXPECT_EQ(box.at("unsettled"), 1);

    // ack SEQ: everything up to SEQ.
    const auto upto = cli({"--as", "bob", "ack", str(s4)});
    ASSERT_EQ(upto.exit_code, 0) << upto.err;
    EXPECT_EQ(upto.out, "acked up to " + str(s4) + " for bob\n");
    box = mailbox_json("bob");
    EXPECT_EQ(box.at("acked"), s4);
    EXPECT_EQ(box.at("unsettled"), 0);
    EXPECT_EQ(mailbox_json("carol").at("unsettled"), 1) << "carol's message is no business of bob's acks";
}

TEST_F(CliDeadLetters, DlqListsDeadLettersAndReplayBringsACopyBack) {
    auto bob = bot("bob");
    auto carol = bot("carol");
    const auto for_bob = dead_letter(*bob, "bob", "lost for bob");
    const auto for_carol = dead_letter(*carol, "carol", "lost for carol");
    // Delivered, delivered again after the ack timeout, then given up.
    ASSERT_EQ(for_bob.pushes.size(), 2U);
    EXPECT_EQ(for_bob.pushes[0].seq, for_bob.seq);
    EXPECT_EQ(for_bob.pushes[0].deliveries, 1U);
    EXPECT_FALSE(for_bob.pushes[0].redelivered);
    EXPECT_EQ(for_bob.pushes[1].seq, for_bob.seq);
    EXPECT_EQ(for_bob.pushes[1].deliveries, 2U);
    EXPECT_TRUE(for_bob.pushes[1].redelivered);
    const std::string reason = "max_deliveries: delivered 2 times without an acknowledgement";

    // --json: one object per dead letter, oldest first.
    const auto json = cli({"--json", "dlq"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    const auto letters = json_lines(json.out);
    ASSERT_EQ(letters.size(), 2U) << json.out;
    const auto dead_bob = letters[0].at("seq").get<std::uint64_t>();  // the message.dead_lettered event
    const auto dead_carol = letters[1].at("seq").get<std::uint64_t>();
    EXPECT_GT(dead_bob, for_bob.seq);
    EXPECT_GT(dead_carol, std::max(dead_bob, for_carol.seq));
    EXPECT_EQ(letters[0].at("bot"), "bob");
    EXPECT_EQ(letters[0].at("reason"), reason);
    EXPECT_EQ(letters[0].at("deliveries"), 2);
    EXPECT_TRUE(letters[0].at("ts").is_number_integer());
    EXPECT_FALSE(letters[0].contains("replayed_seq"));
    const auto& message = letters[0].at("message");
    EXPECT_EQ(message.at("seq"), for_bob.seq);
    EXPECT_EQ(message.at("from"), "alice");
    EXPECT_EQ(message.at("to"), "bob");
    EXPECT_EQ(message.at("mailbox_seq"), 1);
    EXPECT_EQ(message.at("type"), "text");
    EXPECT_EQ(message.at("body"), "lost for bob");
    EXPECT_EQ(letters[1].at("bot"), "carol");
    EXPECT_EQ(letters[1].at("message").at("seq"), for_carol.seq);
    EXPECT_EQ(letters[1].at("message").at("body"), "lost for carol");

    // Text: the dead letter, then its message.
    const auto text = cli({"dlq"});
    ASSERT_EQ(text.exit_code, 0) << text.err;
    const auto lines = lines_of(text.out);
    ASSERT_EQ(lines.size(), 4U) << text.out;
    EXPECT_EQ(lines[0], "dead letter " + str(dead_bob) + " to bob after 2 deliveries (" + reason + ")");
    EXPECT_EQ(lines[1].rfind("  [seq " + str(for_bob.seq) + " @bob #1 ", 0), 0U) << lines[1];
    EXPECT_TRUE(lines[1].ends_with("] alice (text): lost for bob")) << lines[1];
    EXPECT_EQ(lines[2], "dead letter " + str(dead_carol) + " to carol after 2 deliveries (" + reason + ")");
    EXPECT_TRUE(lines[3].ends_with("] alice (text): lost for carol")) << lines[3];
    EXPECT_TRUE(text.err.empty()) << text.err;

    // --bot, --after, --limit.
    const auto carols = json_lines(cli({"--json", "dlq", "--bot", "carol"}).out);
    ASSERT_EQ(carols.size(), 1U);
    EXPECT_EQ(carols[0], letters[1]);
    const auto bobs = cli({"dlq", "--bot", "bob"});
    EXPECT_EQ(lines_of(bobs.out), std::vector<std::string>(lines.begin(), lines.begin() + 2));
    EXPECT_EQ(cli({"dlq", "--bot", "dave"}).out, "");
    const auto page = cli({"dlq", "--limit", "1"});
    ASSERT_EQ(page.exit_code, 0) << page.err;
    EXPECT_EQ(lines_of(page.out), std::vector<std::string>(lines.begin(), lines.begin() + 2));
    EXPECT_EQ(page.err, "botbus: more dead letters: continue with --after " + str(dead_bob) + "\n");
    const auto after = json_lines(cli({"--json", "dlq", "--after", str(dead_bob)}).out);
    ASSERT_EQ(after.size(), 1U);
    EXPECT_EQ(after[0], letters[1]);
    const auto bad_limit = cli({"dlq", "--limit", "0"});
    EXPECT_EQ(bad_limit.exit_code, 1);
    EXPECT_NE(bad_limit.err.find("botbus: invalid_field: "), std::string::npos) << bad_limit.err;

    // Replay: a copy at the end of bob's mailbox, pushed to bob with replay_of.
    const auto replayed = cli({"--as", "ops", "dlq", "replay", str(for_bob.seq)});
    ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
    const auto copy = next_push(*bob);
    ASSERT_TRUE(copy.has_value());
    bob->ack(std::nullopt, {copy->seq});  // so the copy is not given up in turn
    EXPECT_EQ(copy->replay_of, for_bob.seq);
    EXPECT_GT(copy->seq, dead_carol);
    EXPECT_EQ(copy->stream_seq, 2U);
    EXPECT_EQ(copy->from, "alice");
    EXPECT_EQ(copy->to, "bob");
    EXPECT_EQ(copy->body.bytes, bus::pack_as_value(std::string("lost for bob")).bytes);
    EXPECT_EQ(copy->deliveries, 1U);
    EXPECT_FALSE(copy->redelivered);
    EXPECT_EQ(replayed.out,
              "replayed message " + str(for_bob.seq) + " as seq " + str(copy->seq) + " (mailbox seq 2)\n");

    const auto again = cli({"--as", "ops", "dlq", "replay", str(for_bob.seq)});
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_EQ(again.err, "botbus: conflict: the dead letter for message seq " + str(for_bob.seq) +
                             " was already replayed as seq " + str(copy->seq) + "\n");
    EXPECT_TRUE(again.out.empty()) << again.out;

    const auto bob_after = json_lines(cli({"--json", "dlq", "--bot", "bob"}).out);
    ASSERT_EQ(bob_after.size(), 1U);
    EXPECT_EQ(bob_after[0].at("replayed_seq"), copy->seq);
    EXPECT_EQ(bob_after[0].at("seq"), dead_bob);
    EXPECT_EQ(lines_of(cli({"dlq", "--bot", "bob"}).out).at(0),
              "dead letter " + str(dead_bob) + " to bob after 2 deliveries (" + reason + "), replayed as seq " +
                  str(copy->seq));
    // The dead original and the acknowledged copy are both settled; bob's
    // one connection is its one replica, holding nothing.
    auto bob_mailbox = mailbox_json("bob");
    ASSERT_EQ(bob_mailbox.at("replicas").size(), 1U);
    EXPECT_EQ(bob_mailbox.at("replicas")[0].at("in_flight"), 0);
    bob_mailbox.erase("replicas");
    EXPECT_EQ(bob_mailbox, Json({{"bot", "bob"}, {"acked", copy->seq}, {"unsettled", 0}, {"in_flight", Json::array()},
                                 {"in_flight_count", 0}}));

    // --json replay.
    const auto carol_replay = cli({"--json", "--as", "ops", "dlq", "replay", str(for_carol.seq)});
    ASSERT_EQ(carol_replay.exit_code, 0) << carol_replay.err;
    const auto carol_copy = next_push(*carol);
    ASSERT_TRUE(carol_copy.has_value());
    carol->ack(std::nullopt, {carol_copy->seq});
    EXPECT_EQ(carol_copy->replay_of, for_carol.seq);
    EXPECT_EQ(Json::parse(carol_replay.out), Json({{"seq", carol_copy->seq}, {"mailbox_seq", 2}}));

    const auto missing = cli({"--as", "ops", "dlq", "replay", str(for_bob.seq + 100000)});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_EQ(missing.err, "botbus: not_found: no dead letter for message seq " + str(for_bob.seq + 100000) + "\n");
}

// With --json too, `dlq` says on stderr that a page was cut at --limit, as
// `history` does: a script can tell a full last page from a cut one.
TEST_F(CliDeadLetters, JsonDlqSaysWhenAPageIsCut) {
    auto bob = bot("bob");
    dead_letter(*bob, "bob", "one");
    dead_letter(*bob, "bob", "two");
    const auto text = cli({"dlq", "--limit", "1"});
    const auto dead = json_lines(cli({"--json", "dlq"}).out);
    ASSERT_EQ(dead.size(), 2U);
    const auto first = dead[0].at("seq").get<std::uint64_t>();
    const auto hint = "botbus: more dead letters: continue with --after " + str(first) + "\n";
    EXPECT_EQ(text.err, hint);

    const auto json = cli({"--json", "dlq", "--limit", "1"});
    ASSERT_EQ(json.exit_code, 0) << json.err;
    EXPECT_EQ(json_lines(json.out).size(), 1U);
    EXPECT_EQ(json.err, hint) << "history --json prints its hint: "
                              << cli({"--json", "--as", "bob", "history", "--inbox", "--limit", "1"}).err;
}

// A CLI command that acts as a bot (`--as bob ack`, send, publish, ...) says
// hello with pushes: false. Were its connection a push connection of bob,
// each run would restart bob's delivery, push bob's unsettled messages to the
// short-lived CLI process and count that as a delivery, and after
// --max-deliveries runs they would be dead-lettered although no consumer of
// bob ever received them.
TEST_F(CliTwoDeliveries, ActingAsTheBotFromTheCliDeliversNothing) {
    const auto kept = send("alice", "bob", "for bob's consumer, later");
    const auto other = send("alice", "bob", "acked from the command line");

    ASSERT_EQ(cli({"--as", "bob", "ack", "--only", str(other)}).exit_code, 0);
    EXPECT_EQ(mailbox_json("bob"),
              Json({{"bot", "bob"}, {"acked", 0}, {"unsettled", 1}, {"in_flight", Json::array()}, {"in_flight_count", 0},
                    {"replicas", Json::array()}}))
        << "nothing is connected as bob";

    ASSERT_EQ(cli({"--as", "bob", "ack", "--only", str(other)}).exit_code, 0);
    ASSERT_EQ(cli({"--as", "bob", "ack", "--only", str(other)}).exit_code, 0);
    EXPECT_EQ(cli({"dlq", "--bot", "bob"}).out, "") << "message " << kept << " was never delivered to a consumer";
    EXPECT_EQ(mailbox_json("bob").at("unsettled"), 1);

    // bob's consumer, connecting now, gets it for the first time.
    auto bob = bot("bob");
    const auto push = bob->next_push(2s);
    ASSERT_TRUE(push.has_value()) << "message " << kept << " is gone from bob's mailbox";
    EXPECT_EQ(push->seq, kept);
    EXPECT_EQ(push->deliveries, 1U);
    EXPECT_FALSE(push->redelivered);
}

TEST_F(Cli, HelpListsTheMailboxCommands) {
    const auto r = cli_raw({"--help"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The command column is 43 wide; the summary follows.
    std::map<std::string, std::string> summaries;
    for (const auto& line : lines_of(r.out)) {
        if (line.size() <= 43 || line.rfind("  ", 0) != 0 || line[2] == ' ' || line[2] == '-') continue;
        auto head = line.substr(2, 41);
        head.erase(head.find_last_not_of(' ') + 1);
        summaries[head] = line.substr(43);
    }
    EXPECT_EQ(summaries["ack SEQ | ack --only SEQ..."], "ack direct messages up to SEQ (or just these)") << r.out;
    EXPECT_EQ(summaries["mailbox"], "show a bot's unacknowledged direct messages and deliveries") << r.out;
    EXPECT_EQ(summaries["dlq"], "list dead letters, oldest first") << r.out;
    EXPECT_EQ(summaries["dlq replay SEQ"], "send dead message SEQ back to its mailbox") << r.out;

    const auto dlq = cli_raw({"dlq", "--help"});
    EXPECT_EQ(dlq.exit_code, 0) << dlq.err;
    EXPECT_EQ(dlq.out.rfind("usage: botbus [global options] dlq [--bot B] [--after SEQ] [--limit N]\n", 0), 0U)
        << dlq.out;
    for (const char* option : {"--bot B", "--after SEQ", "--limit N"}) {
        EXPECT_NE(dlq.out.find(option), std::string::npos) << option << "\n" << dlq.out;
    }
    const auto replay = cli_raw({"dlq", "replay", "--help"});
    EXPECT_EQ(replay.exit_code, 0) << replay.err;
    EXPECT_EQ(replay.out.rfind("usage: botbus [global options] dlq replay SEQ\n\nsend dead message SEQ back to its "
                               "mailbox.\n",
                               0),
              0U)
        << replay.out;
    const auto ack = cli_raw({"ack", "--help"});
    EXPECT_EQ(ack.exit_code, 0) << ack.err;
    EXPECT_EQ(ack.out.rfind("usage: botbus [global options] ack SEQ | ack --only SEQ...\n", 0), 0U) << ack.out;
    EXPECT_NE(ack.out.find("--only"), std::string::npos) << ack.out;
    const auto mailbox = cli_raw({"mailbox", "--help"});
    EXPECT_EQ(mailbox.exit_code, 0) << mailbox.err;
    EXPECT_EQ(mailbox.out.rfind("usage: botbus [global options] mailbox [--bot B]\n", 0), 0U) << mailbox.out;
    EXPECT_NE(mailbox.out.find("--bot B"), std::string::npos) << mailbox.out;
}

// `dlq` is both a command and a group: its help names `dlq replay` too, as
// `botbus channel --help` and `botbus workflow --help` list their actions.
TEST_F(Cli, DlqHelpMentionsReplay) {
    const auto channel = cli_raw({"channel", "--help"});
    ASSERT_NE(channel.out.find("channel delete NAME"), std::string::npos) << channel.out;
    const auto dlq = cli_raw({"dlq", "--help"});
    EXPECT_EQ(dlq.exit_code, 0) << dlq.err;
    EXPECT_NE(dlq.out.find("dlq replay SEQ"), std::string::npos) << dlq.out;
}

TEST_F(Cli, MailboxCommandsRejectBadUsage) {
    const std::vector<std::vector<std::string>> cases{
        {"ack"},
        {"ack", "1", "2"},
        {"ack", "-1"},
        {"ack", "--only"},
        {"ack", "--only", "1", "x"},
        {"mailbox", "bob"},
        {"mailbox", "--bot"},
        {"dlq", "extra"},
        {"dlq", "--limit", "many"},
        {"dlq", "--after", "-1"},
        {"dlq", "--no-such-option"},
        {"dlq", "replay"},
        {"dlq", "replay", "x"},
        {"dlq", "replay", "1", "2"},
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

// ---- lag: durable channel subscriptions

// Rows as `botbus lag` prints them: each column padded to its widest cell
// plus two spaces, the last one not padded.
std::string aligned(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> widths;
    for (const auto& row : rows) {
        widths.resize(std::max(widths.size(), row.size()), 0);
        for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
    }
    std::string out;
    for (const auto& row : rows) {
        for (std::size_t c = 0; c < row.size(); ++c) {
            out += row[c];
            if (c + 1 < row.size()) out += std::string(widths[c] - row[c].size() + 2, ' ');
        }
        out += '\n';
    }
    return out;
}

class CliLag : public Cli {
protected:
    CliLag() = default;
    explicit CliLag(std::vector<std::string> daemon_args) : Cli(std::move(daemon_args)) {}

    struct Subscriber {
        std::unique_ptr<client::Client> client;
        std::uint64_t start_after = 0;  // the subscription's first floor
    };
    // `name` subscribes durably to `channel` from now, pushed or pulled; a
    // push subscriber reads its pushes up to the caught_up marker.
    Subscriber subscriber(const std::string& name, const std::string& channel, const std::string& deliver) {
        Subscriber s{bot(name), 0};
        bus::SubscribeRequest r;
        r.channel = channel;
        r.durable = true;
        r.deliver = deliver;
        const auto reply = s.client->call_ok(r);
        const auto* start_after = reply.find("start_after");
        EXPECT_TRUE(start_after && start_after->type == msgpack::type::POSITIVE_INTEGER);
        if (start_after && start_after->type == msgpack::type::POSITIVE_INTEGER) s.start_after = start_after->via.u64;
        if (deliver == "push") {
            const auto deadline = Clock::now() + 10s;
            for (;;) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
                const auto push = s.client->next_push(std::max(left, 0ms));
                if (!push) {
                    ADD_FAILURE() << name << " got no caught_up marker for " << channel << " within 10 s";
                    break;
                }
                if (push->event == "caught_up") break;
            }
        }
        return s;
    }

    // The seqs of the next `count` message pushes to `c` (deadline 10 s).
    // The seqs of the next `count` pushes (caught_up markers skipped). With
    // `distinct`, the first `count` distinct seqs in the order each was first
    // pushed: with a short ack timeout a redelivery of an earlier message may
    // come between two first deliveries, and is skipped, not counted.
    static std::vector<std::uint64_t> pushes(client::Client& c, std::size_t count, bool distinct = false) {
        std::vector<std::uint64_t> seqs;
        const auto deadline = Clock::now() + 10s;
        while (seqs.size() < count) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            const auto push = c.next_push(std::max(left, 0ms));
            if (!push) {
                ADD_FAILURE() << "only " << seqs.size() << " of " << count << " pushes within 10 s";
                break;
            }
            if (push->event == "caught_up") continue;
            if (distinct && std::find(seqs.begin(), seqs.end(), push->seq) != seqs.end()) continue;
            seqs.push_back(push->seq);
        }
        return seqs;
    }

    // `botbus lag ARGS...`: exit 0, nothing on stderr; what it printed.
    std::string lag(std::vector<std::string> args = {}) {
        args.insert(args.begin(), "lag");
        const auto r = cli(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_TRUE(r.err.empty()) << r.err;
        return r.out;
    }
    // `botbus --json lag ARGS...`, one object per line.
    std::vector<Json> lag_json(std::vector<std::string> args = {}) {
        args.insert(args.begin(), {"--json", "lag"});
        const auto r = cli(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_TRUE(r.err.empty()) << r.err;
        return json_lines(r.out);
    }
};

// Deliveries are not acknowledged within a test's time: stuck after 200 ms.
class CliLagStuck : public CliLag {
protected:
    CliLagStuck() : CliLag({"--ack-timeout-ms", "100", "--max-deliveries", "1000"}) {}
};

// 2026-11-27T10:00:00.123Z for microseconds since the epoch.
std::string utc(std::int64_t ts_us) {
    const auto seconds = static_cast<std::time_t>(ts_us / 1'000'000);
    std::tm parts{};
    gmtime_r(&seconds, &parts);
    char text[40];
    const auto length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &parts);
    char millis[8];
    std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(ts_us % 1'000'000 / 1000));
    return std::string(text, length) + millis;
}

std::vector<std::string> lag_row(const std::string& channel, const std::string& bot, std::uint64_t lag,
                                 std::uint64_t in_flight, std::uint64_t acked, const std::string& mode) {
    return {channel, bot, "lag " + str(lag), "in flight " + str(in_flight), "acked up to " + str(acked), mode,
            "1 replica"};
}

TEST_F(CliLag, LagShowsEveryDurableSubscriptionByChannelThenBot) {
    auto bob = subscriber("bob", "jobs", "push");
    auto carol = subscriber("carol", "jobs", "pull");
    auto dave = subscriber("dave", "alerts", "push");
    const auto s1 = publish("jobs", "one");
    const auto s2 = publish("jobs", "two");
    const auto s3 = publish("jobs", "three");
    ASSERT_EQ(pushes(*bob.client, 3), (std::vector<std::uint64_t>{s1, s2, s3}));

    // bob has all three in flight; carol has fetched nothing; dave's channel is quiet.
    const auto all = std::vector<std::vector<std::string>>{
        lag_row("alerts", "dave", 0, 0, dave.start_after, "push"),
        lag_row("jobs", "bob", 3, 3, bob.start_after, "push"),
        lag_row("jobs", "carol", 3, 0, carol.start_after, "pull"),
    };
    EXPECT_EQ(lag(), aligned(all));
    EXPECT_EQ(lag({"--channel", "jobs"}), aligned({all[1], all[2]}));
    EXPECT_EQ(lag({"--bot", "carol"}), aligned({all[2]}));
    EXPECT_EQ(lag({"--bot", "dave", "--channel", "alerts"}), aligned({all[0]}));
    EXPECT_EQ(lag({"--bot", "dave", "--channel", "jobs"}), "");
    EXPECT_EQ(lag({"--channel", "nowhere"}), "");

    // --json: the daemon's fields, one subscription per line, same order.
    const auto json = lag_json();
    ASSERT_EQ(json.size(), 3U);
    std::vector<std::string> keys;
    for (const auto& item : json[1].items()) keys.push_back(item.key());
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"acked", "bot", "channel", "created_at", "head", "in_flight",
                                              "lag", "last_ack", "mode", "replica_count", "replicas", "stuck"}));
    EXPECT_EQ(json[1].at("replica_count"), 1);
    ASSERT_EQ(json[1].at("replicas").size(), 1U);
    EXPECT_EQ(json[1].at("replicas")[0].at("in_flight"), 3);
    EXPECT_EQ(json[0].at("channel"), "alerts");
    EXPECT_EQ(json[0].at("bot"), "dave");
    EXPECT_EQ(json[1].at("channel"), "jobs");
    EXPECT_EQ(json[1].at("bot"), "bob");
    EXPECT_EQ(json[1].at("acked"), bob.start_after);
    EXPECT_EQ(json[1].at("head"), s3);
    EXPECT_EQ(json[1].at("lag"), 3);
    EXPECT_EQ(json[1].at("in_flight"), 3);
    EXPECT_EQ(json[1].at("mode"), "push");
    EXPECT_EQ(json[1].at("stuck"), false);
    EXPECT_GT(json[1].at("last_ack").get<std::int64_t>(), 0);
    EXPECT_GT(json[1].at("created_at").get<std::int64_t>(), 0);
    EXPECT_EQ(json[2].at("bot"), "carol");
    EXPECT_EQ(json[2].at("mode"), "pull");
    EXPECT_EQ(json[2].at("in_flight"), 0);
    const auto carols = lag_json({"--bot", "carol"});
    ASSERT_EQ(carols.size(), 1U);
    EXPECT_EQ(carols[0], json[2]);
    EXPECT_TRUE(lag_json({"--channel", "nowhere"}).empty());

    // bob acknowledges everything; carol fetches one and acknowledges it.
    EXPECT_EQ(bob.client->ack(s3, {}, "jobs"), s3);
    const auto fetched = carol.client->fetch("jobs", 1);
    ASSERT_EQ(fetched.messages.size(), 1U);
    EXPECT_EQ(fetched.messages[0].seq, s1);
    EXPECT_EQ(lag({"--bot", "carol"}), aligned({lag_row("jobs", "carol", 3, 1, carol.start_after, "pull")}));
    EXPECT_EQ(carol.client->ack(s1, {}, "jobs"), s1);
    EXPECT_EQ(lag({"--channel", "jobs"}), aligned({lag_row("jobs", "bob", 0, 0, s3, "push"),
                                                   lag_row("jobs", "carol", 2, 0, s1, "pull")}));
}

TEST_F(CliLag, NoDurableSubscriptionPrintsNothing) {
    EXPECT_EQ(lag(), "");
    EXPECT_TRUE(lag_json().empty());
    // A plain subscription (membership, no cursor) is not a durable one.
    ASSERT_EQ(cli({"--as", "bob", "subscribe", "news"}).exit_code, 0);
    publish("news", "hello");
    EXPECT_EQ(lag(), "");
    EXPECT_EQ(lag({"--bot", "bob"}), "");
}

// A report: a stuck subscription is flagged, and the exit status stays 0.
TEST_F(CliLagStuck, ASubscriberThatStopsAcknowledgingIsFlaggedStuck) {
    auto bob = subscriber("bob", "alerts", "push");
    auto carol = subscriber("carol", "alerts", "pull");
    const auto s1 = publish("alerts", "one");
    const auto s2 = publish("alerts", "two");
    ASSERT_EQ(pushes(*bob.client, 2, true), (std::vector<std::uint64_t>{s1, s2}));

    // bob keeps the pushes (delivered again every 100 ms) without acking.
    const auto deadline = Clock::now() + 20s;
    Json bobs;
    for (;;) {
        const auto json = lag_json({"--channel", "alerts"});
        ASSERT_EQ(json.size(), 2U);
        bobs = json[0];
        if (bobs.at("stuck") == true) break;
        if (Clock::now() >= deadline) FAIL() << "bob was not flagged stuck within 20 s: " << bobs;
        bob.client->next_push(20ms);  // redeliveries, read so they do not pile up
    }
    EXPECT_EQ(bobs.at("bot"), "bob");
    EXPECT_EQ(bobs.at("lag"), 2);
    EXPECT_EQ(bobs.at("in_flight"), 2);
    const auto last_ack = bobs.at("last_ack").get<std::int64_t>();

    const auto r = cli({"lag"});
    EXPECT_EQ(r.exit_code, 0) << "stuck subscriptions are reported, not an error";
    EXPECT_TRUE(r.err.empty()) << r.err;
    const auto lines = lines_of(r.out);
    ASSERT_EQ(lines.size(), 2U) << r.out;
    // No ack yet: last_ack is when bob's subscription started delivering;
    // redeliveries leave it alone.
    auto stuck = lag_row("alerts", "bob", 2, 2, bob.start_after, "push");
    stuck.push_back("STUCK: no ack since " + utc(last_ack));
    EXPECT_EQ(r.out, aligned({stuck, lag_row("alerts", "carol", 2, 0, carol.start_after, "pull")}));

    // Acknowledging ends it.
    EXPECT_EQ(bob.client->ack(s2, {}, "alerts"), s2);
    EXPECT_EQ(lag({"--bot", "bob"}), aligned({lag_row("alerts", "bob", 0, 0, s2, "push")}));
    const auto after = lag_json({"--bot", "bob"});
    ASSERT_EQ(after.size(), 1U);
    EXPECT_EQ(after[0].at("stuck"), false);
    EXPECT_GT(after[0].at("last_ack").get<std::int64_t>(), last_ack);
}

TEST_F(Cli, HelpListsLag) {
    const auto r = cli_raw({"--help"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::map<std::string, std::string> summaries;
    for (const auto& line : lines_of(r.out)) {
        if (line.size() <= 43 || line.rfind("  ", 0) != 0 || line[2] == ' ' || line[2] == '-') continue;
        auto head = line.substr(2, 41);
        head.erase(head.find_last_not_of(' ') + 1);
        summaries[head] = line.substr(43);
    }
    EXPECT_EQ(summaries["lag"], "show every durable subscription's lag; stuck ones flagged") << r.out;

    const auto help = cli_raw({"lag", "--help"});
    EXPECT_EQ(help.exit_code, 0) << help.err;
    EXPECT_EQ(help.out.rfind("usage: botbus [global options] lag [--bot B] [--channel C]\n\nshow every durable "
                             "subscription's lag; stuck ones flagged.\n",
                             0),
              0U)
        << help.out;
    for (const char* option : {"--bot B", "--channel C"}) {
        EXPECT_NE(help.out.find(option), std::string::npos) << option << "\n" << help.out;
    }
}

TEST_F(Cli, LagRejectsBadUsage) {
    const std::vector<std::vector<std::string>> cases{
        {"lag", "extra"},
        {"lag", "--bot"},
        {"lag", "--channel"},
        {"lag", "--bot", "bob", "jobs"},
        {"lag", "--no-such-option"},
    };
    for (const auto& args : cases) {
        std::string shown;
        for (const auto& a : args) shown += a + ' ';
        const auto r = cli(args);
        EXPECT_EQ(r.exit_code, 2) << shown << "\n" << r.err;
        EXPECT_NE(r.err.find("usage: botbus [global options] lag [--bot B] [--channel C]\n"), std::string::npos)
            << shown << "\n" << r.err;
        EXPECT_TRUE(r.out.empty()) << shown << "\n" << r.out;
    }
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

// ---- permissions (issue 12): botbus acl, as an admin, paging to the end

class CliAcl : public Cli {
protected:
    CliAcl() : Cli(std::vector<std::string>{"--admin", "ops"}) {}
};

TEST_F(CliAcl, AnAdminGrantsListsEveryPageAndRevokesOthersAreRefused) {
    const auto granted = cli({"--as", "ops", "acl", "grant", "alice", "read", "secret"});
    ASSERT_EQ(granted.exit_code, 0) << granted.err;
    EXPECT_EQ(granted.out.rfind("granted: alice read secret", 0), 0U) << granted.out;
    auto ops = bot("ops");
    for (int i = 0; i < 104; ++i) ops->call_ok(bus::AclGrantRequest{"bot" + std::to_string(i), "publish", "c"});
    const auto listed = cli({"--as", "ops", "--json", "acl", "list"});
    ASSERT_EQ(listed.exit_code, 0) << listed.err;
    const auto rules = json_lines(listed.out);
    ASSERT_EQ(rules.size(), 105U) << "every page, past the first 100";
    EXPECT_EQ(rules.front(), (Json{{"bot", "alice"}, {"permission", "read"}, {"channel", "secret"}}));
    const auto table = cli({"--as", "ops", "acl", "list"}).out;
    EXPECT_EQ(table.rfind("BOT", 0), 0U) << table;
    EXPECT_NE(table.find("alice"), std::string::npos) << table;

    const auto refused = cli({"--as", "bob", "acl", "grant", "bob", "read", "secret"});
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("forbidden"), std::string::npos) << refused.err;
    EXPECT_EQ(cli({"--as", "ops", "acl", "revoke", "alice", "read", "secret"}).exit_code, 0);
    EXPECT_EQ(json_lines(cli({"--as", "ops", "--json", "acl", "list"}).out).size(), 104U);
}

}  // namespace
}  // namespace botbus
