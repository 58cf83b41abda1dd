// Read side of the messaging projections: channels, subscriptions, messages
// and mailboxes.
// Concurrency: single-threaded, on the Store's thread. Inside an open Batch
// the answers include that batch's appends.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "store/event.hpp"
#include "store/payloads.hpp"

namespace botbus::store {

struct ChannelRow {
    std::string name;
    std::optional<std::string> description;
    std::string created_by;
    std::int64_t created_at = 0;
    std::int64_t subscriber_count = 0;
    Seq last_channel_seq = 0;  // channel seq of its newest message, 0 when none
    std::optional<std::uint64_t> max_age_ms;    // the channel's own retention; none: the default
    std::optional<std::uint64_t> max_messages;
};

struct MessageRow {
    Seq seq = 0;
    Seq stream_seq = 0;  // channel seq, or the recipient's mailbox seq
    std::string from;
    std::optional<std::string> to;
    std::optional<std::string> channel;
    std::string type;
    std::string body;  // packed msgpack value
    std::optional<Seq> reply_to;
    std::int64_t created_at = 0;
    std::optional<Seq> conversation;  // set on answers: the conversation's first message
    std::optional<std::uint64_t> hop;  // set on answers: how many answers deep
    std::optional<std::int64_t> expires_at;  // UTC µs
    std::optional<Seq> replay_of;
};

struct HistoryQuery {
    enum class Scope { channel, conversation, inbox };
    Scope scope = Scope::channel;
    std::string channel;              // Scope::channel
    std::string bot_a, bot_b;         // Scope::conversation; bot_a alone for Scope::inbox
    std::optional<Seq> after;         // exclusive lower bound on seq
    std::optional<Seq> before;        // exclusive upper bound on seq
    std::size_t limit = 100;
    bool newest_first = false;
};

class MessageQueries {
public:
    explicit MessageQueries(SQLite::Database& db);

    std::optional<ChannelRow> channel(const std::string& name);
    bool channel_exists(const std::string& name);  // cheaper than channel(); cached for the publish path
    // Drops what channel_exists remembers: the Store calls it when a channel
    // is deleted and when a batch rolls back (its channels never existed).
    void forget_channels() { m_known_channels.clear(); }
    std::vector<ChannelRow> channels();  // ordered by name
    bool is_subscribed(const std::string& bot, const std::string& channel);
    std::vector<std::string> subscriptions(const std::string& bot);   // channel names, ordered
    std::vector<std::string> subscribers(const std::string& channel); // bot ids, ordered
    std::vector<MessageRow> history(const HistoryQuery& query);
    std::optional<MessageRow> message(Seq seq);
    Seq mailbox_acked(const std::string& bot);

private:
    ChannelRow read_channel(SQLite::Statement& row);
    MessageRow read_message(SQLite::Statement& row);  // a row of k_message_columns

    SQLite::Database& m_db;
    SQLite::Statement m_channel;
    SQLite::Statement m_channel_exists;
    SQLite::Statement m_channels;
    SQLite::Statement m_is_subscribed;
    SQLite::Statement m_subscriptions;
    SQLite::Statement m_subscribers;
    SQLite::Statement m_message;
    SQLite::Statement m_mailbox_acked;
    SQLite::Statement m_history[3][2];  // [scope][newest_first]
    MessageDecoder m_decoder;
    std::unordered_set<std::string> m_known_channels;  // exist, as of the open batch
};

}  // namespace botbus::store
