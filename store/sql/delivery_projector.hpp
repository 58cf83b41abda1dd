// Applies the delivery events to their projections: mailboxes (the floor in
// bot_mailboxes, mailbox_settled above it), durable channel subscriptions
// (channel_consumers, consumer_settled) and dead_letters. Part of the
// Projector; split out because settling is more than one row write.
// Concurrency: single-threaded, like the Database it writes.
#pragma once

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"

#include <optional>
#include <string>
#include <vector>

#include "store/event.hpp"
#include "store/store.hpp"
#include "store/sql/settlements.hpp"

namespace botbus::store {

class DeliveryProjector {
public:
    explicit DeliveryProjector(sql::Connection& db);

    // The Projector hands it mailbox.acked, message.expired, message.dead_lettered,
    // consumer.created, consumer.acked, consumer.deleted and stream.trimmed
    // (the readers of a trimmed stream move their floors past what is gone).
    // Settlements also delete the delivery counts of what they settle.
    void apply(const Event& event);
    // A message.sent to `bot` that replays a dead letter marks the dead letter.
    void replayed(const std::string& bot, Seq original_seq, Seq copy_seq);
    // A direct message to `bot` that expires at `expires_at` (mailbox_expiries).
    void expires(const std::string& bot, Seq seq, std::int64_t expires_at);
    // Delivery attempts (Batch::record_deliveries): beside the log, not from it.
    void record(const DeliveryRecord& record);

private:
    Settlements m_mailboxes;  // key: bot
    Settlements m_consumers;  // key: bot, channel
    sql::Statement m_insert_dead_letter;
    sql::Statement m_mark_replayed;
    sql::Statement m_insert_consumer;
    sql::Statement m_delete_consumer;
    sql::Statement m_delete_consumer_settled;
    sql::Statement m_consumers_of_channel;
    // delivery_marks and delivery_counts, and their rows going as messages settle.
    sql::Statement m_raise_mark;
    sql::Statement m_put_count;
    sql::Statement m_forget_counts_upto;
    sql::Statement m_forget_count;
    sql::Statement m_forget_reader_counts;
    sql::Statement m_forget_reader_mark;
    sql::Statement m_add_expiry;
    sql::Statement m_drop_expiries_upto;
    sql::Statement m_drop_expiry;
    // Settled: their delivery counts go, and a direct message's expiry.
    void forget_settled(const std::string& bot, const std::string& channel, std::optional<Seq> upto,
                        const std::vector<std::uint64_t>& seqs);
};

}  // namespace botbus::store
