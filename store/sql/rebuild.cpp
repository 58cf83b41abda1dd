#include "store/sql/rebuild.hpp"

#include <optional>
#include <utility>

#include "store/sql/migrator.hpp"
#include "store/sql/projector.hpp"
#include "store/sql/statement.hpp"
#include "store/sql/statement_helpers.hpp"
#include "store/store.hpp"

namespace botbus::store {
namespace {

constexpr std::size_t k_replay_page = 1000;

// A projection table and the fixed query that reads it whole, ordered by its
// primary key. Constant texts: nothing is ever spliced into them.
struct ProjectionTable {
    const char* name;
    const char* select_ordered;
};

constexpr ProjectionTable k_tables[] = {
    {"bot_channels", "SELECT * FROM bot_channels ORDER BY name"},
    {"bot_subscriptions", "SELECT * FROM bot_subscriptions ORDER BY bot_id, channel_name"},
    {"bot_mailboxes", "SELECT * FROM bot_mailboxes ORDER BY bot_id"},
    {"mailbox_settled", "SELECT * FROM mailbox_settled ORDER BY bot_id, seq"},
    {"dead_letters", "SELECT * FROM dead_letters ORDER BY seq"},
    {"channel_consumers", "SELECT * FROM channel_consumers ORDER BY bot_id, channel"},
    {"consumer_settled", "SELECT * FROM consumer_settled ORDER BY bot_id, channel, seq"},
    {"mailbox_expiries", "SELECT * FROM mailbox_expiries ORDER BY bot_id, seq"},
    {"workflows", "SELECT * FROM workflows ORDER BY id"},
    {"workflow_runs", "SELECT * FROM workflow_runs ORDER BY id"},
    {"workflow_steps", "SELECT * FROM workflow_steps ORDER BY id"},
    {"acl_rules", "SELECT * FROM acl_rules ORDER BY bot, permission, channel"},
    {"projection_counts", "SELECT * FROM projection_counts ORDER BY name"},
};

// One cell, with its kind, so 1 and '1' differ.
struct Cell {
    sql::StatementImpl::Kind kind = sql::StatementImpl::Kind::null;
    std::string text;  // an integer as text; text and blobs as bytes
    bool operator==(const Cell&) const = default;
};

std::string describe(const Cell& c) {
    using Kind = sql::StatementImpl::Kind;
    if (c.kind == Kind::null) return "NULL";
    if (c.kind == Kind::integer) return c.text;
    if (c.kind == Kind::blob) return "blob of " + std::to_string(c.text.size()) + " bytes";
    if (c.kind == Kind::other) return c.text + " (not an integer, text or blob)";
    return "'" + c.text.substr(0, 80) + (c.text.size() > 80 ? "...'" : "'");
}

// Reads a statement's rows one at a time; nothing once it is done.
class RowReader {
public:
    explicit RowReader(sql::Statement& statement) : m_statement(statement) {}
    std::optional<std::vector<Cell>> next() {
        if (m_done || !m_statement.executeStep()) {
            m_done = true;
            return std::nullopt;
        }
        std::vector<Cell> row;
        for (int i = 0; i < m_statement.getColumnCount(); ++i) {
            const auto column = m_statement.getColumn(i);
            Cell cell;
            cell.kind = column.getKind();
            if (cell.kind == sql::StatementImpl::Kind::integer) {
                cell.text = std::to_string(column.getInt64());
            } else if (cell.kind != sql::StatementImpl::Kind::null) {
                cell.text = column.getString();
            }
            row.push_back(std::move(cell));
        }
        return row;
    }

private:
    sql::Statement& m_statement;
    bool m_done = false;
};

// Replays the log into the projections of `target`, inside its open transaction.
std::size_t replay(Store& source, sql::Connection& target) {
    Projector projector(target);
    // Some projections read the log as they apply (a mailbox's floor moves
    // over the messages in it), so the target gets the log too, each event
    // before it is applied, as the live store does.
    sql::Statement copy(target,
                        "INSERT INTO events (seq, ts_us, stream, stream_seq, type, producer, idem_key, payload)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    std::size_t count = 0;
    Seq after = 0;
    for (;;) {
        const auto events = source.read_range(after, k_replay_page);
        if (events.empty()) break;
        for (const auto& event : events) {
            copy.bind(1, static_cast<std::int64_t>(event.seq));
            copy.bind(2, event.ts_us);
            copy.bind(3, event.stream);
            copy.bind(4, static_cast<std::int64_t>(event.stream_seq));
            copy.bindNoCopy(5, event_type_name(event.type).data());  // names are NUL-terminated literals
            copy.bind(6, event.producer);
            detail::bind_optional(copy, 7, event.idem_key);
            copy.bind(8, event.payload.data(), static_cast<int>(event.payload.size()));
            detail::exec_and_reset(copy);
            projector.apply(event);
        }
        count += events.size();
        after = events.back().seq;
    }
    return count;
}

}  // namespace

const std::vector<std::string>& projection_tables() {
    static const std::vector<std::string> k_names = [] {
        std::vector<std::string> names;
        for (const auto& table : k_tables) names.emplace_back(table.name);
        return names;
    }();
    return k_names;
}

std::size_t rebuild_projections(Store& source, sql::Connection& target,
                                const std::vector<migrations::MigrationSource>& migrations, const std::string& label) {
    migrate(target, migrations, label);
    target.exec("BEGIN");
    try {
        const auto count = replay(source, target);
        target.exec("COMMIT");
        return count;
    } catch (...) {
        try {
            target.exec("ROLLBACK");
        } catch (...) {  // the engine may have rolled back by itself
        }
        throw;
    }
}


std::vector<std::string> compare_projections(sql::Connection& live, sql::Connection& rebuilt,
                                             std::size_t max_differences) {
    std::vector<std::string> differences;
    auto note = [&](std::string line) {
        if (differences.size() < max_differences) differences.push_back(std::move(line));
    };
    for (const auto& [name, select_ordered] : k_tables) {
        const std::string table(name);
        sql::Statement a(live, select_ordered);
        sql::Statement b(rebuilt, select_ordered);
        RowReader rows_a(a);
        RowReader rows_b(b);
        for (std::size_t index = 0;; ++index) {
            const auto row_a = rows_a.next();
            const auto row_b = rows_b.next();
            if (!row_a && !row_b) break;
            const auto key = [&](const std::vector<Cell>& row) { return describe(row.front()); };
            if (!row_a || !row_b) {
                note(table + " row " + std::to_string(index) + ": only " + (row_a ? "live" : "rebuilt") +
                     " has row with key " + key(row_a ? *row_a : *row_b));
                continue;
            }
            if (row_a->size() != row_b->size()) {
                note(table + ": live has " + std::to_string(row_a->size()) + " columns, rebuilt has " +
                     std::to_string(row_b->size()));
                break;
            }
            for (std::size_t i = 0; i < row_a->size(); ++i) {
                if ((*row_a)[i] == (*row_b)[i]) continue;
                note(table + " row " + std::to_string(index) + " (key " + key(*row_a) + ") column " +
                     a.getColumnName(static_cast<int>(i)) + ": live " + describe((*row_a)[i]) + ", rebuilt " +
                     describe((*row_b)[i]));
            }
        }
    }
    return differences;
}

}  // namespace botbus::store
