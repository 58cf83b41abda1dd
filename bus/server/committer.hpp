// Group commit: holds committed batches until a WAL sync covers them, then
// releases them in commit order.
//
// Operation: the server commits each batch without syncing and hands it to
// hold(), saying whether it appended anything. A batch that appended takes
// the next ticket and asks for a sync covering it (request_sync, served on
// the SyncThread); its replies, feed events and pushes wait in order until
// on_synced reports a sync through its ticket. While a sync runs the loop
// goes on executing the next batches, and one sync releases all of them
// (group commit across batches). Batches that append nothing take the
// ticket of the batch before them and wait too: their replies may have read
// what earlier batches wrote. When nothing is held, the sync thread is idle
// and no request is waiting to overlap with it, the batch is synced on the
// loop thread instead (sync_here): the two thread hand-offs cost more than
// the sync on a busy machine. A store that needs no syncing (no
// request_sync) releases every batch at once.
// A failed sync throws from on_synced or sync_here: the held batches are
// committed in SQLite but perhaps not on disk, and later batches may have
// read them, so the daemon must stop; nothing held is released.
// Concurrency: every method runs on the loop thread, except sync_reported,
// which the sync thread calls so that the loop can release between batches
// without waiting for the posted on_synced.
// Limitations: the hooks must not call hold() from within release.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>

#include "bus/server/release.hpp"

namespace botbus::bus {

class Committer {
public:
    struct Hooks {
        // Makes everything committed so far durable, on the calling thread;
        // throws when it fails.
        std::function<void()> sync_here;
        // Asks for a sync, elsewhere, covering every batch committed so far
        // and numbered `ticket`; its end is reported through on_synced.
        // Empty when the store needs no syncing.
        std::function<void(std::uint64_t ticket)> request_sync;
        // Shows a durable batch.
        std::function<void(Release&)> release;
        // True when requests are ready to be executed while a sync runs.
        std::function<bool()> requests_waiting;
    };

    explicit Committer(Hooks hooks);

    // Takes a committed batch: released now when nothing needs to wait,
    // otherwise held behind the batches before it.
    void hold(Release batch, bool appended);
    // A sync through ticket `through` finished (or failed: then throws).
    // True when something was released.
    bool on_synced(std::uint64_t through, std::exception_ptr error);
    // Any thread: a sync through `through` succeeded; release_reported()
    // releases what it covers.
    void sync_reported(std::uint64_t through) { m_reported.store(through, std::memory_order_release); }
    bool release_reported() { return release_synced(m_reported.load(std::memory_order_acquire)); }
    // Releases the held batches that a sync through `through` covers, oldest
    // first; true when something was released.
    bool release_synced(std::uint64_t through);
    // At shutdown: syncs here and releases everything held; throws when the
    // sync fails.
    void sync_and_release_all();

    std::size_t held() const { return m_held.size(); }
    std::uint64_t committed_ticket() const { return m_committed_ticket; }
    std::uint64_t synced_ticket() const { return m_synced_ticket; }
    std::uint64_t inline_syncs() const { return m_inline_syncs; }  // syncs the loop ran itself

private:
    void sync_here();  // everything committed so far is durable

    Hooks m_hooks;
    std::deque<Release> m_held;            // committed batches waiting for their sync, oldest first
    std::uint64_t m_committed_ticket = 0;  // numbers the batches that appended something
    std::uint64_t m_synced_ticket = 0;
    std::uint64_t m_inline_syncs = 0;
    std::atomic<std::uint64_t> m_reported{0};  // written by the sync thread
};

}  // namespace botbus::bus
