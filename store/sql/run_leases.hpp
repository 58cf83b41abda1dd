// The leases of running runs (run_leases, migration 0014; PostgreSQL's
// 0002): until when each run's executor holds it. Written beside the log in
// the batch of the request that grants, renews or ends a lease, read by the
// lease check. In a table rather than the daemon's memory so that several
// nodes on one log share them: an executor may heartbeat through any node.
// Concurrency: single-threaded, on its store's connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"

namespace botbus::store {

class RunLeases {
public:
    explicit RunLeases(sql::Connection& db);

    // Grants or renews: the run is held until `expires_at` (UTC microseconds).
    void put(const std::string& run_id, std::int64_t expires_at);
    void drop(const std::string& run_id);
    // Every running run is held until at least `expires_at` (one without a
    // row gets one), and the rows of runs that are not running go.
    void grant_grace(std::int64_t expires_at);

    std::optional<std::int64_t> expiry(const std::string& run_id);
    std::optional<std::int64_t> earliest();
    // Runs whose lease ran out at or before `now_us`, earliest first.
    std::vector<std::string> due(std::int64_t now_us, std::size_t limit);

private:
    sql::Statement m_put;
    sql::Statement m_drop;
    sql::Statement m_extend;
    sql::Statement m_add_missing;
    sql::Statement m_drop_stale;
    sql::Statement m_expiry;
    sql::Statement m_earliest;
    sql::Statement m_due;
};

}  // namespace botbus::store
