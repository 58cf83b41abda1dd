// Read side of the mailbox projections: which direct messages are settled,
// and the dead letters (of mailboxes and durable subscriptions).
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

struct DeadLetterRow {
    Seq seq = 0;          // the message.dead_lettered event
    Seq message_seq = 0;  // the message given up on
    std::string bot;      // its recipient
    std::string reason;
    std::uint32_t deliveries = 0;
    std::int64_t dead_at = 0;  // UTC µs
    std::optional<Seq> replayed_seq;
    std::optional<std::string> channel;  // a durable subscription's dead letter; none for a direct message
};

struct DeadLetterQuery {
    std::optional<std::string> bot;  // every recipient when empty
    Seq after = 0;                   // dead-letter event seqs above this
    std::size_t limit = 100;
};

class MailboxQueries {
public:
    explicit MailboxQueries(SQLite::Database& db);

    // Settled: at or below the mailbox's acked floor, or acknowledged,
    // expired or dead-lettered one by one.
    bool is_settled(const std::string& bot, Seq message_seq);
    // Direct messages to `bot` not settled yet.
    std::int64_t unsettled_count(const std::string& bot);

    std::vector<DeadLetterRow> dead_letters(const DeadLetterQuery& query);  // oldest first
    // The dead letters of one message: one for a direct message, one per
    // subscriber that gave up on a channel message.
    std::vector<DeadLetterRow> dead_letters_of(Seq message_seq);
    std::optional<DeadLetterRow> dead_letter(Seq message_seq);  // the first of them
    std::optional<DeadLetterRow> dead_letter(Seq message_seq, const std::string& bot);

private:
    DeadLetterRow read_dead_letter(SQLite::Statement& row);

    SQLite::Statement m_is_settled;
    SQLite::Statement m_unsettled_count;
    SQLite::Statement m_dead_letters_all;
    SQLite::Statement m_dead_letters_of_bot;
    SQLite::Statement m_dead_letter;
    SQLite::Statement m_dead_letter_of_bot;
};

}  // namespace botbus::store
