// botbus.seq: the highest seq known to be durable, kept outside the database
// and its WAL, so that a log that comes back shorter than what was
// acknowledged (a damaged WAL frame ends SQLite's WAL recovery there, and
// every later commit is silently dropped) is caught at start-up instead of
// its seqs being handed out again.
//
// Operation: one fixed 32-byte record at offset 0 (magic, seq, the seq's
// complement), overwritten in place with pwrite: one sector, so it is never
// seen half-written. advance() runs after each WAL sync with the highest seq
// committed before that sync began, before anything of it is acknowledged:
// a pwrite into the page cache, which survives a crash of the process. A
// thread of its own fdatasyncs the record at most once per
// k_durable_interval while it has changed, so the record's flush never
// delays a reply and costs at most ten device flushes a second, and the
// record on disk lags the acknowledged seqs by at most about one interval
// after a power loss or kernel crash (docs/OPERATIONS.md states the exact
// guarantee). write_durable() syncs at once (start-up and clean shutdown).
// Concurrency: every method may be called from any thread; a mutex orders
// them. The recorded value never goes down. A failed background sync is
// reported by the next advance() or write_durable(), which throw it.
// Limitations: only a lower bound of what was acknowledged: a loss of
// acknowledged events above it (in the last interval before a power loss)
// is not detected.
#pragma once

#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "store/event.hpp"

namespace botbus::store {

class SeqRecord {
public:
    static constexpr std::chrono::milliseconds k_durable_interval{100};

    // "<dir>/<stem>.seq" beside "<dir>/<stem>.db".
    static std::string path_for(const std::string& database_path);
    // Reads a record without opening it for writing (botbusd verify): empty
    // when the file does not exist; throws StartupError when it is not a
    // record.
    static std::optional<Seq> read_file(const std::string& path);

    // Opens the record for writing, creating it if missing. Throws
    // StartupError naming the file and the cause (a read-only file system,
    // permission denied, ...): the data directory must be writable.
    explicit SeqRecord(std::string path);
    SeqRecord(const SeqRecord&) = delete;
    SeqRecord& operator=(const SeqRecord&) = delete;
    ~SeqRecord();

    // What the file held when opened; empty for a new (empty) file. Throws
    // StartupError when it holds something else than a record.
    std::optional<Seq> initial() const { return m_initial; }

    // Records `seq` (when above what is recorded) and syncs the record.
    // Throws std::system_error.
    void write_durable(Seq seq);
    // After a WAL sync that covers every seq up to `seq`. Throws
    // std::system_error when the record cannot be written or synced.
    void advance(Seq seq);

    const std::string& path() const { return m_path; }

private:
    void write_locked(Seq seq);
    void sync_locked(std::unique_lock<std::mutex>& lock);
    void rethrow_background_error_locked() const;
    void run();

    std::string m_path;
    int m_fd = -1;
    std::optional<Seq> m_initial;
    std::mutex m_mutex;
    Seq m_written = 0;  // in the file (page cache)
    Seq m_durable = 0;  // synced
    bool m_syncing = false;  // the background thread is in fdatasync
    std::chrono::steady_clock::time_point m_last_sync{};
    std::exception_ptr m_background_error;
    bool m_stopping = false;
    std::condition_variable m_wake;
    std::thread m_thread;  // last: starts once the members above exist
};

}  // namespace botbus::store
