// Read side of durable channel subscriptions: the subscriptions, which of
// their messages are settled, and the positions a subscription may start
// from.
// Concurrency: single-threaded, on the Store's thread. Inside an open Batch
// the answers include that batch's appends.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
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

class ConsumerQueries {
public:
    explicit ConsumerQueries(SQLite::Database& db);

    std::optional<ConsumerRow> consumer(const std::string& bot, const std::string& channel);
    // Every durable subscription, or those of one bot or one channel;
    // ordered by channel, then bot.
    std::vector<ConsumerRow> consumers(const std::optional<std::string>& bot,
                                       const std::optional<std::string>& channel);
    // The subscription's floor; nothing when there is no such subscription.
    std::optional<Seq> floor(const std::string& bot, const std::string& channel);
    bool is_settled(const std::string& bot, const std::string& channel, Seq message_seq);

    // Start positions, as the seq after which delivery begins.
    Seq head(const std::string& channel);  // the newest message's seq, 0 when none
    // Just before the first message at or after ts_us; nothing when no
    // message is that recent.
    std::optional<Seq> before_time(const std::string& channel, std::int64_t ts_us);
    // Just before the last `count` messages (0 when the channel has fewer).
    Seq before_last(const std::string& channel, std::uint64_t count);

private:
    ConsumerRow read(SQLite::Statement& row);

    SQLite::Statement m_consumer;
    SQLite::Statement m_floor;
    SQLite::Statement m_all;
    SQLite::Statement m_of_bot;
    SQLite::Statement m_of_channel;
    SQLite::Statement m_is_settled;
    SQLite::Statement m_head;
    SQLite::Statement m_first_at;
    SQLite::Statement m_nth_last;
};

}  // namespace botbus::store
