#include "daemon_process.hpp"

#include "postgres_test_server.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace botbus::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// BOTBUS_TEST_BOTBUSD runs the suite against another build of the daemon
// (a sanitizer build, an installed package); the default is this build's.
std::string botbusd_path() {
    const char* other = std::getenv("BOTBUS_TEST_BOTBUSD");
    return other && *other ? std::string(other) : std::string(BOTBUSD_PATH);
}

pid_t spawn(const std::string& program, const std::vector<std::string>& args, int stdout_fd,
            const std::filesystem::path& stderr_path, const std::vector<std::string>& extra_env) {
    std::vector<char*> argv;
    std::vector<std::string> storage{program};
    storage.insert(storage.end(), args.begin(), args.end());
    for (auto& a : storage) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdout_fd >= 0) {
        posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    }
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    std::vector<std::string> env_storage(extra_env);
    for (char** e = environ; *e; ++e) env_storage.emplace_back(*e);
    std::vector<char*> envp;
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);

    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + storage[0]);
    return pid;
}

// Waits for the child with a deadline; returns its exit status, or -1 on
// timeout. A pidfd becomes readable when the child exits, so this blocks in
// poll instead of spinning.
int wait_exit(pid_t pid, std::chrono::milliseconds deadline) {
    const auto until = Clock::now() + deadline;
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    int status = 0;
    int result = -1;
    for (;;) {
        const pid_t done = waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            result = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            break;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        if (left <= 0) break;
        if (pidfd >= 0) {
            pollfd pfd{pidfd, POLLIN, 0};
            ::poll(&pfd, 1, static_cast<int>(left));
        } else {
            ::poll(nullptr, 0, 1);  // no pidfd (kernel before 5.3): look again in a millisecond
        }
    }
    if (pidfd >= 0) close(pidfd);
    return result;
}

}  // namespace

namespace {

// On PostgreSQL without a server every test skips, or fails when the server
// is required (scripts/test.sh), instead of each failing to start a daemon.
class PostgresStoreEnvironment : public ::testing::Environment {
public:
    void SetUp() override {
        if (!test_store_is_postgres() || postgres_server()) return;
        if (postgres_required()) FAIL() << "BOTBUS_REQUIRE_POSTGRES=1 but BOTBUS_TEST_POSTGRES is not set";
        GTEST_SKIP() << "BOTBUS_TEST_STORE=postgresql without a server (BOTBUS_TEST_POSTGRES; scripts/postgres.sh)";
    }
};

[[maybe_unused]] const auto* const k_postgres_environment =
    ::testing::AddGlobalTestEnvironment(new PostgresStoreEnvironment);

}  // namespace

bool test_store_is_postgres() {
    const char* store = std::getenv("BOTBUS_TEST_STORE");
    return store != nullptr && std::string(store) == "postgresql";
}

std::string postgres_store_for(const std::filesystem::path& data_dir) {
    // Schema names are identifiers: the directory's hash, not its path.
    const auto hash = std::hash<std::string>{}(std::filesystem::absolute(data_dir).lexically_normal().string());
    return postgres_schema("d" + std::to_string(hash));
}

std::vector<std::string> store_args(const std::filesystem::path& data_dir) {
    std::vector<std::string> args{"--data-dir", data_dir.string()};
    if (test_store_is_postgres()) args.insert(args.end(), {"--store", postgres_store_for(data_dir)});
    return args;
}

DaemonProcess::DaemonProcess(const std::filesystem::path& data_dir, std::vector<std::string> extra_args,
                             std::vector<std::string> extra_env) {
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    m_stderr_path = data_dir.string() + ".stderr";
    std::vector<std::string> args{"--data-dir", data_dir.string(), "--log-level", "warn"};
    // Loopback on port 0 unless the test names an endpoint of its own.
    for (const char* endpoint : {"--command-endpoint", "--feed-endpoint"}) {
        if (std::find(extra_args.begin(), extra_args.end(), endpoint) == extra_args.end()) {
            args.insert(args.end(), {endpoint, "tcp://127.0.0.1:*"});
        }
    }
    // BOTBUS_TEST_STORE=postgresql: the same test on the PostgreSQL store,
    // one schema per data directory (a restart on the directory finds its log).
    if (test_store_is_postgres() && std::find(extra_args.begin(), extra_args.end(), "--store") == extra_args.end()) {
        args.insert(args.end(), {"--store", postgres_store_for(data_dir)});
    }
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    m_pid = spawn(botbusd_path(), args, pipe_fds[1], m_stderr_path, extra_env);
    close(pipe_fds[1]);
    m_stdout = pipe_fds[0];

    const auto deadline = Clock::now() + std::chrono::seconds(20);
    std::string line;
    while (line.find('\n') == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd pfd{m_stdout, POLLIN, 0};
        if (left <= 0 || ::poll(&pfd, 1, static_cast<int>(left)) <= 0) break;
        char buffer[512];
        const auto n = read(m_stdout, buffer, sizeof buffer);
        if (n <= 0) break;
        line.append(buffer, static_cast<std::size_t>(n));
    }
    const auto command_at = line.find("command=");
    const auto feed_at = line.find(" feed=");
    if (line.rfind("botbusd ready ", 0) != 0 || command_at == std::string::npos || feed_at == std::string::npos) {
        kill_hard();
        close(m_stdout);  // the destructor does not run for a constructor that throws
        m_stdout = -1;
        throw std::runtime_error("botbusd did not become ready; stderr:\n" + read_file(m_stderr_path));
    }
    m_command = line.substr(command_at + 8, feed_at - command_at - 8);
    const auto feed_end = line.find_first_of(" \n", feed_at + 6);
    m_feed = line.substr(feed_at + 6, feed_end - feed_at - 6);
    if (const auto metrics_at = line.find(" metrics="); metrics_at != std::string::npos) {
        m_metrics = line.substr(metrics_at + 9, line.find_first_of(" \n", metrics_at + 9) - metrics_at - 9);
    }
}

DaemonProcess::~DaemonProcess() {
    if (m_pid > 0 && terminate() < 0) {
        ADD_FAILURE() << "botbusd did not exit within 20 s of SIGTERM; stderr:\n" << stderr_text();
        kill_hard();
    }
    if (m_stdout >= 0) close(m_stdout);
}

std::string DaemonProcess::stderr_text() const { return read_file(m_stderr_path); }

int DaemonProcess::terminate(std::chrono::milliseconds deadline) {
    if (m_pid <= 0) return -1;
    ::kill(m_pid, SIGTERM);
    const int status = wait_exit(m_pid, deadline);
    if (status >= 0) m_pid = -1;
    return status;
}

int DaemonProcess::wait(std::chrono::milliseconds deadline) {
    if (m_pid <= 0) return -1;
    const int status = wait_exit(m_pid, deadline);
    if (status >= 0) m_pid = -1;
    return status;
}

void DaemonProcess::kill_hard() {
    if (m_pid <= 0) return;
    ::kill(m_pid, SIGKILL);
    wait_exit(m_pid, std::chrono::seconds(20));
    m_pid = -1;
}

RunResult run_botbusd(const std::vector<std::string>& args, std::chrono::milliseconds deadline,
                      const std::vector<std::string>& extra_env) {
    return run_program(botbusd_path(), args, deadline, extra_env);
}

RunResult run_program(const std::string& program, const std::vector<std::string>& args,
                      std::chrono::milliseconds deadline, const std::vector<std::string>& extra_env) {
    TempDir scratch;
    const auto stderr_path = scratch.path() / "stderr";
    const auto stdout_path = scratch.path() / "stdout";
    const int stdout_fd = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (stdout_fd < 0) throw std::runtime_error("cannot create " + stdout_path.string());
    pid_t pid = -1;
    try {
        pid = spawn(program, args, stdout_fd, stderr_path, extra_env);
    } catch (...) {
        close(stdout_fd);
        throw;
    }
    close(stdout_fd);
    RunResult result;
    result.exit_code = wait_exit(pid, deadline);
    if (result.exit_code < 0) {
        ::kill(pid, SIGKILL);
        wait_exit(pid, std::chrono::seconds(5));
    }
    result.stdout_text = read_file(stdout_path);
    result.stderr_text = read_file(stderr_path);
    return result;
}

}  // namespace botbus::testing
