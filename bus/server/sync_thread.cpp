#include "bus/server/sync_thread.hpp"

#include <utility>

namespace botbus::bus {

SyncThread::SyncThread(std::function<void()> sync, Done done)
    : m_sync(std::move(sync)), m_done(std::move(done)), m_thread([this] { run(); }) {}

SyncThread::~SyncThread() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_one();
    m_thread.join();
}

void SyncThread::request(std::uint64_t ticket) {
    {
        std::lock_guard lock(m_mutex);
        if (ticket <= m_requested) return;
        m_requested = ticket;
    }
    m_wake.notify_one();
}

void SyncThread::run() {
    std::unique_lock lock(m_mutex);
    while (true) {
        m_wake.wait(lock, [this] { return m_requested > m_synced || m_stopping; });
        if (m_stopping) return;
        // Everything requested so far was committed before this point, so
        // the one sync below covers it all.
        const auto through = m_requested;
        lock.unlock();
        std::exception_ptr error;
        try {
            m_sync();
        } catch (...) {
            error = std::current_exception();
        }
        if (!error) m_completed.fetch_add(1, std::memory_order_relaxed);
        m_done(through, error);
        lock.lock();
        if (error) return;
        m_synced = through;
    }
}

}  // namespace botbus::bus
