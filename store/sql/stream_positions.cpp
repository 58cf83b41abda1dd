#include "store/sql/stream_positions.hpp"

#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::ResetOnExit;
using detail::to_sql_int;

StreamPositions::StreamPositions(sql::Connection& db)
    : m_newest(db, "SELECT seq, stream_seq FROM events WHERE stream = ?1 ORDER BY seq DESC LIMIT 1"),
      m_oldest(db, "SELECT seq, stream_seq FROM events WHERE stream = ?1 ORDER BY seq LIMIT 1"),
      m_at_or_below(db,
                    "SELECT seq, stream_seq FROM events WHERE stream = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1"),
      m_at_or_after(db, "SELECT seq, stream_seq FROM events WHERE stream = ?1 AND seq >= ?2 ORDER BY seq LIMIT 1") {}

std::optional<StreamPositions::Position> StreamPositions::step(sql::Statement& statement) {
    ResetOnExit reset{statement};
    if (!statement.executeStep()) return std::nullopt;
    return Position{static_cast<Seq>(statement.getColumn(0).getInt64()),
                    static_cast<Seq>(statement.getColumn(1).getInt64())};
}

std::optional<StreamPositions::Position> StreamPositions::newest(const std::string& stream) {
    m_newest.bind(1, stream);
    return step(m_newest);
}

std::optional<StreamPositions::Position> StreamPositions::oldest(const std::string& stream) {
    m_oldest.bind(1, stream);
    return step(m_oldest);
}

std::optional<StreamPositions::Position> StreamPositions::newest_at_or_below(const std::string& stream, Seq seq) {
    m_at_or_below.bind(1, stream);
    m_at_or_below.bind(2, to_sql_int(seq));
    return step(m_at_or_below);
}

std::optional<StreamPositions::Position> StreamPositions::first_at_or_after(const std::string& stream, Seq seq) {
    m_at_or_after.bind(1, stream);
    m_at_or_after.bind(2, to_sql_int(seq));
    return step(m_at_or_after);
}

std::int64_t StreamPositions::count_after(const std::string& stream, Seq after) {
    const auto last = newest(stream);
    if (!last || last->seq <= after) return 0;
    // The messages up to `after` end at this stream seq (none left: just
    // before the oldest still in the log).
    Seq below = 0;
    if (const auto at = newest_at_or_below(stream, after)) {
        below = at->stream_seq;
    } else if (const auto first = oldest(stream)) {
        below = first->stream_seq - 1;
    }
    return static_cast<std::int64_t>(last->stream_seq - below);
}

std::optional<Seq> StreamPositions::nth_newest(const std::string& stream, std::uint64_t count) {
    if (count == 0) return std::nullopt;
    const auto last = newest(stream);
    const auto first = oldest(stream);
    if (!last || !first || last->stream_seq - first->stream_seq + 1 < count) return std::nullopt;
    const Seq wanted = last->stream_seq - (count - 1);
    // Bisect on the seq: the first message at or after `mid` tells which
    // side of it the wanted stream seq lies on.
    Seq lo = first->seq;
    Seq hi = last->seq;
    while (lo <= hi) {
        const Seq mid = lo + (hi - lo) / 2;
        const auto at = first_at_or_after(stream, mid);
        if (!at) break;  // cannot happen while mid <= last->seq
        if (at->stream_seq == wanted) return at->seq;
        if (at->stream_seq < wanted) {
            lo = at->seq + 1;
        } else {
            hi = mid - 1;
        }
    }
    return std::nullopt;  // stream seqs with a gap: a log edited by hand
}

}  // namespace botbus::store
