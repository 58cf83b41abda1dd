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
#include "store/sqlite/rebuild.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/sql/statement_helpers.hpp"
#include "store/sql/trimmed_ranges.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;

std::vector<MessageStream> SqliteStore::message_streams_after(const std::string& after, std::size_t limit) {
    auto& s = *m_message_streams_after;
    ResetOnExit reset{s};
    s.bind(1, after);
    s.bind(2, static_cast<std::int64_t>(limit));
    std::vector<MessageStream> streams;
    while (s.executeStep()) {
        streams.push_back({s.getColumn(0).getString(), static_cast<Seq>(s.getColumn(1).getInt64())});
    }
    return streams;
}

std::vector<MessagePosition> SqliteStore::oldest_messages(const std::string& stream, std::size_t limit) {
    auto& s = *m_oldest_messages;
    ResetOnExit reset{s};
    s.bind(1, stream);
    s.bind(2, static_cast<std::int64_t>(limit));
    std::vector<MessagePosition> rows;
    while (s.executeStep()) {
        rows.push_back({static_cast<Seq>(s.getColumn(0).getInt64()), static_cast<Seq>(s.getColumn(1).getInt64()),
                        s.getColumn(2).getInt64()});
    }
    return rows;
}

Appended SqliteStore::trim_messages(Batch& batch, const std::string& stream, Seq through, std::uint64_t count) {
    if (!m_batch_open) throw std::logic_error("botbus::store: trim_messages outside a batch");
    {
        // The chain must still verify across what is deleted: each deleted
        // seq joins a trimmed range, which keeps the hash the chain resumes
        // from. Read first, recorded after: the ranges' statements must not
        // run while this query is stepping.
        std::vector<Seq> deleted;
        {
            auto& seqs = *m_trim_seqs;
            ResetOnExit reset{seqs};
            seqs.bind(1, stream);
            seqs.bind(2, static_cast<std::int64_t>(through));
            while (seqs.executeStep()) deleted.push_back(static_cast<Seq>(seqs.getColumn(0).getInt64()));
        }
        const auto hashes = m_chain->hashes_at(deleted, m_chain_start);
        for (std::size_t i = 0; i < deleted.size(); ++i) {
            if (deleted[i] > m_chain_start) m_trimmed->record(deleted[i], hashes[i]);
        }
    }
    {
        // Deleting may remove the stream's newest message, which is where its
        // head is read from: the head becomes the stream's floor first.
        auto& raise = *m_raise_floor;
        raise.bind(1, stream);
        exec_and_reset(raise);
    }
    auto& s = *m_delete_messages;
    s.bind(1, stream);
    s.bind(2, static_cast<std::int64_t>(through));
    const auto deleted = static_cast<std::int64_t>(exec_and_reset(s));
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
    SQLite::Statement counted(*m_db,
                              "SELECT event_count, (SELECT COUNT(*) FROM events), message_count,"
                              " (SELECT COUNT(*) FROM events WHERE (stream >= 'ch/' AND stream < 'ch0')"
                              " OR (stream >= 'dm/' AND stream < 'dm0')) FROM log_head WHERE id = 1");
    if (counted.executeStep()) {
        for (const auto& [kept, actual, name] : {std::tuple{0, 1, "event_count"}, std::tuple{2, 3, "message_count"}}) {
            const auto stored = counted.getColumn(kept).getInt64();
            const auto real = counted.getColumn(actual).getInt64();
            if (stored != real && check.differences.size() < max_differences) {
                check.differences.push_back(std::string("log_head ") + name + ": kept " + std::to_string(stored) +
                                            ", the log holds " + std::to_string(real));
            }
        }
    }
    snapshot.commit();
    return check;
}

}  // namespace botbus::store
