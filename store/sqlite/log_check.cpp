#include "store/sqlite/log_check.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <cstring>
#include <filesystem>

#include "store/errors.hpp"
#include "store/sql/chain_follower.hpp"
#include "store/sqlite/sqlite_connection.hpp"
#include "store/sql/statement.hpp"
#include "store/sql/event_hash.hpp"
#include "store/sqlite/seq_record.hpp"
#include "store/sql/trimmed_ranges.hpp"

namespace botbus::store {
namespace {

std::string range_text(Seq first, Seq last) {
    return first == last ? "seq " + std::to_string(first) : "seqs " + std::to_string(first) + ".." + std::to_string(last);
}

// Steps the trimmed ranges in first_seq order alongside the events.
class RangeCursor {
public:
    explicit RangeCursor(sql::Connection& db)
        : m_ranges(db, "SELECT first_seq, last_seq, last_hash FROM trimmed_ranges ORDER BY first_seq") {
        step();
    }
    bool valid() const { return m_valid; }
    Seq first() const { return m_first; }
    Seq last() const { return m_last; }
    const EventHash& hash() const { return m_hash; }
    void step() {
        m_valid = m_ranges.executeStep();
        if (!m_valid) return;
        m_first = static_cast<Seq>(m_ranges.getColumn(0).getInt64());
        m_last = static_cast<Seq>(m_ranges.getColumn(1).getInt64());
        m_hash = hash_from_column(m_ranges.getColumn(2), m_last);
    }

private:
    sql::Statement m_ranges;
    bool m_valid = false;
    Seq m_first = 0;
    Seq m_last = 0;
    EventHash m_hash{};
};

class ChainWalk {
public:
    ChainWalk(sql::Connection& db, LogCheck& check) : m_db(db), m_check(check), m_ranges(db) {
        m_expected = check.chain_start + 1;
        m_checked = check.chain_start;
    }

    void run() {
        sql::Statement events(m_db,
                                 "SELECT seq, ts_us, stream, stream_seq, type, producer, idem_key, payload, hash"
                                 " FROM events WHERE seq > ? ORDER BY seq");
        events.bind(1, static_cast<std::int64_t>(m_check.chain_start));
        while (events.executeStep()) {
            if (!link(events)) return;
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

LogCheck check_log(const std::string& database_path) {
    if (!std::filesystem::exists(database_path)) throw StartupError("no database at " + database_path);
    LogCheck check;
    check.recorded_seq = SeqRecord::read_file(SeqRecord::path_for(database_path));
    try {
        SQLite::Database db(database_path, SQLite::OPEN_READONLY);
        db.setBusyTimeout(5000);
        SQLite::Transaction snapshot(db);  // deferred: one read snapshot for the whole walk
        {
            SQLite::Statement head(db, "SELECT last_seq, chain_start FROM log_head WHERE id = 1");
            if (!head.executeStep()) throw StartupError(database_path + ": log_head row is missing");
            check.last_seq = static_cast<Seq>(head.getColumn(0).getInt64());
            check.chain_start = static_cast<Seq>(head.getColumn(1).getInt64());
        }
        sql::SqliteConnection connection(db);
        ChainWalk(connection, check).run();
        snapshot.commit();
    } catch (const SQLite::Exception& e) {
        const std::string what = e.what();
        const bool old_schema = what.find("no such") != std::string::npos;
        throw StartupError(database_path + ": cannot read the log (" + what + ")" +
                           (old_schema ? "; a database from before the hash chain (migration 0008) is migrated "
                                         "by starting botbusd once"
                                       : ""));
    }
    if (check.intact && check.recorded_seq && *check.recorded_seq > check.last_seq) {
        check.intact = false;
        check.problem = range_text(check.last_seq + 1, *check.recorded_seq) +
                        " missing: the log ends at seq " + std::to_string(check.last_seq) + " but " +
                        SeqRecord::path_for(database_path) + " records seqs up to " +
                        std::to_string(*check.recorded_seq) + " as acknowledged";
    }
    return check;
}

}  // namespace botbus::store
