#include "store/sql/trimmed_ranges.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;

EventHash hash_from_column(const sql::Column& column, Seq seq) {
    EventHash hash{};
    if (column.isNull() || static_cast<std::size_t>(column.getBytes()) != hash.size()) {
        throw std::runtime_error("the chain hash stored for seq " + std::to_string(seq) + " is not 32 bytes");
    }
    std::memcpy(hash.data(), column.getBlob(), hash.size());
    return hash;
}

TrimmedRanges::TrimmedRanges(sql::Connection& db)
    : m_ending_at(db, "SELECT first_seq, last_hash FROM trimmed_ranges WHERE last_seq = ?"),
      m_starting_at(db, "SELECT last_seq, last_hash FROM trimmed_ranges WHERE first_seq = ?"),
      m_delete(db, "DELETE FROM trimmed_ranges WHERE first_seq = ?"),
      m_insert(db, "INSERT INTO trimmed_ranges (first_seq, last_seq, last_hash) VALUES (?, ?, ?)") {}

void TrimmedRanges::record(Seq seq, const EventHash& hash) {
    Seq first = seq;
    Seq last = seq;
    EventHash last_hash = hash;
    {
        ResetOnExit reset{m_ending_at};
        m_ending_at.bind(1, static_cast<std::int64_t>(seq - 1));
        if (m_ending_at.executeStep()) first = static_cast<Seq>(m_ending_at.getColumn(0).getInt64());
    }
    {
        ResetOnExit reset{m_starting_at};
        m_starting_at.bind(1, static_cast<std::int64_t>(seq + 1));
        if (m_starting_at.executeStep()) {
            last = static_cast<Seq>(m_starting_at.getColumn(0).getInt64());
            last_hash = hash_from_column(m_starting_at.getColumn(1), last);
        }
    }
    if (first != seq) {
        m_delete.bind(1, static_cast<std::int64_t>(first));
        exec_and_reset(m_delete);
    }
    if (last != seq) {
        m_delete.bind(1, static_cast<std::int64_t>(seq + 1));
        exec_and_reset(m_delete);
    }
    m_insert.bind(1, static_cast<std::int64_t>(first));
    m_insert.bind(2, static_cast<std::int64_t>(last));
    m_insert.bind(3, last_hash.data(), static_cast<int>(last_hash.size()));
    exec_and_reset(m_insert);
}

std::optional<EventHash> TrimmedRanges::hash_ending_at(Seq seq) {
    ResetOnExit reset{m_ending_at};
    m_ending_at.bind(1, static_cast<std::int64_t>(seq));
    if (!m_ending_at.executeStep()) return std::nullopt;
    return hash_from_column(m_ending_at.getColumn(1), seq);
}

}  // namespace botbus::store
