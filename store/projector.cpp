#include "store/projector.hpp"

#include "store/payloads.hpp"

namespace botbus::store {
namespace {

void bind_optional(SQLite::Statement& statement, int index, const std::optional<std::string>& value) {
    if (value) {
        statement.bind(index, *value);
    } else {
        statement.bind(index);
    }
}

std::string conversation_key(const std::string& a, const std::string& b) {
    // Sorted so both directions of a conversation share one index range.
    return a < b ? a + '\n' + b : b + '\n' + a;
}

// Steps and resets, also when the step fails: a statement left unreset after
// an error refuses every later bind.
void run(SQLite::Statement& statement) {
    try {
        statement.exec();
    } catch (...) {
        try {
            statement.reset();
        } catch (...) {  // reset repeats the step's error, already being thrown
        }
        throw;
    }
    statement.reset();
}

}  // namespace

Projector::Projector(SQLite::Database& db)
    : m_db(db),
      m_insert_channel(db,
                       "INSERT INTO bot_channels (name, description, created_by, created_at, last_seq)"
                       " VALUES (?, ?, ?, ?, ?)"),
      m_delete_channel(db, "DELETE FROM bot_channels WHERE name = ?"),
      m_delete_channel_subscriptions(db, "DELETE FROM bot_subscriptions WHERE channel_name = ?"),
      m_insert_subscription(db,
                            "INSERT INTO bot_subscriptions (bot_id, channel_name, subscribed_at, last_seq)"
                            " VALUES (?, ?, ?, ?)"),
      m_delete_subscription(db, "DELETE FROM bot_subscriptions WHERE bot_id = ? AND channel_name = ?"),
      m_insert_message(db,
                       "INSERT INTO bot_messages (seq, from_bot_id, to_bot_id, channel_name, stream_seq,"
                       " message_type, body, reply_to, conversation, created_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
      m_upsert_mailbox(db,
                       "INSERT INTO bot_mailboxes (bot_id, acked_seq, last_seq) VALUES (?, ?, ?)"
                       " ON CONFLICT (bot_id) DO UPDATE SET acked_seq = MAX(acked_seq, excluded.acked_seq),"
                       " last_seq = excluded.last_seq"),
      m_record_position(db,
                        "INSERT INTO projection_state (projection, last_seq) VALUES ('messaging', ?)"
                        " ON CONFLICT (projection) DO UPDATE SET last_seq = excluded.last_seq") {}

void Projector::apply(const Event& event) {
    msgpack::object_handle keep_alive;
    const auto seq = static_cast<std::int64_t>(event.seq);
    if (event.type == event_type::k_channel_created) {
        const auto p = decode_payload<ChannelCreated>(event.type, event.payload, keep_alive);
        m_insert_channel.bind(1, p.name);
        bind_optional(m_insert_channel, 2, p.description);
        m_insert_channel.bind(3, event.producer);
        m_insert_channel.bind(4, event.ts_us);
        m_insert_channel.bind(5, seq);
        run(m_insert_channel);
    } else if (event.type == event_type::k_channel_deleted) {
        const auto p = decode_payload<ChannelDeleted>(event.type, event.payload, keep_alive);
        m_delete_channel.bind(1, p.name);
        run(m_delete_channel);
        m_delete_channel_subscriptions.bind(1, p.name);
        run(m_delete_channel_subscriptions);
    } else if (event.type == event_type::k_subscribed) {
        const auto p = decode_payload<SubscriptionChanged>(event.type, event.payload, keep_alive);
        m_insert_subscription.bind(1, p.bot);
        m_insert_subscription.bind(2, p.channel);
        m_insert_subscription.bind(3, event.ts_us);
        m_insert_subscription.bind(4, seq);
        run(m_insert_subscription);
    } else if (event.type == event_type::k_unsubscribed) {
        const auto p = decode_payload<SubscriptionChanged>(event.type, event.payload, keep_alive);
        m_delete_subscription.bind(1, p.bot);
        m_delete_subscription.bind(2, p.channel);
        run(m_delete_subscription);
    } else if (event.type == event_type::k_message_published || event.type == event_type::k_message_sent) {
        const auto p = decode_payload<MessagePayload>(event.type, event.payload, keep_alive);
        auto& s = m_insert_message;
        s.bind(1, seq);
        s.bind(2, event.producer);
        bind_optional(s, 3, p.to);
        bind_optional(s, 4, p.channel);
        s.bind(5, static_cast<std::int64_t>(event.stream_seq));
        s.bind(6, p.type);
        s.bindNoCopy(7, p.body.ptr, static_cast<int>(p.body.size));
        if (p.reply_to) {
            s.bind(8, static_cast<std::int64_t>(*p.reply_to));
        } else {
            s.bind(8);
        }
        if (p.to) {
            s.bind(9, conversation_key(event.producer, *p.to));
        } else {
            s.bind(9);
        }
        s.bind(10, event.ts_us);
        run(s);
    } else if (event.type == event_type::k_mailbox_acked) {
        const auto p = decode_payload<MailboxAcked>(event.type, event.payload, keep_alive);
        m_upsert_mailbox.bind(1, event.producer);
        m_upsert_mailbox.bind(2, static_cast<std::int64_t>(p.upto));
        m_upsert_mailbox.bind(3, seq);
        run(m_upsert_mailbox);
    }
}

void Projector::record_position(Seq last_seq) {
    m_record_position.bind(1, static_cast<std::int64_t>(last_seq));
    run(m_record_position);
}

}  // namespace botbus::store
