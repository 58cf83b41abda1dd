// Copies the WAL back into the database file on a background thread, with a
// connection of its own, so that the thread executing batches does not pay
// for checkpoints (they were the daemon's longest pauses: a checkpoint writes
// and fsyncs the database file).
//
// Operation: the SqliteStore's WAL hook calls request() when the WAL has
// grown past a soft limit; the thread runs a PASSIVE checkpoint (never
// blocks the writer, never waits for it). A PASSIVE checkpoint cannot finish
// while commits keep arriving, so under sustained load the SqliteStore also
// checkpoints inline past a hard limit (see SqliteStore); by then most frames
// are already copied and the inline one is short.
// Concurrency: request() from any thread; the connection belongs to the
// checkpoint thread alone.
#pragma once

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

namespace botbus::store {

class Checkpointer {
public:
    explicit Checkpointer(const std::string& database_path);
    Checkpointer(const Checkpointer&) = delete;
    Checkpointer& operator=(const Checkpointer&) = delete;
    ~Checkpointer();  // finishes a checkpoint in progress, then joins

    void request();
    std::uint64_t completed() const;  // checkpoints run so far (tests, stats)
    // Waits until at least `count` checkpoints have run; false at the deadline.
    bool wait_completed(std::uint64_t count, std::chrono::steady_clock::time_point deadline) const;

private:
    void run();

    SQLite::Database m_db;
    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    mutable std::condition_variable m_progress;
    bool m_requested = false;
    bool m_stopping = false;
    std::uint64_t m_completed = 0;
    std::thread m_thread;  // last: starts once the members above exist
};

}  // namespace botbus::store
