// SqliteStore's maintenance operations: the retention primitives Trimmer
// uses, and the projection check behind `botbusd rebuild`.
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <stdexcept>
#include <string>
#include <tuple>

#include "store/payloads.hpp"
#include "store/sql/chain_follower.hpp"
#include "store/sql/log_table.hpp"
#include "store/sqlite/rebuild.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/sql/statement_helpers.hpp"
#include "store/sql/trimmed_ranges.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;

std::vector<MessageStream> SqliteStore::message_streams_after(const std::string& after, std::size_t limit) {
    return m_log->message_streams_after(after, limit);
}

std::vector<MessagePosition> SqliteStore::oldest_messages(const std::string& stream, std::size_t limit) {
    return m_log->oldest_messages(stream, limit);
}

Appended SqliteStore::trim_messages(Batch& batch, const std::string& stream, Seq through, std::uint64_t count) {
    if (!m_batch_open) throw std::logic_error("botbus::store: trim_messages outside a batch");
    {
        // The chain must still verify across what is deleted: each deleted
        // seq joins a trimmed range, which keeps the hash the chain resumes
        // from. Read first, recorded after: the ranges' statements must not
        // run while this query is stepping.
        const auto deleted = m_log->messages_through(stream, through);
        const auto hashes = m_chain->hashes_at(deleted, m_chain_start);
        for (std::size_t i = 0; i < deleted.size(); ++i) {
            if (deleted[i] > m_chain_start) m_trimmed->record(deleted[i], hashes[i]);
        }
    }
    const auto deleted = m_log->delete_messages_through(stream, through);
    m_batch_counts.events -= deleted;
    m_batch_counts.messages -= deleted;
    return batch.append({std::string(stream::k_retention), EventType::stream_trimmed, "botbusd",
                         std::nullopt, encode_payload(StreamTrimmed{stream, through, count})});
}

ProjectionCheck SqliteStore::verify_projections(std::size_t max_differences) {
    if (m_batch_open) throw std::logic_error("botbus::store: verify_projections with a batch open");
    SQLite::Database rebuilt(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ProjectionCheck check;
    // One read transaction (a deferred BEGIN that only reads): the log and
    // the live projections are read from the same snapshot even while a
    // daemon keeps appending. Rolled back, harmlessly, if anything throws.
    SQLite::Transaction snapshot(*m_db);
    check.replayed = rebuild_projections(*this, rebuilt);
    check.differences = compare_projections(*m_db, rebuilt, max_differences);
    // The counts stats reports, against the log they count (a full count:
    // this runs offline, or beside the daemon on its own connection).
    for (auto& line : m_log->count_differences()) {
        if (check.differences.size() < max_differences) check.differences.push_back(std::move(line));
    }
    snapshot.commit();
    return check;
}

}  // namespace botbus::store
