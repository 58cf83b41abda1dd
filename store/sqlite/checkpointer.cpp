#include "store/sqlite/checkpointer.hpp"

#include <spdlog/spdlog.h>

namespace botbus::store {
namespace {

SQLite::Database open_connection(const std::string& path) {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX);
    // A checkpoint syncs the WAL before copying it and the database file
    // before the WAL may be reused; both need synchronous >= NORMAL here.
    db.exec("PRAGMA synchronous=FULL");
    db.setBusyTimeout(5000);
    return db;
}

}  // namespace

Checkpointer::Checkpointer(const std::string& database_path)
    : m_db(open_connection(database_path)), m_thread([this] { run(); }) {}

Checkpointer::~Checkpointer() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_one();
    m_thread.join();
}

void Checkpointer::request() {
    {
        std::lock_guard lock(m_mutex);
        m_requested = true;
    }
    m_wake.notify_one();
}

std::uint64_t Checkpointer::completed() const {
    std::lock_guard lock(m_mutex);
    return m_completed;
}

bool Checkpointer::wait_completed(std::uint64_t count, std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lock(m_mutex);
    return m_progress.wait_until(lock, deadline, [&] { return m_completed >= count; });
}

void Checkpointer::run() {
    std::unique_lock lock(m_mutex);
    while (true) {
        m_wake.wait(lock, [this] { return m_requested || m_stopping; });
        if (m_stopping) return;
        m_requested = false;
        lock.unlock();
        try {
            m_db.exec("PRAGMA wal_checkpoint(PASSIVE)");
        } catch (const std::exception& e) {
            // The next request tries again; the inline checkpoint is the
            // backstop if this keeps failing.
            spdlog::warn("background checkpoint failed: {}", e.what());
        }
        lock.lock();
        ++m_completed;
        m_progress.notify_all();
    }
}

}  // namespace botbus::store
