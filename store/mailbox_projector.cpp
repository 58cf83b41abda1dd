#include "store/mailbox_projector.hpp"

#include "store/payloads.hpp"
#include "store/statement_helpers.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;

MailboxProjector::MailboxProjector(SQLite::Database& db)
    : m_floor(db, "SELECT acked_seq FROM bot_mailboxes WHERE bot_id = ?"),
      m_upsert_floor(db,
                     "INSERT INTO bot_mailboxes (bot_id, acked_seq, last_seq) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT (bot_id) DO UPDATE SET acked_seq = MAX(acked_seq, excluded.acked_seq),"
                     " last_seq = excluded.last_seq"),
      m_insert_settled(db,
                       "INSERT INTO mailbox_settled (bot_id, seq, outcome) VALUES (?, ?, ?)"
                       " ON CONFLICT (bot_id, seq) DO NOTHING"),
      m_is_settled(db, "SELECT 1 FROM mailbox_settled WHERE bot_id = ? AND seq = ?"),
      m_delete_settled_upto(db, "DELETE FROM mailbox_settled WHERE bot_id = ? AND seq <= ?"),
      m_next_message(db,
                     "SELECT seq FROM events WHERE stream = ? AND seq > ? AND type = 'message.sent'"
                     " ORDER BY seq LIMIT 1"),
      m_insert_dead_letter(db,
                           "INSERT INTO dead_letters (message_seq, bot_id, reason, deliveries, dead_at, seq)"
                           " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_seq) DO NOTHING"),
      m_mark_replayed(db, "UPDATE dead_letters SET replayed_seq = ?2 WHERE message_seq = ?1") {}

void MailboxProjector::apply(const Event& event) {
    msgpack::object_handle keep_alive;
    if (event.type == event_type::k_mailbox_acked) {
        const auto p = decode_payload<MailboxAcked>(event.type, event.payload, keep_alive);
        if (p.upto) raise_floor(event.producer, *p.upto, event.seq);
        if (p.seqs) {
            for (const auto seq : *p.seqs) settle(event.producer, seq, "acked", event.seq);
        }
        compact(event.producer, event.seq);
    } else if (event.type == event_type::k_message_expired) {
        const auto p = decode_payload<MessagesExpired>(event.type, event.payload, keep_alive);
        for (const auto seq : p.seqs) settle(p.bot, seq, "expired", event.seq);
        compact(p.bot, event.seq);
    } else if (event.type == event_type::k_message_dead_lettered) {
        const auto p = decode_payload<MessageDeadLettered>(event.type, event.payload, keep_alive);
        auto& s = m_insert_dead_letter;
        s.bind(1, static_cast<std::int64_t>(p.message_seq));
        s.bind(2, p.bot);
        s.bind(3, p.reason);
        s.bind(4, static_cast<std::int64_t>(p.deliveries));
        s.bind(5, event.ts_us);
        s.bind(6, static_cast<std::int64_t>(event.seq));
        exec_and_reset(s);
        settle(p.bot, p.message_seq, "dead_lettered", event.seq);
        compact(p.bot, event.seq);
    }
}

void MailboxProjector::replayed(Seq original_seq, Seq copy_seq) {
    m_mark_replayed.bind(1, static_cast<std::int64_t>(original_seq));
    m_mark_replayed.bind(2, static_cast<std::int64_t>(copy_seq));
    exec_and_reset(m_mark_replayed);
}

Seq MailboxProjector::floor(const std::string& bot) {
    ResetOnExit reset{m_floor};
    m_floor.bind(1, bot);
    return m_floor.executeStep() ? static_cast<Seq>(m_floor.getColumn(0).getInt64()) : 0;
}

void MailboxProjector::settle(const std::string& bot, Seq message_seq, std::string_view outcome, Seq event_seq) {
    if (message_seq <= floor(bot)) return;
    m_insert_settled.bind(1, bot);
    m_insert_settled.bind(2, static_cast<std::int64_t>(message_seq));
    m_insert_settled.bind(3, std::string(outcome));
    exec_and_reset(m_insert_settled);
    // Make sure the mailbox row exists (and records this event) even when the
    // floor does not move.
    raise_floor(bot, 0, event_seq);
}

void MailboxProjector::raise_floor(const std::string& bot, Seq upto, Seq event_seq) {
    m_upsert_floor.bind(1, bot);
    m_upsert_floor.bind(2, static_cast<std::int64_t>(upto));
    m_upsert_floor.bind(3, static_cast<std::int64_t>(event_seq));
    exec_and_reset(m_upsert_floor);
}

void MailboxProjector::compact(const std::string& bot, Seq event_seq) {
    const auto stream = stream::mailbox(bot);
    const auto start = floor(bot);
    auto at = start;
    for (;;) {
        Seq next = 0;
        {
            ResetOnExit reset{m_next_message};
            m_next_message.bind(1, stream);
            m_next_message.bind(2, static_cast<std::int64_t>(at));
            if (!m_next_message.executeStep()) break;
            next = static_cast<Seq>(m_next_message.getColumn(0).getInt64());
        }
        ResetOnExit reset{m_is_settled};
        m_is_settled.bind(1, bot);
        m_is_settled.bind(2, static_cast<std::int64_t>(next));
        if (!m_is_settled.executeStep()) break;
        at = next;
    }
    if (at != start) raise_floor(bot, at, event_seq);
    m_delete_settled_upto.bind(1, bot);
    m_delete_settled_upto.bind(2, static_cast<std::int64_t>(floor(bot)));
    exec_and_reset(m_delete_settled_upto);
}

}  // namespace botbus::store
