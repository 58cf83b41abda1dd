// A program the end-to-end tests start beside the daemon (an executor, a
// bot replica, botbusd rebuild), its stdout and stderr kept in files, waited
// for with a deadline or killed.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "feed_support.hpp"

extern char** environ;

namespace botbus::testing {

using namespace std::chrono_literals;

inline std::string read_text(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// A program run with stdout and stderr captured in files under `dir`.
class Child {
public:
    Child(const std::string& program, const std::vector<std::string>& args, const std::filesystem::path& dir)
        : m_out(dir / ("child-" + std::to_string(next_number()) + ".out")), m_err(m_out) {
        m_err.replace_extension(".err");
        std::vector<std::string> storage{program};
        storage.insert(storage.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : storage) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, m_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, m_err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int rc = posix_spawn(&m_pid, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) throw std::runtime_error("cannot start " + program);
    }
    ~Child() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            waitpid(m_pid, nullptr, 0);
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    // The exit status, or -1 if the child still runs at the deadline (it is
    // then killed).
    int wait(client::Millis timeout = 20s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        // A pidfd turns "has it exited" into a poll with a timeout.
#ifdef SYS_pidfd_open
        const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, m_pid, 0));
#else
        const int pidfd = -1;
#endif
        int status = 0;
        for (;;) {
            const pid_t done = waitpid(m_pid, &status, WNOHANG);
            if (done == m_pid) break;
            if (std::chrono::steady_clock::now() >= deadline) {
                if (pidfd >= 0) close(pidfd);
                return -1;
            }
            if (pidfd >= 0) {
                pollfd pfd{pidfd, POLLIN, 0};
                ::poll(&pfd, 1, static_cast<int>(until(deadline).count()));
            } else {
                ::poll(nullptr, 0, 1);  // no pidfd (old kernel): look again in a millisecond
            }
        }
        if (pidfd >= 0) close(pidfd);
        m_pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

    // kill -9, as a crash or a power cut would end it; reaped at once.
    void kill9() {
        if (m_pid <= 0) return;
        ::kill(m_pid, SIGKILL);
        waitpid(m_pid, nullptr, 0);
        m_pid = -1;
    }

    std::string out() const { return read_text(m_out); }
    std::string err() const { return read_text(m_err); }
    std::string output() const { return "stdout:\n" + out() + "stderr:\n" + err(); }

private:
    static int next_number() {
        static int k_count = 0;
        return ++k_count;
    }

    pid_t m_pid = -1;
    std::filesystem::path m_out;
    std::filesystem::path m_err;
};

}  // namespace botbus::testing
