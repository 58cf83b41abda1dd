#include "store/sql/chain_check.hpp"

#include <cstring>
#include <vector>

#include "store/errors.hpp"
#include "store/sql/chain_follower.hpp"
#include "store/sql/event_hash.hpp"
#include "store/sql/statement.hpp"
#include "store/sql/trimmed_ranges.hpp"

namespace botbus::store {

std::string range_text(Seq first, Seq last) {
    return first == last ? "seq " + std::to_string(first) : "seqs " + std::to_string(first) + ".." + std::to_string(last);
}

namespace {

// Steps the trimmed ranges in first_seq order alongside the events.
// (A page at a time: PostgreSQL's connection holds a query's whole result.)
class RangeCursor {
public:
    explicit RangeCursor(sql::Connection& db)
        : m_ranges(db,
                   "SELECT first_seq, last_seq, last_hash FROM trimmed_ranges WHERE first_seq > ?"
                   " ORDER BY first_seq LIMIT ?") {
        fetch_page(0);
        step();
    }
    bool valid() const { return m_valid; }
    Seq first() const { return m_current.first; }
    Seq last() const { return m_current.last; }
    const EventHash& hash() const { return m_current.hash; }
    void step() {
        if (m_next == m_page.size() && m_page.size() == k_page) fetch_page(m_page.back().first);
        m_valid = m_next < m_page.size();
        if (m_valid) m_current = m_page[m_next++];
    }

private:
    struct Range {
        Seq first = 0;
        Seq last = 0;
        EventHash hash{};
    };
    void fetch_page(Seq after) {
        m_page.clear();
        m_next = 0;
        m_ranges.reset();
        m_ranges.bind(1, static_cast<std::int64_t>(after));
        m_ranges.bind(2, static_cast<std::int64_t>(k_page));
        while (m_ranges.executeStep()) {
            const auto last = static_cast<Seq>(m_ranges.getColumn(1).getInt64());
            m_page.push_back(Range{static_cast<Seq>(m_ranges.getColumn(0).getInt64()), last,
                                   hash_from_column(m_ranges.getColumn(2), last)});
        }
    }

    static constexpr std::size_t k_page = 1000;
    sql::Statement m_ranges;
    std::vector<Range> m_page;
    std::size_t m_next = 0;
    Range m_current;
    bool m_valid = false;
};

class ChainWalk {
public:
    ChainWalk(sql::Connection& db, LogCheck& check) : m_db(db), m_check(check), m_ranges(db) {
        m_expected = check.chain_start + 1;
        m_checked = check.chain_start;
    }

    void run() {
        constexpr std::int64_t k_page = 10'000;
        sql::Statement events(m_db,
                              "SELECT seq, ts_us, stream, stream_seq, type, producer, idem_key, payload, hash"
                              " FROM events WHERE seq > ? ORDER BY seq LIMIT ?");
        Seq after = m_check.chain_start;
        for (std::int64_t read = k_page; read == k_page;) {
            events.reset();
            events.bind(1, static_cast<std::int64_t>(after));
            events.bind(2, k_page);
            read = 0;
            while (events.executeStep()) {
                ++read;
                after = static_cast<Seq>(events.getColumn(0).getInt64());
                if (!link(events)) return;
            }
        }
        skip_trimmed();
        if (m_expected <= m_check.last_seq) {
            fail(range_text(m_expected, m_check.last_seq) + " missing at the end of the log (log_head says " +
                 std::to_string(m_check.last_seq) + ") and not recorded as trimmed");
            return;
        }
        if (m_check.last_seq > m_check.chain_start) check_head();
    }

private:
    // Past every trimmed range that starts where the walk is.
    void skip_trimmed() {
        while (m_ranges.valid() && m_ranges.first() == m_expected) {
            m_check.trimmed += m_ranges.last() - m_ranges.first() + 1;
            ++m_check.ranges;
            m_expected = m_ranges.last() + 1;
            m_previous = m_ranges.hash();
            m_checked = m_ranges.last();
            m_ranges.step();
        }
    }

    bool link(sql::Statement& row) {
        const auto seq = static_cast<Seq>(row.getColumn(0).getInt64());
        skip_trimmed();
        if (m_ranges.valid() && m_ranges.first() < m_expected) {
            return fail("trimmed range " + range_text(m_ranges.first(), m_ranges.last()) +
                        " overlaps the log before seq " + std::to_string(m_expected));
        }
        if (seq < m_expected) {
            return fail("seq " + std::to_string(seq) + " is in the log although a trimmed range covers it");
        }
        if (seq != m_expected) {
            // Up to the event, or to a trimmed range that starts before it.
            const auto gap_end = m_ranges.valid() && m_ranges.first() < seq ? m_ranges.first() - 1 : seq - 1;
            return fail(range_text(m_expected, gap_end) +
                        " missing from the log and not recorded as trimmed: the chain breaks before seq " +
                        std::to_string(gap_end + 1));
        }
        const auto fields = stored_fields(row);
        const auto computed = chain_hash(m_previous, fields);
        // Only a commit's last event stores its hash (chain_follower.hpp); the
        // events before it in the commit are checked through it.
        if (const auto stored = row.getColumn(8); !stored.isNull()) {
            if (static_cast<std::size_t>(stored.getBytes()) != computed.size() ||
                std::memcmp(stored.getBlob(), computed.data(), computed.size()) != 0) {
                const auto since = range_text(m_checked + 1, seq);
                return fail("seq " + std::to_string(seq) + " (" + std::string(fields.stream) + " #" +
                            std::to_string(fields.stream_seq) + ", " + std::string(fields.type) +
                            "): its stored hash does not match the fields of " + since +
                            " and the link before them: one of those events was changed (or the hash, or the "
                            "link before it)");
            }
            m_checked = seq;
        }
        m_previous = computed;
        m_expected = seq + 1;
        ++m_check.chained;
        return true;
    }

    void check_head() {
        sql::Statement head(m_db, "SELECT last_hash FROM log_head WHERE id = 1");
        head.executeStep();
        const auto stored = head.getColumn(0);
        if (stored.isNull() || static_cast<std::size_t>(stored.getBytes()) != m_previous.size() ||
            std::memcmp(stored.getBlob(), m_previous.data(), m_previous.size()) != 0) {
            fail("log_head's chain hash is not the hash of seq " + std::to_string(m_check.last_seq) +
                 (m_checked < m_check.last_seq
                      ? ": " + range_text(m_checked + 1, m_check.last_seq) + " (not yet checked by a stored hash) or "
                                                                                   "log_head was changed"
                      : ""));
        }
    }

    bool fail(std::string problem) {
        m_check.intact = false;
        m_check.problem = std::move(problem);
        return false;
    }

    sql::Connection& m_db;
    LogCheck& m_check;
    RangeCursor m_ranges;
    Seq m_expected = 1;
    EventHash m_previous = k_chain_genesis;
    Seq m_checked = 0;  // the last seq whose stored hash (or trimmed range, or the chain's start) matched
};

}  // namespace

void check_chain(sql::Connection& db, LogCheck& check) {
    {
        sql::Statement head(db, "SELECT last_seq, chain_start FROM log_head WHERE id = 1");
        if (!head.executeStep()) throw StartupError("log_head row is missing");
        check.last_seq = static_cast<Seq>(head.getColumn(0).getInt64());
        check.chain_start = static_cast<Seq>(head.getColumn(1).getInt64());
    }
    ChainWalk(db, check).run();
}

}  // namespace botbus::store
