#include "bus/core/workflow_handler.hpp"

#include <utility>
#include <vector>

#include "store/workflow_payloads.hpp"

// The lease table and the lease hooks; the ops live in workflow_ops.cpp,
// run_ops.cpp and step_ops.cpp.
namespace botbus::bus {


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
    // A page at a time: the server comes back at once while more are due.
    constexpr std::size_t k_page = 1000;
    std::size_t crashed = 0;
    for (const auto& run_id : m_queries.leases_due(now_us, k_page)) {
        batch.drop_lease(run_id);
        const auto run = m_queries.run(run_id);
        if (!run || run->status != store::run_status::k_running) continue;  // ended by a batch that kept its row: nothing to crash
        store::RunCrashed payload{run_id, m_queries.running_attempt_ids(run_id), run->lease_owner};
        batch.append({store::stream::run(run_id), store::EventType::run_crashed, std::string(k_daemon_producer),
                      std::nullopt, store::encode_payload(payload)});
        ++crashed;
    }
    return crashed;
}

void WorkflowHandler::grant_grace(store::Batch& batch, std::int64_t now_us) { batch.grant_lease_grace(now_us + m_lease_us); }

}  // namespace botbus::bus
