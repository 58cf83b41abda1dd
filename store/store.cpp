#include "store/store.hpp"

#include <cstddef>
#include <stdexcept>

namespace botbus::store {

Batch Store::begin() {
    open_batch();
    return Batch(*this);
}

Batch::Batch(Batch&& other) noexcept
    : m_store(other.m_store),
      m_open(other.m_open),
      m_events(std::move(other.m_events)),
      m_in_savepoint(other.m_in_savepoint),
      m_savepoint_taken(other.m_savepoint_taken),
      m_savepoint_failed(other.m_savepoint_failed),
      m_savepoint_events(other.m_savepoint_events) {
    other.m_open = false;
    other.m_in_savepoint = false;
}

Batch::~Batch() { rollback(); }

void Batch::rollback() noexcept {
    m_in_savepoint = false;
    if (!m_open) return;
    m_open = false;
    m_store->rollback_batch();
}

void Batch::put_lease(const std::string& run_id, std::int64_t expires_at) {
    if (!m_open) throw std::logic_error("botbus::store: put_lease on a closed batch");
    m_store->put_lease_in_batch(run_id, expires_at);
}

void Batch::drop_lease(const std::string& run_id) {
    if (!m_open) throw std::logic_error("botbus::store: drop_lease on a closed batch");
    m_store->drop_lease_in_batch(run_id);
}

void Batch::grant_lease_grace(std::int64_t expires_at) {
    if (!m_open) throw std::logic_error("botbus::store: grant_lease_grace on a closed batch");
    m_store->grant_lease_grace_in_batch(expires_at);
}

void Batch::record_deliveries(const DeliveryRecord& record) {
    if (!m_open) throw std::logic_error("botbus::store: record_deliveries on a closed batch");
    m_store->record_deliveries_in_batch(record);
}

Appended Batch::append(EventDraft draft) {
    if (!m_open) throw std::logic_error("botbus::store: append on a closed batch");
    if (m_savepoint_failed) throw std::logic_error("botbus::store: append after a failed append in a savepoint");
    try {
        if (m_in_savepoint && !m_savepoint_taken) {
            m_store->open_savepoint();
            m_savepoint_taken = true;
        }
        return m_store->append_to_batch(std::move(draft), m_events);
    } catch (...) {
        // The event may be written while its projections are not: committing
        // it would corrupt the log. Inside a savepoint only its part goes.
        if (m_in_savepoint) {
            m_savepoint_failed = true;
        } else {
            rollback();
        }
        throw;
    }
}

void Batch::savepoint() {
    if (!m_open) throw std::logic_error("botbus::store: savepoint on a closed batch");
    if (m_in_savepoint) throw std::logic_error("botbus::store: a savepoint is already open");
    m_in_savepoint = true;
    m_savepoint_taken = false;
    m_savepoint_failed = false;
    m_savepoint_events = m_events.size();
}

void Batch::release_savepoint() {
    if (!m_open || !m_in_savepoint) throw std::logic_error("botbus::store: no savepoint to release");
    if (m_savepoint_failed) throw std::logic_error("botbus::store: releasing a savepoint whose append failed");
    m_in_savepoint = false;
    if (!m_savepoint_taken) return;  // nothing was appended: nothing to release
    try {
        m_store->release_savepoint();
    } catch (...) {
        rollback();
        throw;
    }
}

bool Batch::rollback_to_savepoint() noexcept {
    if (!m_open || !m_in_savepoint) return m_open;
    m_in_savepoint = false;
    m_savepoint_failed = false;
    m_events.erase(m_events.begin() + static_cast<std::ptrdiff_t>(m_savepoint_events), m_events.end());
    // Asked even when nothing was appended: a failed read may have cost the
    // backend its transaction.
    if (m_store->rollback_to_savepoint()) return true;
    rollback();
    return false;
}

std::optional<Appended> Batch::find_idempotent(const std::string& producer, const std::string& key) {
    return m_store->find_idempotent_in_batch(producer, key);
}

void Batch::commit() {
    commit_unsynced();
    m_store->sync();
}

void Batch::commit_unsynced() {
    if (!m_open) throw std::logic_error("botbus::store: commit on a closed batch");
    if (m_in_savepoint) {
        rollback();
        throw std::logic_error("botbus::store: commit with a savepoint open");
    }
    try {
        m_store->commit_batch();
    } catch (...) {
        rollback();
        throw;
    }
    m_open = false;
}

}  // namespace botbus::store
