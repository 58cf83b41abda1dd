// SqliteStore's savepoints: one request's part of a batch, undone alone
// (store.hpp, Batch::savepoint).
//
// Operation: Batch::savepoint() costs nothing here until the request's first
// append; that append records a mark (the batch's seq, and each stream head
// as the request first changes it). Most requests append only log rows whose
// projection writes nothing (message.published): their undo is deleting
// those rows, so no SQL SAVEPOINT is taken for them, which keeps group commit
// as fast as without savepoints (SQLite copies every page a savepoint's
// statements touch into its sub-journal). The SAVEPOINT is taken before the
// request's first append whose projection writes. A rollback puts the marked
// memory back, returns to the SAVEPOINT if there is one, and deletes the
// request's log rows left below it.
// Concurrency: as SqliteStore.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <stdexcept>

#include "store/sql/projector.hpp"
#include "store/sqlite/sqlite_store.hpp"

#include "store/sqlite/sqlite_connection.hpp"
#include "store/sql/statement.hpp"
#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::exec_and_reset;

namespace {

// Appends whose projection writes nothing: the log row is all there is to undo.
bool writes_log_row_only(EventType type) { return type == EventType::message_published; }

}  // namespace

void SqliteStore::prepare_savepoint_statements() {
    auto& db = *m_sql;
    m_savepoint_begin = std::make_unique<sql::Statement>(db, "SAVEPOINT request");
    m_savepoint_release = std::make_unique<sql::Statement>(db, "RELEASE request");
    m_savepoint_rollback = std::make_unique<sql::Statement>(db, "ROLLBACK TO request");
    m_delete_events_after = std::make_unique<sql::Statement>(db, "DELETE FROM events WHERE seq > ?");
}

void SqliteStore::check_transaction() const {
    // On some I/O and memory errors (a failed read included) SQLite rolls
    // the whole transaction back by itself. Writing on would autocommit each
    // statement: events without their batch, log_head ahead of the log.
    if (sqlite3_get_autocommit(m_db->getHandle()) != 0) {
        throw std::runtime_error("SQLite rolled the batch's transaction back after an error; nothing of it was applied");
    }
}

void SqliteStore::open_savepoint() {
    if (!m_batch_open) throw std::logic_error("botbus::store: savepoint outside a batch");
    if (m_savepoint) throw std::logic_error("botbus::store: a savepoint is already open");
    check_transaction();
    m_savepoint = SavepointMark{m_batch_last_seq, m_batch_last_hash, m_batch_counts, {}, false};
}

void SqliteStore::before_savepoint_append(EventType type) {
    if (m_savepoint->sql_taken || writes_log_row_only(type)) return;
    check_transaction();  // a SAVEPOINT outside a transaction would start one
    exec_and_reset(*m_savepoint_begin);
    m_savepoint->sql_taken = true;
}

void SqliteStore::release_savepoint() {
    if (!m_savepoint) throw std::logic_error("botbus::store: no savepoint to release");
    const bool sql_taken = m_savepoint->sql_taken;
    m_savepoint.reset();
    if (sql_taken) exec_and_reset(*m_savepoint_release);
}

bool SqliteStore::rollback_to_savepoint() noexcept {
    // With nothing written since the savepoint there is nothing to undo, but
    // the request's reads may still have cost the transaction.
    if (!m_savepoint) return m_batch_open && sqlite3_get_autocommit(m_db->getHandle()) == 0;
    auto mark = std::move(*m_savepoint);
    m_savepoint.reset();
    // The projector's memory of channels may name one created since the
    // savepoint (or miss one it deleted): it starts over, as after a
    // rolled-back batch.
    m_projector->rolled_back();
    m_batch_last_seq = mark.last_seq;
    m_batch_last_hash = mark.last_hash;
    m_batch_counts = mark.counts;
    for (auto undo = mark.heads.rbegin(); undo != mark.heads.rend(); ++undo) {
        const auto it = m_batch_heads.find(*undo->first);
        if (undo->second) {
            it->second = *undo->second;
        } else {
            m_batch_heads.erase(it);  // after find: erasing by a key that lives in the node is unsafe
        }
    }
    // The transaction may be gone (check_transaction): nothing to return to.
    if (sqlite3_get_autocommit(m_db->getHandle()) != 0) return false;
    try {
        if (mark.sql_taken) {
            exec_and_reset(*m_savepoint_rollback);
            exec_and_reset(*m_savepoint_release);  // ROLLBACK TO keeps the savepoint open
        }
        // The log rows appended before the SAVEPOINT (or without one; the
        // mark exists only once an append was tried). The statement is
        // atomic: it deletes them all or, failing, none.
        m_delete_events_after->bind(1, static_cast<std::int64_t>(mark.last_seq));
        exec_and_reset(*m_delete_events_after);
    } catch (...) {
        return false;
    }
    return true;
}

}  // namespace botbus::store
