// Read side of durable channel subscriptions: the subscriptions, which of
// their messages are settled, and the positions a subscription may start
// from; implemented per backend (store/sql/consumer_queries.hpp).
// Guarantees (every method): inside an open Batch, answers from that
// transaction, so the batch's own appends are included; outside one, each
// call reads one consistent snapshot of the committed state. A call never
// opens, commits or ends the caller's batch. Throws the backend's exception
// on a storage error (inside a batch the caller then rolls back).
// Concurrency: single-threaded, on the Store's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/event.hpp"

namespace botbus::store {

struct ConsumerRow {
    std::string bot;
    std::string channel;
    Seq acked = 0;  // the floor: every message at or below is settled
    std::int64_t created_at = 0;
    std::int64_t unsettled = 0;  // messages above the floor not settled
    Seq head = 0;                // seq of the channel's newest message (0: none)
};

// Which durable subscriptions to list: one page of them in (channel, bot)
// order.
struct ConsumerFilter {
    std::optional<std::string> bot;      // only this bot's
    std::optional<std::string> channel;  // only this channel's
    // The (channel, bot) of the last subscription already listed: only
    // those after it.
    std::optional<std::pair<std::string, std::string>> after;
    std::size_t limit = 100;
};

class ConsumerQueries {
public:
    virtual ~ConsumerQueries() = default;

    virtual std::optional<ConsumerRow> consumer(const std::string& bot, const std::string& channel) = 0;
    // Every durable subscription, or those of one bot or one channel;
    // ordered by channel, then bot.
    virtual std::vector<ConsumerRow> consumers(const std::optional<std::string>& bot,
                                               const std::optional<std::string>& channel) = 0;
    // One page of them: at most filter.limit, each row's counts read from
    // indexes (a few probes per row, whatever the lag).
    virtual std::vector<ConsumerRow> consumers(const ConsumerFilter& filter) = 0;
    // The subscription's floor; nothing when there is no such subscription.
    virtual std::optional<Seq> floor(const std::string& bot, const std::string& channel) = 0;
    virtual bool is_settled(const std::string& bot, const std::string& channel, Seq message_seq) = 0;

    // Start positions, as the seq after which delivery begins.
    virtual Seq head(const std::string& channel) = 0;  // the newest message's seq, 0 when none
    // Just before the first message at or after ts_us; nothing when no
    // message is that recent.
    virtual std::optional<Seq> before_time(const std::string& channel, std::int64_t ts_us) = 0;
    // Just before the last `count` messages (0 when the channel has fewer);
    // found by index probes, not by stepping over the `count` messages.
    virtual Seq before_last(const std::string& channel, std::uint64_t count) = 0;
};

}  // namespace botbus::store
