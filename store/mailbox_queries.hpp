// Read side of the mailbox projections: which direct messages are settled,
// and the dead letters (of mailboxes and durable subscriptions); implemented
// per backend (store/sql/mailbox_queries.hpp).
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
    virtual ~MailboxQueries() = default;

    // Settled: at or below the mailbox's acked floor, or acknowledged,
    // expired or dead-lettered one by one.
    virtual bool is_settled(const std::string& bot, Seq message_seq) = 0;
    // Direct messages to `bot` not settled yet: index probes of the mailbox,
    // less a count of the messages settled one by one above its floor.
    virtual std::int64_t unsettled_count(const std::string& bot) = 0;
    // When the oldest direct message to `bot` not settled yet was sent (UTC
    // µs); none when every one is settled. Walks the mailbox from its floor
    // past the messages settled one by one (at most a window's worth).
    virtual std::optional<std::int64_t> oldest_unsettled_ts(const std::string& bot) = 0;

    virtual std::vector<DeadLetterRow> dead_letters(const DeadLetterQuery& query) = 0;  // oldest first
    // The dead letters of one message: one for a direct message, one per
    // subscriber that gave up on a channel message; oldest first.
    virtual std::vector<DeadLetterRow> dead_letters_of(Seq message_seq) = 0;
    virtual std::optional<DeadLetterRow> dead_letter(Seq message_seq) = 0;  // the first of them
    virtual std::optional<DeadLetterRow> dead_letter(Seq message_seq, const std::string& bot) = 0;

    // Delivery attempts recorded (message.delivered) for a reader: `bot`'s
    // mailbox (channel "") or its durable subscription to `channel`.
    // Every unsettled message of it at or below delivered_upto was
    // delivered at least once (0: none recorded).
    virtual Seq delivered_upto(const std::string& bot, const std::string& channel) = 0;
    // How often the message was delivered, when more than once (0: no record).
    virtual std::uint32_t delivery_count(const std::string& bot, const std::string& channel, Seq seq) = 0;

    // Direct messages not settled whose time to live ran out by `now_us`,
    // soonest first, at most `limit` (the expiry sweep's page).
    virtual std::vector<std::pair<std::string, Seq>> due_expiries(std::int64_t now_us, std::size_t limit) = 0;
    // When the next unsettled direct message expires (UTC µs); none when none will.
    virtual std::optional<std::int64_t> next_expiry() = 0;
};

}  // namespace botbus::store
