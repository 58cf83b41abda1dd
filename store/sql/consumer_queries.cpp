#include "store/sql/consumer_queries.hpp"

#include <limits>

#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::ResetOnExit;
using detail::to_sql_int;

namespace {

constexpr const char* k_consumer_columns = "SELECT bot_id, channel, acked_seq, created_at FROM channel_consumers";
// Pages in (channel, bot) order: ?1, ?2 the cursor, ?3 the limit.
constexpr const char* k_page = " AND (channel, bot_id) > (?1, ?2) ORDER BY channel, bot_id LIMIT ?3";

}  // namespace

SqlConsumerQueries::SqlConsumerQueries(sql::Connection& db)
    : m_positions(db),
      m_consumer(db, std::string(k_consumer_columns) + " WHERE bot_id = ?1 AND channel = ?2"),
      m_floor(db, "SELECT acked_seq FROM channel_consumers WHERE bot_id = ? AND channel = ?"),
      m_page_all(db, std::string(k_consumer_columns) + " WHERE TRUE" + k_page),
      m_page_of_bot(db, std::string(k_consumer_columns) + " WHERE bot_id = ?4" + k_page),
      m_page_of_channel(db, std::string(k_consumer_columns) + " WHERE channel = ?4" + k_page),
      m_settled_above(db, "SELECT COUNT(*) FROM consumer_settled WHERE bot_id = ?1 AND channel = ?2 AND seq > ?3"),
      m_is_settled(db,
                   "SELECT ?3 <= COALESCE((SELECT acked_seq FROM channel_consumers WHERE bot_id = ?1 AND"
                   " channel = ?2), 0) OR EXISTS (SELECT 1 FROM consumer_settled WHERE bot_id = ?1 AND"
                   " channel = ?2 AND seq = ?3)"),
      // The channel's newest event, or the floor retention left (0011_stream_floors.sql).
      m_head(db,
             "SELECT MAX(column1) FROM (VALUES (COALESCE((SELECT MAX(seq) FROM events WHERE stream = 'ch/' || ?1), 0)),"
             " (COALESCE((SELECT floor_seq FROM streams WHERE stream = 'ch/' || ?1), 0))) AS head"),
      m_first_at(db,
                 "SELECT seq FROM events WHERE stream = 'ch/' || ?1 AND type = 'message.published' AND ts_us >= ?2"
                 " ORDER BY seq LIMIT 1") {}

ConsumerRow SqlConsumerQueries::read(sql::Statement& row) {
    ConsumerRow c;
    c.bot = row.getColumn(0).getString();
    c.channel = row.getColumn(1).getString();
    c.acked = static_cast<Seq>(row.getColumn(2).getInt64());
    c.created_at = row.getColumn(3).getInt64();
    return c;
}

void SqlConsumerQueries::add_counts(ConsumerRow& c) {
    // Messages above the floor, less those settled one by one above it.
    std::int64_t settled = 0;
    {
        ResetOnExit reset{m_settled_above};
        m_settled_above.bind(1, c.bot);
        m_settled_above.bind(2, c.channel);
        m_settled_above.bind(3, to_sql_int(c.acked));
        if (m_settled_above.executeStep()) settled = m_settled_above.getColumn(0).getInt64();
    }
    c.unsettled = m_positions.count_after(stream::channel(c.channel), c.acked) - settled;
    c.head = head(c.channel);
}

std::optional<ConsumerRow> SqlConsumerQueries::consumer(const std::string& bot, const std::string& channel) {
    std::optional<ConsumerRow> row;
    {
        ResetOnExit reset{m_consumer};
        m_consumer.bind(1, bot);
        m_consumer.bind(2, channel);
        if (!m_consumer.executeStep()) return std::nullopt;
        row = read(m_consumer);
    }
    add_counts(*row);
    return row;
}

std::vector<ConsumerRow> SqlConsumerQueries::consumers(const ConsumerFilter& filter) {
    std::vector<ConsumerRow> rows;
    if (filter.bot && filter.channel) {
        auto row = consumer(*filter.bot, *filter.channel);
        const bool past = !filter.after || std::pair(row ? row->channel : "", row ? row->bot : "") > *filter.after;
        if (row && past && filter.limit > 0) rows.push_back(std::move(*row));
        return rows;
    }
    auto& s = filter.bot ? m_page_of_bot : filter.channel ? m_page_of_channel : m_page_all;
    {
        ResetOnExit reset{s};
        s.bind(1, filter.after ? filter.after->first : std::string());
        s.bind(2, filter.after ? filter.after->second : std::string());
        s.bind(3, to_sql_int(filter.limit));
        if (filter.bot) s.bind(4, *filter.bot);
        if (filter.channel) s.bind(4, *filter.channel);
        while (s.executeStep()) rows.push_back(read(s));
    }
    for (auto& row : rows) add_counts(row);  // after the page's statement is done with
    return rows;
}

std::vector<ConsumerRow> SqlConsumerQueries::consumers(const std::optional<std::string>& bot,
                                                          const std::optional<std::string>& channel) {
    std::vector<ConsumerRow> all;
    ConsumerFilter filter{bot, channel, std::nullopt, 1000};
    for (;;) {
        auto page = consumers(filter);
        const bool last = page.size() < filter.limit;
        if (!page.empty()) filter.after = std::pair(page.back().channel, page.back().bot);
        for (auto& row : page) all.push_back(std::move(row));
        if (last) return all;
    }
}

bool SqlConsumerQueries::is_settled(const std::string& bot, const std::string& channel, Seq message_seq) {
    ResetOnExit reset{m_is_settled};
    m_is_settled.bind(1, bot);
    m_is_settled.bind(2, channel);
    m_is_settled.bind(3, to_sql_int(message_seq));
    m_is_settled.executeStep();
    return m_is_settled.getColumn(0).getInt() != 0;
}

Seq SqlConsumerQueries::head(const std::string& channel) {
    ResetOnExit reset{m_head};
    m_head.bind(1, channel);
    m_head.executeStep();
    return static_cast<Seq>(m_head.getColumn(0).getInt64());
}

std::optional<Seq> SqlConsumerQueries::before_time(const std::string& channel, std::int64_t ts_us) {
    ResetOnExit reset{m_first_at};
    m_first_at.bind(1, channel);
    m_first_at.bind(2, ts_us);
    if (!m_first_at.executeStep()) return std::nullopt;
    return static_cast<Seq>(m_first_at.getColumn(0).getInt64()) - 1;
}

std::optional<Seq> SqlConsumerQueries::floor(const std::string& bot, const std::string& channel) {
    ResetOnExit reset{m_floor};
    m_floor.bind(1, bot);
    m_floor.bind(2, channel);
    if (!m_floor.executeStep()) return std::nullopt;
    return static_cast<Seq>(m_floor.getColumn(0).getInt64());
}

Seq SqlConsumerQueries::before_last(const std::string& channel, std::uint64_t count) {
    if (count == 0) return head(channel);
    const auto nth = m_positions.nth_newest(stream::channel(channel), count);
    return nth ? *nth - 1 : 0;
}

}  // namespace botbus::store
