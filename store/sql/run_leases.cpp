#include "store/sql/run_leases.hpp"

#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;
using detail::to_sql_int;

RunLeases::RunLeases(sql::Connection& db)
    : m_put(db,
            "INSERT INTO run_leases (run_id, expires_at) VALUES (?1, ?2)"
            " ON CONFLICT (run_id) DO UPDATE SET expires_at = excluded.expires_at"),
      m_drop(db, "DELETE FROM run_leases WHERE run_id = ?"),
      m_extend(db, "UPDATE run_leases SET expires_at = ?1 WHERE expires_at < ?1"),
      m_add_missing(db,
                    "INSERT INTO run_leases (run_id, expires_at)"
                    " SELECT r.id, ?1 FROM workflow_runs AS r WHERE r.status = 'running'"
                    " AND NOT EXISTS (SELECT 1 FROM run_leases AS l WHERE l.run_id = r.id)"),
      m_drop_stale(db,
                   "DELETE FROM run_leases WHERE NOT EXISTS (SELECT 1 FROM workflow_runs AS r"
                   " WHERE r.id = run_leases.run_id AND r.status = 'running')"),
      m_expiry(db, "SELECT expires_at FROM run_leases WHERE run_id = ?"),
      m_earliest(db, "SELECT expires_at FROM run_leases ORDER BY expires_at LIMIT 1"),
      m_due(db, "SELECT run_id FROM run_leases WHERE expires_at <= ?1 ORDER BY expires_at, run_id LIMIT ?2") {}

void RunLeases::put(const std::string& run_id, std::int64_t expires_at) {
    m_put.bind(1, run_id);
    m_put.bind(2, expires_at);
    exec_and_reset(m_put);
}

void RunLeases::drop(const std::string& run_id) {
    m_drop.bind(1, run_id);
    exec_and_reset(m_drop);
}

void RunLeases::grant_grace(std::int64_t expires_at) {
    exec_and_reset(m_drop_stale);
    m_extend.bind(1, expires_at);
    exec_and_reset(m_extend);
    m_add_missing.bind(1, expires_at);
    exec_and_reset(m_add_missing);
}

std::optional<std::int64_t> RunLeases::expiry(const std::string& run_id) {
    ResetOnExit reset{m_expiry};
    m_expiry.bind(1, run_id);
    if (!m_expiry.executeStep()) return std::nullopt;
    return m_expiry.getColumn(0).getInt64();
}

std::optional<std::int64_t> RunLeases::earliest() {
    ResetOnExit reset{m_earliest};
    if (!m_earliest.executeStep()) return std::nullopt;
    return m_earliest.getColumn(0).getInt64();
}

std::vector<std::string> RunLeases::due(std::int64_t now_us, std::size_t limit) {
    ResetOnExit reset{m_due};
    m_due.bind(1, now_us);
    m_due.bind(2, to_sql_int(limit));
    std::vector<std::string> runs;
    while (m_due.executeStep()) runs.push_back(m_due.getColumn(0).getString());
    return runs;
}

}  // namespace botbus::store
