#include "store/store.hpp"

#include <stdexcept>

namespace botbus::store {

Batch Store::begin() {
    open_batch();
    return Batch(*this);
}

Batch::Batch(Batch&& other) noexcept
    : m_store(other.m_store), m_open(other.m_open), m_events(std::move(other.m_events)) {
    other.m_open = false;
}

Batch::~Batch() { rollback(); }

void Batch::rollback() noexcept {
    if (!m_open) return;
    m_open = false;
    m_store->rollback_batch();
}

Appended Batch::append(EventDraft draft) {
    if (!m_open) throw std::logic_error("botbus::store: append on a closed batch");
    try {
        return m_store->append_to_batch(std::move(draft), m_events);
    } catch (...) {
        // The event may be written while its projections are not: committing
        // the rest would corrupt the log.
        rollback();
        throw;
    }
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
    try {
        m_store->commit_batch();
    } catch (...) {
        rollback();
        throw;
    }
    m_open = false;
}

}  // namespace botbus::store
