// Online backups (the `backup` op): one at a time, written on a thread of
// its own so the loop keeps serving, answered when the copy is on disk.
//
// Operation: start() is called when the batch that carried the request is
// released, so every event acknowledged before it is committed and in the
// copy. It checks the name is free in the backup directory (creating the
// directory), then runs Store::backup on a thread; the outcome is posted back
// to the loop and answered through `answer`. A second request while one runs
// is refused (`limit_reached`); a name in use is `conflict`; a failed copy
// (a full disk) is `storage_error` and leaves no file behind.
// Concurrency: loop thread, except the copy itself. stop() cancels a running
// copy and waits for its thread, answering `shutting_down`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "bus/protocol/codec.hpp"
#include "store/store.hpp"

namespace botbus::bus {

struct WantedBackup {
    std::string routing_id;
    bool req_style = false;
    std::optional<PackedValue> id;
    std::string name;
};

struct BackupCounters {
    std::uint64_t written = 0;
    std::uint64_t failed = 0;
    std::uint64_t last_bytes = 0;
    double last_seconds = 0;
    std::int64_t last_finished_unix = 0;  // 0 until one is written
};

class Backups {
public:
    using Answer = std::function<void(const WantedBackup&, std::string reply)>;

    Backups(boost::asio::io_context& io, store::Store& store, std::string directory, Answer answer);
    Backups(const Backups&) = delete;
    Backups& operator=(const Backups&) = delete;
    ~Backups();

    void start(WantedBackup wanted);
    void stop();
    bool running() const { return m_running.has_value(); }
    const BackupCounters& counters() const { return m_counters; }
    const std::string& directory() const { return m_directory; }

private:
    // `failure` is empty when the copy was written.
    void finish(std::string reply, const std::string& failure, std::uint64_t bytes, double seconds);

    boost::asio::io_context& m_io;
    store::Store& m_store;
    std::string m_directory;
    Answer m_answer;
    std::optional<WantedBackup> m_running;
    std::atomic<bool> m_cancel{false};
    std::thread m_thread;
    std::shared_ptr<int> m_alive = std::make_shared<int>(0);
    BackupCounters m_counters;
};

}  // namespace botbus::bus
