#include "store/sqlite/consumer_queries.hpp"

#include <limits>

#include "store/sqlite/statement_helpers.hpp"

namespace botbus::store {

using detail::ResetOnExit;
using detail::to_sql_int;

namespace {

// unsettled: messages above the floor, less those settled one by one.
constexpr const char* k_consumer_columns =
    "SELECT c.bot_id, c.channel, c.acked_seq, c.created_at,"
    " (SELECT COUNT(*) FROM events e WHERE e.stream = 'ch/' || c.channel AND e.seq > c.acked_seq"
    "  AND e.type = 'message.published')"
    " - (SELECT COUNT(*) FROM consumer_settled s WHERE s.bot_id = c.bot_id AND s.channel = c.channel),"
    " COALESCE((SELECT last_seq FROM streams WHERE stream = 'ch/' || c.channel), 0)"
    " FROM channel_consumers c";

}  // namespace

SqliteConsumerQueries::SqliteConsumerQueries(SQLite::Database& db)
    : m_consumer(db, std::string(k_consumer_columns) + " WHERE c.bot_id = ?1 AND c.channel = ?2"),
      m_floor(db, "SELECT acked_seq FROM channel_consumers WHERE bot_id = ? AND channel = ?"),
      m_all(db, std::string(k_consumer_columns) + " ORDER BY c.channel, c.bot_id"),
      m_of_bot(db, std::string(k_consumer_columns) + " WHERE c.bot_id = ?1 ORDER BY c.channel, c.bot_id"),
      m_of_channel(db, std::string(k_consumer_columns) + " WHERE c.channel = ?1 ORDER BY c.channel, c.bot_id"),
      m_is_settled(db,
                   "SELECT ?3 <= COALESCE((SELECT acked_seq FROM channel_consumers WHERE bot_id = ?1 AND"
                   " channel = ?2), 0) OR EXISTS (SELECT 1 FROM consumer_settled WHERE bot_id = ?1 AND"
                   " channel = ?2 AND seq = ?3)"),
      m_head(db, "SELECT COALESCE((SELECT last_seq FROM streams WHERE stream = 'ch/' || ?1), 0)"),
      m_first_at(db,
                 "SELECT seq FROM events WHERE stream = 'ch/' || ?1 AND type = 'message.published' AND ts_us >= ?2"
                 " ORDER BY seq LIMIT 1"),
      m_nth_last(db,
                 "SELECT seq FROM events WHERE stream = 'ch/' || ?1 AND type = 'message.published'"
                 " ORDER BY seq DESC LIMIT 1 OFFSET ?2") {}

ConsumerRow SqliteConsumerQueries::read(SQLite::Statement& row) {
    ConsumerRow c;
    c.bot = row.getColumn(0).getString();
    c.channel = row.getColumn(1).getString();
    c.acked = static_cast<Seq>(row.getColumn(2).getInt64());
    c.created_at = row.getColumn(3).getInt64();
    c.unsettled = row.getColumn(4).getInt64();
    c.head = static_cast<Seq>(row.getColumn(5).getInt64());
    return c;
}

std::optional<ConsumerRow> SqliteConsumerQueries::consumer(const std::string& bot, const std::string& channel) {
    ResetOnExit reset{m_consumer};
    m_consumer.bind(1, bot);
    m_consumer.bind(2, channel);
    if (!m_consumer.executeStep()) return std::nullopt;
    return read(m_consumer);
}

std::vector<ConsumerRow> SqliteConsumerQueries::consumers(const std::optional<std::string>& bot,
                                                    const std::optional<std::string>& channel) {
    auto& s = bot ? m_of_bot : channel ? m_of_channel : m_all;
    ResetOnExit reset{s};
    if (bot) s.bind(1, *bot);
    if (!bot && channel) s.bind(1, *channel);
    std::vector<ConsumerRow> rows;
    while (s.executeStep()) {
        auto row = read(s);
        if (!channel || row.channel == *channel) rows.push_back(std::move(row));
    }
    return rows;
}

bool SqliteConsumerQueries::is_settled(const std::string& bot, const std::string& channel, Seq message_seq) {
    ResetOnExit reset{m_is_settled};
    m_is_settled.bind(1, bot);
    m_is_settled.bind(2, channel);
    m_is_settled.bind(3, to_sql_int(message_seq));
    m_is_settled.executeStep();
    return m_is_settled.getColumn(0).getInt() != 0;
}

Seq SqliteConsumerQueries::head(const std::string& channel) {
    ResetOnExit reset{m_head};
    m_head.bind(1, channel);
    m_head.executeStep();
    return static_cast<Seq>(m_head.getColumn(0).getInt64());
}

std::optional<Seq> SqliteConsumerQueries::before_time(const std::string& channel, std::int64_t ts_us) {
    ResetOnExit reset{m_first_at};
    m_first_at.bind(1, channel);
    m_first_at.bind(2, ts_us);
    if (!m_first_at.executeStep()) return std::nullopt;
    return static_cast<Seq>(m_first_at.getColumn(0).getInt64()) - 1;
}

std::optional<Seq> SqliteConsumerQueries::floor(const std::string& bot, const std::string& channel) {
    ResetOnExit reset{m_floor};
    m_floor.bind(1, bot);
    m_floor.bind(2, channel);
    if (!m_floor.executeStep()) return std::nullopt;
    return static_cast<Seq>(m_floor.getColumn(0).getInt64());
}

Seq SqliteConsumerQueries::before_last(const std::string& channel, std::uint64_t count) {
    if (count == 0) return head(channel);
    ResetOnExit reset{m_nth_last};
    m_nth_last.bind(1, channel);
    constexpr auto k_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    m_nth_last.bind(2, static_cast<std::int64_t>(std::min(count - 1, k_max)));
    if (!m_nth_last.executeStep()) return 0;
    return static_cast<Seq>(m_nth_last.getColumn(0).getInt64()) - 1;
}

}  // namespace botbus::store
