#include "store/sql/chain_follower.hpp"

#include <stdexcept>
#include <string>

#include "store/sql/statement_helpers.hpp"
#include "store/sql/trimmed_ranges.hpp"

namespace botbus::store {

using detail::ResetOnExit;

namespace {

std::string_view text_view(const sql::Column& column) { return column.getView(); }

}  // namespace

StoredEventFields stored_fields(const sql::Statement& row) {
    StoredEventFields fields;
    fields.seq = static_cast<Seq>(row.getColumn(0).getInt64());
    fields.ts_us = row.getColumn(1).getInt64();
    fields.stream = text_view(row.getColumn(2));
    fields.stream_seq = static_cast<Seq>(row.getColumn(3).getInt64());
    fields.type = text_view(row.getColumn(4));
    fields.producer = text_view(row.getColumn(5));
    if (const auto idem_key = row.getColumn(6); !idem_key.isNull()) fields.idem_key = text_view(idem_key);
    const auto payload = row.getColumn(7);
    const auto* bytes = static_cast<const char*>(payload.getBlob());
    fields.payload = std::string_view(bytes, static_cast<std::size_t>(payload.getBytes()));
    return fields;
}

ChainFollower::ChainFollower(sql::Connection& db)
    // Bounded below by the chain's start: the events before it have no hash,
    // and the scan must not walk back through all of them.
    : m_stored_at_or_below(db,
                           "SELECT seq, hash FROM events WHERE seq <= ?1 AND seq > ?2 AND hash IS NOT NULL"
                           " ORDER BY seq DESC LIMIT 1"),
      m_range_ending_at_or_below(db,
                                 "SELECT last_seq, last_hash FROM trimmed_ranges WHERE last_seq <= ?1"
                                 " AND last_seq > ?2 ORDER BY last_seq DESC LIMIT 1"),
      m_events_between(db,
                       "SELECT seq, ts_us, stream, stream_seq, type, producer, idem_key, payload FROM events"
                       " WHERE seq > ?1 AND seq <= ?2 ORDER BY seq") {}

ChainFollower::Anchor ChainFollower::anchor_at_or_below(Seq seq, Seq chain_start) {
    Anchor anchor{chain_start, k_chain_genesis};
    for (auto* query : {&m_stored_at_or_below, &m_range_ending_at_or_below}) {
        ResetOnExit reset{*query};
        query->bind(1, static_cast<std::int64_t>(seq));
        query->bind(2, static_cast<std::int64_t>(chain_start));
        if (!query->executeStep()) continue;
        const auto found = static_cast<Seq>(query->getColumn(0).getInt64());
        if (found > anchor.seq) anchor = {found, hash_from_column(query->getColumn(1), found)};
    }
    return anchor;
}

std::vector<EventHash> ChainFollower::hashes_at(const std::vector<Seq>& seqs, Seq chain_start) {
    std::vector<EventHash> hashes;
    hashes.reserve(seqs.size());
    Anchor at{0, k_chain_genesis};
    bool walked = false;
    for (const auto seq : seqs) {
        if (seq <= chain_start) {
            hashes.push_back(k_chain_genesis);
            continue;
        }
        // Go on from the previous answer unless a nearer anchor lies between.
        const auto anchor = anchor_at_or_below(seq, chain_start);
        if (!walked || anchor.seq > at.seq || at.seq > seq) at = anchor;
        walked = true;
        if (at.seq < seq) {
            auto& events = m_events_between;
            ResetOnExit reset{events};
            events.bind(1, static_cast<std::int64_t>(at.seq));
            events.bind(2, static_cast<std::int64_t>(seq));
            while (events.executeStep()) {
                const auto fields = stored_fields(events);
                if (fields.seq != at.seq + 1) break;
                at = {fields.seq, chain_hash(at.hash, fields)};
            }
            if (at.seq != seq) {
                throw std::runtime_error("the chain hash of seq " + std::to_string(seq) + " cannot be followed: seq " +
                                         std::to_string(at.seq + 1) +
                                         " is missing from the log and not recorded as trimmed");
            }
        }
        hashes.push_back(at.hash);
    }
    return hashes;
}

EventHash ChainFollower::hash_at(Seq seq, Seq chain_start) { return hashes_at({seq}, chain_start).front(); }

}  // namespace botbus::store
