// Read side of the messaging projections: channels, subscriptions, messages
// and mailboxes; implemented per backend (store/sql/message_queries.hpp).
// Guarantees (every method): inside an open Batch, answers from that
// transaction, so the batch's own appends are included; outside one, each
// call reads one consistent snapshot of the committed state. A call never
// opens, commits or ends the caller's batch. Throws the backend's exception
// on a storage error (inside a batch the caller then rolls back).
// Concurrency: single-threaded, on the Store's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "store/event.hpp"
#include "store/page.hpp"
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

// What a channel weighs against Page::max_bytes.
inline std::size_t row_bytes(const ChannelRow& row) {
    return row.name.size() + (row.description ? row.description->size() : 0) + row.created_by.size() + 128;
}

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
    // Stops after the row that brings the rows' message_bytes() to this
    // (so at least one row): a page of big messages stays a bounded read.
    std::size_t max_bytes = std::numeric_limits<std::size_t>::max();
};

// What a row weighs against HistoryQuery::max_bytes: its variable parts.
inline std::size_t message_bytes(const MessageRow& row) {
    return row.body.size() + row.type.size() + row.from.size() + (row.to ? row.to->size() : 0) +
           (row.channel ? row.channel->size() : 0);
}

class MessageQueries {
public:
    virtual ~MessageQueries() = default;

    virtual std::optional<ChannelRow> channel(const std::string& name) = 0;
    // Cheaper than channel(): the publish path asks it for every message.
    virtual bool channel_exists(const std::string& name) = 0;
    // The lists page by key (page.hpp): each returns the rows whose key (a
    // channel or bot name) is above `after`, in key order.
    virtual std::vector<ChannelRow> channels(const std::string& after, const Page& page) = 0;  // ordered by name
    virtual bool is_subscribed(const std::string& bot, const std::string& channel) = 0;
    // The channel names `bot` is subscribed to, ordered.
    virtual std::vector<std::string> subscriptions(const std::string& bot, const std::string& after,
                                                   const Page& page) = 0;
    // How many channels `bot` is a member of or durably subscribed to (each
    // channel once), counted up to `most` (the subscription limit's check).
    virtual std::size_t subscribed_channels(const std::string& bot, std::size_t most) = 0;
    // The bot ids subscribed to `channel`, ordered.
    virtual std::vector<std::string> subscribers(const std::string& channel, const std::string& after,
                                                 const Page& page) = 0;
    // Ordered by seq, ascending or (newest_first) descending; at most
    // query.limit. Trimmed messages are gone.
    virtual std::vector<MessageRow> history(const HistoryQuery& query) = 0;
    // The message published or sent as event `seq`; nothing for another
    // event type or a trimmed message.
    virtual std::optional<MessageRow> message(Seq seq) = 0;
    // The mailbox's floor: every direct message to `bot` at or below it is
    // settled (0 when none is).
    virtual Seq mailbox_acked(const std::string& bot) = 0;
};

}  // namespace botbus::store
