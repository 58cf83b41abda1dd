// Starts the real botbusd for end-to-end tests: a temp data dir, loopback
// endpoints on port 0, and the bound endpoints read from its ready line.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace botbus::testing {


// Whether the end-to-end tests run on PostgreSQL (BOTBUS_TEST_STORE=postgresql,
// with BOTBUS_TEST_POSTGRES naming the server), and the --store URI that
// stands for a data directory then.
bool test_store_is_postgres();
std::string postgres_store_for(const std::filesystem::path& data_dir);
// `--data-dir DIR` and, on PostgreSQL, `--store` with DIR's schema: for the
// offline commands (botbusd rebuild) run on a daemon's data.
std::vector<std::string> store_args(const std::filesystem::path& data_dir);

// A test of something only the SQLite store has (its files, its WAL, the
// fault shim on its I/O): skipped, with the reason, on PostgreSQL.
#define BOTBUS_SQLITE_ONLY(why)                                                  \
    do {                                                                         \
        if (::botbus::testing::test_store_is_postgres()) {                       \
            GTEST_SKIP() << "SQLite store only: " << (why);                      \
        }                                                                        \
    } while (false)

class DaemonProcess {
public:
    // Starts botbusd on `data_dir` and waits (deadline 20 s) for its ready
    // line; throws std::runtime_error with its stderr if it exits instead.
    // `extra_env` entries ("NAME=value") are added to the daemon's
    // environment (the fault-injection shim is loaded that way).
    // `extra_args` may name --command-endpoint / --feed-endpoint; the
    // loopback port-0 defaults are then left out.
    explicit DaemonProcess(const std::filesystem::path& data_dir, std::vector<std::string> extra_args = {},
                           std::vector<std::string> extra_env = {});
    // A daemon still running is ended with SIGTERM, as systemd would, so it
    // exits through its normal path and a coverage build writes its counts;
    // one that does not exit within 20 s fails the test and is killed.
    ~DaemonProcess();
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    const std::string& command_endpoint() const { return m_command; }
    const std::string& feed_endpoint() const { return m_feed; }
    // host:port of the HTTP endpoint when started with --metrics-endpoint.
    const std::string& metrics_endpoint() const { return m_metrics; }
    pid_t pid() const { return m_pid; }
    // What the daemon has logged so far (its stderr), for failure messages.
    std::string stderr_text() const;

    // Sends SIGTERM and waits for exit; returns the exit status.
    int terminate(std::chrono::milliseconds deadline = std::chrono::seconds(20));
    // Waits for the daemon to exit by itself; returns the exit status, or -1
    // when it is still running at the deadline.
    int wait(std::chrono::milliseconds deadline);
    // kill -9, and reap.
    void kill_hard();

private:
    pid_t m_pid = -1;
    int m_stdout = -1;
    std::filesystem::path m_stderr_path;
    std::string m_command;
    std::string m_feed;
    std::string m_metrics;
};

// Runs botbusd to completion (for start-up failures); returns exit status
// and what it wrote to stdout and stderr. A run still going at the deadline
// is killed and reported with exit_code -1.
struct RunResult {
    int exit_code = -1;
    std::string stdout_text;
    std::string stderr_text;
};
RunResult run_botbusd(const std::vector<std::string>& args, std::chrono::milliseconds deadline = std::chrono::seconds(20),
                      const std::vector<std::string>& extra_env = {});
// The same for another program (the botbus CLI).
RunResult run_program(const std::string& program, const std::vector<std::string>& args,
                      std::chrono::milliseconds deadline = std::chrono::seconds(20),
                      const std::vector<std::string>& extra_env = {});

}  // namespace botbus::testing
