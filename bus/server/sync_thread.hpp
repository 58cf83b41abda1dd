// Runs the store's WAL sync on a thread of its own, so that the event loop
// executes batch N+1 while batch N reaches the disk.
//
// Operation: the loop commits a batch (unsynced), numbers it with a ticket
// and calls request(ticket). The thread syncs; a sync that starts after
// tickets 1..k were requested covers all of them, so requests made while a
// sync runs are served together by the next one. `done(k, nullptr)` is then
// called on the sync thread (the server posts it to its loop). When a sync
// fails, `done` gets the error and the thread stops syncing: what the kernel
// failed to write cannot be retried safely (the failed pages may already be
// marked clean), so the daemon must stop.
// Concurrency: request() from one thread (the loop); `sync` and `done` run on
// the sync thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace botbus::bus {

class SyncThread {
public:
    using Done = std::function<void(std::uint64_t through, std::exception_ptr error)>;

    SyncThread(std::function<void()> sync, Done done);
    SyncThread(const SyncThread&) = delete;
    SyncThread& operator=(const SyncThread&) = delete;
    ~SyncThread();  // lets a sync in progress finish, then joins

    // Every batch committed before this call is covered by the sync that
    // reports `ticket` (or a later one) done. Tickets must increase.
    void request(std::uint64_t ticket);
    std::uint64_t completed() const { return m_completed.load(std::memory_order_relaxed); }  // syncs done

private:
    void run();

    std::function<void()> m_sync;
    Done m_done;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::uint64_t m_requested = 0;
    std::uint64_t m_synced = 0;
    bool m_stopping = false;
    std::atomic<std::uint64_t> m_completed{0};
    std::thread m_thread;  // last: starts once the members above exist
};

}  // namespace botbus::bus
