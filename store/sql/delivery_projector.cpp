#include "store/sql/delivery_projector.hpp"

#include "store/payloads.hpp"
#include "store/sql/statement_helpers.hpp"

namespace botbus::store {

using detail::bind_optional;
using detail::exec_and_reset;

namespace {

const Settlements::Sql k_mailbox_sql{
    "SELECT acked_seq FROM bot_mailboxes WHERE bot_id = ?1",
    "INSERT INTO bot_mailboxes (bot_id, acked_seq, last_seq) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (bot_id) DO UPDATE SET acked_seq = CASE WHEN excluded.acked_seq > bot_mailboxes.acked_seq"
    " THEN excluded.acked_seq ELSE bot_mailboxes.acked_seq END,"
    " last_seq = excluded.last_seq",
    "INSERT INTO mailbox_settled (bot_id, seq, outcome) VALUES (?1, ?2, ?3) ON CONFLICT (bot_id, seq) DO NOTHING",
    "SELECT 1 FROM mailbox_settled WHERE bot_id = ?1 AND seq = ?2",
    "DELETE FROM mailbox_settled WHERE bot_id = ?1 AND seq <= ?2",
};

// A subscription's row exists from consumer.created on: acks of one that
// does not (a log edited by hand) change nothing.
const Settlements::Sql k_consumer_sql{
    "SELECT acked_seq FROM channel_consumers WHERE bot_id = ?1 AND channel = ?2",
    "UPDATE channel_consumers SET acked_seq = CASE WHEN ?3 > acked_seq THEN ?3 ELSE acked_seq END, last_seq = ?4 WHERE bot_id = ?1 AND channel = ?2",
    "INSERT INTO consumer_settled (bot_id, channel, seq, outcome)"
    " SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM channel_consumers WHERE bot_id = ?1 AND channel = ?2)"
    " ON CONFLICT (bot_id, channel, seq) DO NOTHING",
    "SELECT 1 FROM consumer_settled WHERE bot_id = ?1 AND channel = ?2 AND seq = ?3",
    "DELETE FROM consumer_settled WHERE bot_id = ?1 AND channel = ?2 AND seq <= ?3",
};

}  // namespace

DeliveryProjector::DeliveryProjector(sql::Connection& db)
    : m_mailboxes(db, k_mailbox_sql),
      m_consumers(db, k_consumer_sql),
      m_insert_dead_letter(db,
                           "INSERT INTO dead_letters (seq, message_seq, bot_id, channel, reason, deliveries, dead_at)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_seq, bot_id) DO NOTHING"),
      m_mark_replayed(db,
                      "UPDATE dead_letters SET replayed_seq = ?3 WHERE message_seq = ?1 AND bot_id = ?2"
                      " AND replayed_seq IS NULL"),
      m_insert_consumer(db,
                        "INSERT INTO channel_consumers (bot_id, channel, acked_seq, created_at, last_seq)"
                        " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (bot_id, channel) DO NOTHING"),
      m_delete_consumer(db, "DELETE FROM channel_consumers WHERE bot_id = ? AND channel = ?"),
      m_delete_consumer_settled(db, "DELETE FROM consumer_settled WHERE bot_id = ? AND channel = ?"),
      m_consumers_of_channel(db, "SELECT bot_id FROM channel_consumers WHERE channel = ? ORDER BY bot_id"),
      m_raise_mark(db,
                   "INSERT INTO delivery_marks (bot_id, channel, delivered_upto) VALUES (?1, ?2, ?3)"
                   " ON CONFLICT (bot_id, channel) DO UPDATE SET delivered_upto = CASE WHEN excluded.delivered_upto > delivery_marks.delivered_upto"
                   " THEN excluded.delivered_upto ELSE delivery_marks.delivered_upto END"),
      m_put_count(db,
                  "INSERT INTO delivery_counts (bot_id, channel, seq, deliveries) VALUES (?1, ?2, ?3, ?4)"
                  " ON CONFLICT (bot_id, channel, seq) DO UPDATE SET deliveries = CASE WHEN excluded.deliveries > delivery_counts.deliveries"
                  " THEN excluded.deliveries ELSE delivery_counts.deliveries END"),
      m_forget_counts_upto(db, "DELETE FROM delivery_counts WHERE bot_id = ?1 AND channel = ?2 AND seq <= ?3"),
      m_forget_count(db, "DELETE FROM delivery_counts WHERE bot_id = ?1 AND channel = ?2 AND seq = ?3"),
      m_forget_reader_counts(db, "DELETE FROM delivery_counts WHERE bot_id = ?1 AND channel = ?2"),
      m_forget_reader_mark(db, "DELETE FROM delivery_marks WHERE bot_id = ?1 AND channel = ?2"),
      m_add_expiry(db, "INSERT INTO mailbox_expiries (bot_id, seq, expires_at) VALUES (?1, ?2, ?3)"
                       " ON CONFLICT (bot_id, seq) DO NOTHING"),
      m_drop_expiries_upto(db, "DELETE FROM mailbox_expiries WHERE bot_id = ?1 AND seq <= ?2"),
      m_drop_expiry(db, "DELETE FROM mailbox_expiries WHERE bot_id = ?1 AND seq = ?2") {}

void DeliveryProjector::expires(const std::string& bot, Seq seq, std::int64_t expires_at) {
    m_add_expiry.bind(1, bot);
    m_add_expiry.bind(2, static_cast<std::int64_t>(seq));
    m_add_expiry.bind(3, expires_at);
    exec_and_reset(m_add_expiry);
}

void DeliveryProjector::record(const DeliveryRecord& record) {
    if (record.upto) {
        m_raise_mark.bind(1, record.bot);
        m_raise_mark.bind(2, record.channel);
        m_raise_mark.bind(3, static_cast<std::int64_t>(*record.upto));
        exec_and_reset(m_raise_mark);
    }
    for (const auto& [seq, deliveries] : record.counts) {
        m_put_count.bind(1, record.bot);
        m_put_count.bind(2, record.channel);
        m_put_count.bind(3, static_cast<std::int64_t>(seq));
        m_put_count.bind(4, static_cast<std::int64_t>(deliveries));
        exec_and_reset(m_put_count);
    }
}

void DeliveryProjector::forget_settled(const std::string& bot, const std::string& channel, std::optional<Seq> upto,
                                      const std::vector<std::uint64_t>& seqs) {
    // A settled direct message no longer expires either.
    if (channel.empty()) {
        if (upto) {
            m_drop_expiries_upto.bind(1, bot);
            m_drop_expiries_upto.bind(2, static_cast<std::int64_t>(*upto));
            exec_and_reset(m_drop_expiries_upto);
        }
        for (const auto seq : seqs) {
            m_drop_expiry.bind(1, bot);
            m_drop_expiry.bind(2, static_cast<std::int64_t>(seq));
            exec_and_reset(m_drop_expiry);
        }
    }
    if (upto) {
        m_forget_counts_upto.bind(1, bot);
        m_forget_counts_upto.bind(2, channel);
        m_forget_counts_upto.bind(3, static_cast<std::int64_t>(*upto));
        exec_and_reset(m_forget_counts_upto);
    }
    for (const auto seq : seqs) {
        m_forget_count.bind(1, bot);
        m_forget_count.bind(2, channel);
        m_forget_count.bind(3, static_cast<std::int64_t>(seq));
        exec_and_reset(m_forget_count);
    }
}

void DeliveryProjector::apply(const Event& event) {
    msgpack::object_handle keep_alive;
    const auto& type = event.type;
    if (type == EventType::mailbox_acked) {
        const auto p = decode_payload<MailboxAcked>(type, event.payload, keep_alive);
        const std::vector<std::string> key{event.producer};
        if (p.upto) m_mailboxes.raise_floor(key, *p.upto, event.seq);
        if (p.seqs) {
            for (const auto seq : *p.seqs) m_mailboxes.settle(key, seq, "acked", event.seq);
        }
        m_mailboxes.compact(key, stream::mailbox(event.producer), event.seq);
        forget_settled(event.producer, "", p.upto, p.seqs.value_or(std::vector<std::uint64_t>{}));
    } else if (type == EventType::message_expired) {
        const auto p = decode_payload<MessagesExpired>(type, event.payload, keep_alive);
        const std::vector<std::string> key{p.bot};
        for (const auto seq : p.seqs) m_mailboxes.settle(key, seq, "expired", event.seq);
        m_mailboxes.compact(key, stream::mailbox(p.bot), event.seq);
        forget_settled(p.bot, "", std::nullopt, p.seqs);
    } else if (type == EventType::message_dead_lettered) {
        const auto p = decode_payload<MessageDeadLettered>(type, event.payload, keep_alive);
        auto& s = m_insert_dead_letter;
        s.bind(1, static_cast<std::int64_t>(event.seq));
        s.bind(2, static_cast<std::int64_t>(p.message_seq));
        s.bind(3, p.bot);
        bind_optional(s, 4, p.channel);
        s.bind(5, p.reason);
        s.bind(6, static_cast<std::int64_t>(p.deliveries));
        s.bind(7, event.ts_us);
        exec_and_reset(s);
        forget_settled(p.bot, p.channel.value_or(""), std::nullopt, {p.message_seq});
        if (p.channel) {
            const std::vector<std::string> key{p.bot, *p.channel};
            m_consumers.settle(key, p.message_seq, "dead_lettered", event.seq);
            m_consumers.compact(key, stream::channel(*p.channel), event.seq);
        } else {
            const std::vector<std::string> key{p.bot};
            m_mailboxes.settle(key, p.message_seq, "dead_lettered", event.seq);
            m_mailboxes.compact(key, stream::mailbox(p.bot), event.seq);
        }
    } else if (type == EventType::consumer_created) {
        const auto p = decode_payload<ConsumerCreated>(type, event.payload, keep_alive);
        m_insert_consumer.bind(1, p.bot);
        m_insert_consumer.bind(2, p.channel);
        m_insert_consumer.bind(3, static_cast<std::int64_t>(p.start_after));
        m_insert_consumer.bind(4, event.ts_us);
        m_insert_consumer.bind(5, static_cast<std::int64_t>(event.seq));
        exec_and_reset(m_insert_consumer);
    } else if (type == EventType::consumer_acked) {
        const auto p = decode_payload<ConsumerAcked>(type, event.payload, keep_alive);
        const std::vector<std::string> key{p.bot, p.channel};
        if (p.upto) m_consumers.raise_floor(key, *p.upto, event.seq);
        if (p.seqs) {
            for (const auto seq : *p.seqs) m_consumers.settle(key, seq, "acked", event.seq);
        }
        m_consumers.compact(key, stream::channel(p.channel), event.seq);
        forget_settled(p.bot, p.channel, p.upto, p.seqs.value_or(std::vector<std::uint64_t>{}));
    } else if (type == EventType::stream_trimmed) {
        // What is gone cannot be delivered: every reader of the stream starts
        // after it. (Mailboxes are trimmed only below their floor already.)
        const auto p = decode_payload<StreamTrimmed>(type, event.payload, keep_alive);
        if (p.stream.starts_with("dm/")) {
            const std::vector<std::string> key{p.stream.substr(3)};
            m_mailboxes.raise_floor(key, p.through_seq, event.seq);
            forget_settled(key.front(), "", p.through_seq, {});
            m_mailboxes.compact(key, p.stream, event.seq);
        } else if (p.stream.starts_with("ch/")) {
            const auto channel = p.stream.substr(3);
            std::vector<std::string> bots;
            {
                detail::ResetOnExit reset{m_consumers_of_channel};
                m_consumers_of_channel.bind(1, channel);
                while (m_consumers_of_channel.executeStep()) bots.push_back(m_consumers_of_channel.getColumn(0).getString());
            }
            for (const auto& bot : bots) {
                const std::vector<std::string> key{bot, channel};
                m_consumers.raise_floor(key, p.through_seq, event.seq);
                m_consumers.compact(key, p.stream, event.seq);
            }
        }
    } else if (type == EventType::consumer_deleted) {
        const auto p = decode_payload<ConsumerDeleted>(type, event.payload, keep_alive);
        for (auto* s : {&m_delete_consumer, &m_delete_consumer_settled, &m_forget_reader_counts, &m_forget_reader_mark}) {
            s->bind(1, p.bot);
            s->bind(2, p.channel);
            exec_and_reset(*s);
        }
    }
}

void DeliveryProjector::replayed(const std::string& bot, Seq original_seq, Seq copy_seq) {
    m_mark_replayed.bind(1, static_cast<std::int64_t>(original_seq));
    m_mark_replayed.bind(2, bot);
    m_mark_replayed.bind(3, static_cast<std::int64_t>(copy_seq));
    exec_and_reset(m_mark_replayed);
}

}  // namespace botbus::store
