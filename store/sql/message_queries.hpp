// MessageQueries over the projection tables (either engine) and the event log (messages are
// events: migrations/0004_message_index.sql).
// Concurrency: single-threaded, on the SqliteStore's connection.
#pragma once

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"

#include "store/message_queries.hpp"
#include "store/payloads.hpp"
#include "store/sql/known_channels.hpp"

namespace botbus::store {

class SqlMessageQueries final : public MessageQueries {
public:
    // `known` caches channel_exists; its owner keeps it true (known_channels.hpp).
    SqlMessageQueries(sql::Connection& db, KnownChannels& known);

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
    ChannelRow read_channel(sql::Statement& row);
    MessageRow read_message(sql::Statement& row);  // a row of k_message_columns

    KnownChannels& m_known_channels;
    sql::Statement m_channel;
    sql::Statement m_channel_exists;
    sql::Statement m_channels;
    sql::Statement m_is_subscribed;
    sql::Statement m_subscriptions;
    sql::Statement m_subscribed_channels;
    sql::Statement m_subscribers;
    sql::Statement m_message;
    sql::Statement m_mailbox_acked;
    sql::Statement m_history[3][2];  // [scope][newest_first]
    MessageDecoder m_decoder;
};

}  // namespace botbus::store
