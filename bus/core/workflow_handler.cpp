#include "bus/core/workflow_handler.hpp"

#include <set>
#include <utility>
#include <vector>

#include "store/workflow_payloads.hpp"

// The lease table and the lease hooks; the ops live in workflow_ops.cpp,
// run_ops.cpp and step_ops.cpp.
namespace botbus::bus {


// ---- LeaseTable

std::optional<std::int64_t> LeaseTable::expiry(const std::string& run_id) const {
    const auto it = m_expiry.find(run_id);
    if (it == m_expiry.end()) return std::nullopt;
    return it->second;
}

std::optional<std::int64_t> LeaseTable::earliest() const {
    std::optional<std::int64_t> first;
    for (const auto& [run, expires_at] : m_expiry) {
        if (!first || expires_at < *first) first = expires_at;
    }
    return first;
}

// ---- WorkflowHandler

WorkflowHandler::WorkflowHandler(store::Store& store, WorkflowOptions options, const AclIndex& acl)
    : m_store(store),
      m_queries(store.workflows()),
      m_lease_us(options.lease_us),
      m_clock(options.clock ? std::move(options.clock) : std::function<std::int64_t()>(store::now_us)),
      m_acl(acl) {}

store::Appended WorkflowHandler::append(OpContext& ctx, std::string stream, store::EventType type,
                                        const std::string& producer, std::string payload) {
    return ctx.batch.append({std::move(stream), type, producer, std::nullopt, std::move(payload)});
}
// ---- leases

std::size_t WorkflowHandler::expire_leases(store::Batch& batch, std::int64_t now_us) {
    // Reconcile with the projection first: a lease whose run is not running
    // goes; a running run without a lease (its lease change was rolled back)
    // gets a fresh one rather than being declared crashed.
    const auto running = m_queries.running_run_ids();
    const std::set<std::string> running_set(running.begin(), running.end());
    std::vector<std::string> stale;
    for (const auto& [run_id, expires_at] : m_leases.all()) {
        if (!running_set.contains(run_id)) stale.push_back(run_id);
    }
    for (const auto& run_id : stale) m_leases.release(run_id);
    for (const auto& run_id : running) {
        if (!m_leases.expiry(run_id)) m_leases.grant(run_id, now_us + m_lease_us);
    }

    std::vector<std::string> expired;
    for (const auto& [run_id, expires_at] : m_leases.all()) {
        if (expires_at <= now_us) expired.push_back(run_id);
    }
    for (const auto& run_id : expired) {
        const auto run = m_queries.run(run_id);
        store::RunCrashed payload{run_id, m_queries.running_attempt_ids(run_id),
                                  run ? run->lease_owner : std::nullopt};
        batch.append({store::stream::run(run_id), store::EventType::run_crashed, std::string(k_daemon_producer),
                      std::nullopt, store::encode_payload(payload)});
        m_leases.release(run_id);
    }
    return expired.size();
}

void WorkflowHandler::grant_grace(std::int64_t now_us) {
    m_leases.clear();
    for (const auto& run_id : m_queries.running_run_ids()) m_leases.grant(run_id, now_us + m_lease_us);
}
}  // namespace botbus::bus
