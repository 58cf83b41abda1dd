// MessageQueries over the SQLite projections and the event log (messages are
// events: migrations/0004_message_index.sql).
// Concurrency: single-threaded, on the SqliteStore's connection.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "store/message_queries.hpp"
#include "store/payloads.hpp"
#include "store/sqlite/known_channels.hpp"

namespace botbus::store {

class SqliteMessageQueries final : public MessageQueries {
public:
    // `known` caches channel_exists; its owner keeps it true (known_channels.hpp).
    SqliteMessageQueries(SQLite::Database& db, KnownChannels& known);

    std::optional<ChannelRow> channel(const std::string& name) override;
    bool channel_exists(const std::string& name) override;
    std::vector<ChannelRow> channels(const std::string& after, const Page& page) override;
    bool is_subscribed(const std::string& bot, const std::string& channel) override;
    std::vector<std::string> subscriptions(const std::string& bot, const std::string& after, const Page& page) override;
    std::size_t subscribed_channels(const std::string& bot, std::size_t most) override;
    std::vector<std::string> subscribers(const std::string& channel, const std::string& after, const Page& page) override;
    std::vector<MessageRow> history(const HistoryQuery& query) override;
    std::optional<MessageRow> message(Seq seq) override;
    Seq mailbox_acked(const std::string& bot) override;

private:
    ChannelRow read_channel(SQLite::Statement& row);
    MessageRow read_message(SQLite::Statement& row);  // a row of k_message_columns

    KnownChannels& m_known_channels;
    SQLite::Statement m_channel;
    SQLite::Statement m_channel_exists;
    SQLite::Statement m_channels;
    SQLite::Statement m_is_subscribed;
    SQLite::Statement m_subscriptions;
    SQLite::Statement m_subscribed_channels;
    SQLite::Statement m_subscribers;
    SQLite::Statement m_message;
    SQLite::Statement m_mailbox_acked;
    SQLite::Statement m_history[3][2];  // [scope][newest_first]
    MessageDecoder m_decoder;
};

}  // namespace botbus::store
