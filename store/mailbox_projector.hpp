// Applies the mailbox events to their projections: bot_mailboxes (the
// settled floor), mailbox_settled (messages settled one by one above it) and
// dead_letters. Part of the Projector; split out because settling is more
// than one row write.
// Concurrency: single-threaded, like the Database it writes.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "store/event.hpp"

namespace botbus::store {

class MailboxProjector {
public:
    explicit MailboxProjector(SQLite::Database& db);

    // mailbox.acked, message.expired, message.dead_lettered.
    void apply(const Event& event);
    // A message.sent that replays a dead letter marks the dead letter.
    void replayed(Seq original_seq, Seq copy_seq);

private:
    void settle(const std::string& bot, Seq message_seq, std::string_view outcome, Seq event_seq);
    void raise_floor(const std::string& bot, Seq upto, Seq event_seq);
    // Moves the floor up over settled messages with nothing unsettled below.
    void compact(const std::string& bot, Seq event_seq);
    Seq floor(const std::string& bot);

    SQLite::Statement m_floor;
    SQLite::Statement m_upsert_floor;
    SQLite::Statement m_insert_settled;
    SQLite::Statement m_is_settled;
    SQLite::Statement m_delete_settled_upto;
    SQLite::Statement m_next_message;
    SQLite::Statement m_insert_dead_letter;
    SQLite::Statement m_mark_replayed;
};

}  // namespace botbus::store
