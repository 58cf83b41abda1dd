#include "store/sql/mailbox_queries.hpp"

#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::optional_int;
using detail::optional_text;
using detail::ResetOnExit;
using detail::to_sql_int;

namespace {

constexpr const char* k_dead_letter_columns =
    "SELECT seq, message_seq, bot_id, reason, deliveries, dead_at, replayed_seq, channel FROM dead_letters";

}  // namespace

SqlMailboxQueries::SqlMailboxQueries(sql::Connection& db)
    : m_positions(db),
      m_is_settled(db,
                   "SELECT ?2 <= COALESCE((SELECT acked_seq FROM bot_mailboxes WHERE bot_id = ?1), 0)"
                   " OR EXISTS (SELECT 1 FROM mailbox_settled WHERE bot_id = ?1 AND seq = ?2)"),
      m_floor(db, "SELECT acked_seq FROM bot_mailboxes WHERE bot_id = ?1"),
      m_settled_above(db, "SELECT COUNT(*) FROM mailbox_settled WHERE bot_id = ?1 AND seq > ?2"),
      m_oldest_unsettled(db,
                         "SELECT e.ts_us FROM events e WHERE e.stream = 'dm/' || ?1"
                         " AND e.seq > COALESCE((SELECT acked_seq FROM bot_mailboxes WHERE bot_id = ?1), 0)"
                         " AND NOT EXISTS (SELECT 1 FROM mailbox_settled s WHERE s.bot_id = ?1 AND s.seq = e.seq)"
                         " ORDER BY e.seq LIMIT 1"),
      m_dead_letters_all(db, std::string(k_dead_letter_columns) + " WHERE seq > ?1 ORDER BY seq LIMIT ?2"),
      m_dead_letters_of_bot(db, std::string(k_dead_letter_columns) +
                                    " WHERE bot_id = ?3 AND seq > ?1 ORDER BY seq LIMIT ?2"),
      m_dead_letter(db, std::string(k_dead_letter_columns) + " WHERE message_seq = ?1 ORDER BY seq"),
      m_dead_letter_of_bot(db, std::string(k_dead_letter_columns) + " WHERE message_seq = ?1 AND bot_id = ?2"),
      m_delivered_upto(db, "SELECT delivered_upto FROM delivery_marks WHERE bot_id = ?1 AND channel = ?2"),
      m_delivery_count(db, "SELECT deliveries FROM delivery_counts WHERE bot_id = ?1 AND channel = ?2 AND seq = ?3"),
      m_due_expiries(db, "SELECT bot_id, seq FROM mailbox_expiries WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2"),
      m_next_expiry(db, "SELECT MIN(expires_at) FROM mailbox_expiries") {}

std::vector<std::pair<std::string, Seq>> SqlMailboxQueries::due_expiries(std::int64_t now_us, std::size_t limit) {
    ResetOnExit reset{m_due_expiries};
    m_due_expiries.bind(1, now_us);
    m_due_expiries.bind(2, static_cast<std::int64_t>(limit));
    std::vector<std::pair<std::string, Seq>> due;
    while (m_due_expiries.executeStep()) {
        due.emplace_back(m_due_expiries.getColumn(0).getString(), static_cast<Seq>(m_due_expiries.getColumn(1).getInt64()));
    }
    return due;
}

std::optional<std::int64_t> SqlMailboxQueries::next_expiry() {
    ResetOnExit reset{m_next_expiry};
    if (!m_next_expiry.executeStep() || m_next_expiry.getColumn(0).isNull()) return std::nullopt;
    return m_next_expiry.getColumn(0).getInt64();
}

Seq SqlMailboxQueries::delivered_upto(const std::string& bot, const std::string& channel) {
    ResetOnExit reset{m_delivered_upto};
    m_delivered_upto.bind(1, bot);
    m_delivered_upto.bind(2, channel);
    return m_delivered_upto.executeStep() ? static_cast<Seq>(m_delivered_upto.getColumn(0).getInt64()) : 0;
}

std::uint32_t SqlMailboxQueries::delivery_count(const std::string& bot, const std::string& channel, Seq seq) {
    ResetOnExit reset{m_delivery_count};
    m_delivery_count.bind(1, bot);
    m_delivery_count.bind(2, channel);
    m_delivery_count.bind(3, to_sql_int(seq));
    return m_delivery_count.executeStep() ? static_cast<std::uint32_t>(m_delivery_count.getColumn(0).getInt64()) : 0;
}

bool SqlMailboxQueries::is_settled(const std::string& bot, Seq message_seq) {
    ResetOnExit reset{m_is_settled};
    m_is_settled.bind(1, bot);
    m_is_settled.bind(2, to_sql_int(message_seq));
    m_is_settled.executeStep();
    return m_is_settled.getColumn(0).getInt() != 0;
}

std::int64_t SqlMailboxQueries::unsettled_count(const std::string& bot) {
    // Messages above the floor, less those settled one by one above it.
    Seq floor = 0;
    {
        ResetOnExit reset{m_floor};
        m_floor.bind(1, bot);
        if (m_floor.executeStep()) floor = static_cast<Seq>(m_floor.getColumn(0).getInt64());
    }
    std::int64_t settled = 0;
    {
        ResetOnExit reset{m_settled_above};
        m_settled_above.bind(1, bot);
        m_settled_above.bind(2, to_sql_int(floor));
        if (m_settled_above.executeStep()) settled = m_settled_above.getColumn(0).getInt64();
    }
    return m_positions.count_after(stream::mailbox(bot), floor) - settled;
}

std::optional<std::int64_t> SqlMailboxQueries::oldest_unsettled_ts(const std::string& bot) {
    ResetOnExit reset{m_oldest_unsettled};
    m_oldest_unsettled.bind(1, bot);
    if (!m_oldest_unsettled.executeStep()) return std::nullopt;
    return m_oldest_unsettled.getColumn(0).getInt64();
}

DeadLetterRow SqlMailboxQueries::read_dead_letter(sql::Statement& row) {
    DeadLetterRow d;
    d.seq = static_cast<Seq>(row.getColumn(0).getInt64());
    d.message_seq = static_cast<Seq>(row.getColumn(1).getInt64());
    d.bot = row.getColumn(2).getString();
    d.reason = row.getColumn(3).getString();
    d.deliveries = static_cast<std::uint32_t>(row.getColumn(4).getInt64());
    d.dead_at = row.getColumn(5).getInt64();
    if (const auto replayed = optional_int(row.getColumn(6))) d.replayed_seq = static_cast<Seq>(*replayed);
    d.channel = optional_text(row.getColumn(7));
    return d;
}

std::vector<DeadLetterRow> SqlMailboxQueries::dead_letters(const DeadLetterQuery& query) {
    auto& s = query.bot ? m_dead_letters_of_bot : m_dead_letters_all;
    ResetOnExit reset{s};
    s.bind(1, to_sql_int(query.after));
    s.bind(2, to_sql_int(query.limit));
    if (query.bot) s.bind(3, *query.bot);
    std::vector<DeadLetterRow> rows;
    while (s.executeStep()) rows.push_back(read_dead_letter(s));
    return rows;
}

std::vector<DeadLetterRow> SqlMailboxQueries::dead_letters_of(Seq message_seq) {
    ResetOnExit reset{m_dead_letter};
    m_dead_letter.bind(1, to_sql_int(message_seq));
    std::vector<DeadLetterRow> rows;
    while (m_dead_letter.executeStep()) rows.push_back(read_dead_letter(m_dead_letter));
    return rows;
}

std::optional<DeadLetterRow> SqlMailboxQueries::dead_letter(Seq message_seq) {
    auto rows = dead_letters_of(message_seq);
    if (rows.empty()) return std::nullopt;
    return std::move(rows.front());
}

std::optional<DeadLetterRow> SqlMailboxQueries::dead_letter(Seq message_seq, const std::string& bot) {
    ResetOnExit reset{m_dead_letter_of_bot};
    m_dead_letter_of_bot.bind(1, to_sql_int(message_seq));
    m_dead_letter_of_bot.bind(2, bot);
    if (!m_dead_letter_of_bot.executeStep()) return std::nullopt;
    return read_dead_letter(m_dead_letter_of_bot);
}

}  // namespace botbus::store
