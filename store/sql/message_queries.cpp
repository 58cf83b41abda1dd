#include "store/sql/message_queries.hpp"

#include <algorithm>
#include <limits>

#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::ResetOnExit;
using detail::to_sql_int;
using detail::optional_text;

namespace {

constexpr const char* k_channel_columns =
    "SELECT c.name, c.description, c.created_by, c.created_at,"
    " (SELECT COUNT(*) FROM bot_subscriptions s WHERE s.channel_name = c.name),"
    // The channel's head: its newest event, or the floor retention left.
    " (SELECT MAX(column1) FROM (VALUES"
    "   (COALESCE((SELECT e.stream_seq FROM events e WHERE e.stream = 'ch/' || c.name ORDER BY e.seq DESC LIMIT 1), 0)),"
    "   (COALESCE((SELECT floor_stream_seq FROM streams WHERE stream = 'ch/' || c.name), 0))) AS head),"
    " c.max_age_ms, c.max_messages"
    " FROM bot_channels c";

// Messages are events (migrations/0004_message_index.sql): channel streams
// hold only message.published, mailbox streams only message.sent; the type
// test is belt and braces.
constexpr const char* k_message_columns = "SELECT seq, stream_seq, producer, ts_us, type, payload FROM events";

// A page of names from a statement taking (owner, after, limit).
std::vector<std::string> names_page(sql::Statement& s, const std::string& owner, const std::string& after,
                                    const Page& page) {
    ResetOnExit reset{s};
    s.bind(1, owner);
    s.bind(2, after);  // "" is below every name
    s.bind(3, to_sql_int(page.limit));
    std::vector<std::string> names;
    read_page(names, page, [&s](auto& out) {
        if (!s.executeStep()) return false;
        out.push_back(s.getColumn(0).getString());
        return true;
    });
    return names;
}

std::string history_sql(HistoryQuery::Scope scope, bool newest_first) {
    const std::string order = newest_first ? " ORDER BY seq DESC" : " ORDER BY seq ASC";
    const std::string range = " AND seq > ?3 AND seq < ?4";
    if (scope == HistoryQuery::Scope::conversation) {
        // Both directions: each side's messages in the other's mailbox, read
        // from the sender index and merged. Each part is limited first, so a
        // long conversation is never read whole.
        auto part = [&](const char* stream, const char* sender, const char* alias) {
            return std::string("SELECT * FROM (") + k_message_columns + " WHERE stream = " + stream +
                   " AND producer = " + sender + " AND type = 'message.sent'" + range + order + " LIMIT ?5) AS " +
                   alias;
        };
        return part("?1", "?2", "mine") + " UNION ALL " + part("?6", "?7", "theirs") + order + " LIMIT ?5";
    }
    const char* type = scope == HistoryQuery::Scope::channel ? "'message.published'" : "'message.sent'";
    return std::string(k_message_columns) + " WHERE stream = ?1 AND type = " + type + range + order + " LIMIT ?5";
}

}  // namespace

SqlMessageQueries::SqlMessageQueries(sql::Connection& db, KnownChannels& known)
    : m_known_channels(known),
      m_channel(db, std::string(k_channel_columns) + " WHERE c.name = ?"),
      m_channel_exists(db, "SELECT 1 FROM bot_channels WHERE name = ?"),
      m_channels(db, std::string(k_channel_columns) + " WHERE c.name > ?1 ORDER BY c.name LIMIT ?2"),
      m_is_subscribed(db, "SELECT 1 FROM bot_subscriptions WHERE bot_id = ? AND channel_name = ?"),
      m_subscriptions(db, "SELECT channel_name FROM bot_subscriptions WHERE bot_id = ?1 AND channel_name > ?2"
                          " ORDER BY channel_name LIMIT ?3"),
      // Both tables are keyed by (bot, channel): two index range scans.
      m_subscribed_channels(db, "SELECT COUNT(*) FROM (SELECT channel_name FROM bot_subscriptions WHERE bot_id = ?1"
                                " UNION SELECT channel FROM channel_consumers WHERE bot_id = ?1 LIMIT ?2) AS subscribed"),
      m_subscribers(db, "SELECT bot_id FROM bot_subscriptions WHERE channel_name = ?1 AND bot_id > ?2"
                        " ORDER BY bot_id LIMIT ?3"),
      m_message(db, std::string(k_message_columns) +
                        " WHERE seq = ? AND type IN ('message.published', 'message.sent')"),
      m_mailbox_acked(db, "SELECT acked_seq FROM bot_mailboxes WHERE bot_id = ?"),
      m_history{{{db, history_sql(HistoryQuery::Scope::channel, false)},
                 {db, history_sql(HistoryQuery::Scope::channel, true)}},
                {{db, history_sql(HistoryQuery::Scope::conversation, false)},
                 {db, history_sql(HistoryQuery::Scope::conversation, true)}},
                {{db, history_sql(HistoryQuery::Scope::inbox, false)},
                 {db, history_sql(HistoryQuery::Scope::inbox, true)}}} {}

ChannelRow SqlMessageQueries::read_channel(sql::Statement& row) {
    ChannelRow c;
    c.name = row.getColumn(0).getString();
    c.description = optional_text(row.getColumn(1));
    c.created_by = row.getColumn(2).getString();
    c.created_at = row.getColumn(3).getInt64();
    c.subscriber_count = row.getColumn(4).getInt64();
    c.last_channel_seq = static_cast<Seq>(row.getColumn(5).getInt64());
    if (const auto age = detail::optional_int(row.getColumn(6))) c.max_age_ms = static_cast<std::uint64_t>(*age);
    if (const auto count = detail::optional_int(row.getColumn(7))) c.max_messages = static_cast<std::uint64_t>(*count);
    return c;
}

std::optional<ChannelRow> SqlMessageQueries::channel(const std::string& name) {
    ResetOnExit reset{m_channel};
    m_channel.bind(1, name);
    if (!m_channel.executeStep()) return std::nullopt;
    return read_channel(m_channel);
}

bool SqlMessageQueries::channel_exists(const std::string& name) {
    if (m_known_channels.contains(name)) return true;
    ResetOnExit reset{m_channel_exists};
    m_channel_exists.bind(1, name);
    if (!m_channel_exists.executeStep()) return false;
    m_known_channels.remember(name);
    return true;
}

std::vector<ChannelRow> SqlMessageQueries::channels(const std::string& after, const Page& page) {
    ResetOnExit reset{m_channels};
    m_channels.bind(1, after);  // "" is below every name
    m_channels.bind(2, to_sql_int(page.limit));
    std::vector<ChannelRow> rows;
    read_page(rows, page, [this](auto& out) {
        if (!m_channels.executeStep()) return false;
        out.push_back(read_channel(m_channels));
        return true;
    });
    return rows;
}

bool SqlMessageQueries::is_subscribed(const std::string& bot, const std::string& channel) {
    ResetOnExit reset{m_is_subscribed};
    m_is_subscribed.bind(1, bot);
    m_is_subscribed.bind(2, channel);
    return m_is_subscribed.executeStep();
}

std::vector<std::string> SqlMessageQueries::subscriptions(const std::string& bot, const std::string& after,
                                                             const Page& page) {
    return names_page(m_subscriptions, bot, after, page);
}

std::size_t SqlMessageQueries::subscribed_channels(const std::string& bot, std::size_t most) {
    ResetOnExit reset{m_subscribed_channels};
    m_subscribed_channels.bind(1, bot);
    m_subscribed_channels.bind(2, to_sql_int(most));
    if (!m_subscribed_channels.executeStep()) return 0;
    return static_cast<std::size_t>(m_subscribed_channels.getColumn(0).getInt64());
}

std::vector<std::string> SqlMessageQueries::subscribers(const std::string& channel, const std::string& after,
                                                           const Page& page) {
    return names_page(m_subscribers, channel, after, page);
}

MessageRow SqlMessageQueries::read_message(sql::Statement& row) {
    MessageRow m;
    m.seq = static_cast<Seq>(row.getColumn(0).getInt64());
    m.stream_seq = static_cast<Seq>(row.getColumn(1).getInt64());
    m.from = row.getColumn(2).getString();
    m.created_at = row.getColumn(3).getInt64();
    const auto payload = row.getColumn(5);
    // The message index holds the two message types only.
    const auto type = row.getColumn(4).getView() == event_type_name(EventType::message_sent)
                          ? EventType::message_sent
                          : EventType::message_published;
    const auto fields = m_decoder.decode(
        type,
        std::string_view(static_cast<const char*>(payload.getBlob()), static_cast<std::size_t>(payload.getBytes())));
    if (fields.to) m.to.emplace(*fields.to);
    if (fields.channel) m.channel.emplace(*fields.channel);
    m.type.assign(fields.type);
    m.body.assign(fields.body);
    m.reply_to = fields.reply_to;
    m.conversation = fields.conversation;
    m.hop = fields.hop;
    m.expires_at = fields.expiry(m.created_at);
    m.replay_of = fields.replay_of;
    return m;
}

std::vector<MessageRow> SqlMessageQueries::history(const HistoryQuery& query) {
    auto& statement = m_history[static_cast<int>(query.scope)][query.newest_first ? 1 : 0];
    ResetOnExit reset{statement};
    switch (query.scope) {
        case HistoryQuery::Scope::channel: statement.bind(1, stream::channel(query.channel)); break;
        case HistoryQuery::Scope::conversation:
            statement.bind(1, stream::mailbox(query.bot_b));  // a to b
            statement.bind(2, query.bot_a);
            // b to a; a conversation with oneself is the first part alone.
            statement.bind(6, query.bot_a == query.bot_b ? std::string() : stream::mailbox(query.bot_a));
            statement.bind(7, query.bot_b);
            break;
        case HistoryQuery::Scope::inbox: statement.bind(1, stream::mailbox(query.bot_a)); break;
    }
    // Seqs are 64-bit SQL integers: a bound past INT64_MAX means "past every seq".
    statement.bind(3, to_sql_int(query.after.value_or(0)));
    statement.bind(4, query.before ? to_sql_int(*query.before) : std::numeric_limits<std::int64_t>::max());
    statement.bind(5, to_sql_int(query.limit));
    std::vector<MessageRow> rows;
    rows.reserve(std::min<std::size_t>(query.limit, 1000));
    std::size_t bytes = 0;
    while (bytes < query.max_bytes && statement.executeStep()) {
        rows.push_back(read_message(statement));
        bytes += message_bytes(rows.back());
    }
    return rows;
}

std::optional<MessageRow> SqlMessageQueries::message(Seq seq) {
    ResetOnExit reset{m_message};
    m_message.bind(1, to_sql_int(seq));
    if (!m_message.executeStep()) return std::nullopt;
    return read_message(m_message);
}

Seq SqlMessageQueries::mailbox_acked(const std::string& bot) {
    ResetOnExit reset{m_mailbox_acked};
    m_mailbox_acked.bind(1, bot);
    if (!m_mailbox_acked.executeStep()) return 0;
    return static_cast<Seq>(m_mailbox_acked.getColumn(0).getInt64());
}

}  // namespace botbus::store
