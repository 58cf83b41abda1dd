#include "bus/server/committer.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace botbus::bus {

Committer::Committer(Hooks hooks) : m_hooks(std::move(hooks)) {}

void Committer::hold(Release batch, bool appended) {
    if (appended) ++m_committed_ticket;
    batch.ticket = m_committed_ticket;
    if (!m_hooks.request_sync || (m_held.empty() && batch.ticket <= m_synced_ticket)) {
        // Nothing to wait for: durable already, or a store that does not sync.
        m_hooks.release(batch);
        return;
    }
    const bool sync_idle = m_held.empty() && m_synced_ticket + 1 == m_committed_ticket;
    if (appended && sync_idle && !m_hooks.requests_waiting()) {
        // Nothing to overlap the sync with: syncing here saves the two
        // thread hand-offs, which on a busy machine cost more than the sync.
        sync_here();
        m_hooks.release(batch);
        return;
    }
    m_held.push_back(std::move(batch));
    if (appended) m_hooks.request_sync(m_committed_ticket);
}

bool Committer::on_synced(std::uint64_t through, std::exception_ptr error) {
    if (error) {
        // The batches held are committed in SQLite but perhaps not on disk,
        // and later batches may already have read them. Stopping is the one
        // safe answer; after a restart the log holds what was durable.
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("cannot make committed batches durable, stopping: ") + e.what());
        }
    }
    return release_synced(through);
}

bool Committer::release_synced(std::uint64_t through) {
    m_synced_ticket = std::max(m_synced_ticket, through);
    bool released = false;
    while (!m_held.empty() && m_held.front().ticket <= m_synced_ticket) {
        m_hooks.release(m_held.front());
        m_held.pop_front();
        released = true;
    }
    return released;
}

void Committer::sync_here() {
    // Throws when it fails: nothing committed since the last sync may then be
    // shown, and the daemon stops as when the sync thread fails.
    try {
        m_hooks.sync_here();
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("cannot make committed batches durable, stopping: ") + e.what());
    }
    ++m_inline_syncs;
    m_synced_ticket = m_committed_ticket;
}

void Committer::sync_and_release_all() {
    if (m_held.empty()) return;
    sync_here();
    release_synced(m_synced_ticket);
}

}  // namespace botbus::bus
