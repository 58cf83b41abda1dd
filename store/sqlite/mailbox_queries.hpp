// MailboxQueries over the SQLite projections (bot_mailboxes,
// mailbox_settled, dead_letters).
// Concurrency: single-threaded, on the SqliteStore's connection.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "store/mailbox_queries.hpp"
#include "store/sqlite/stream_positions.hpp"

namespace botbus::store {

class SqliteMailboxQueries final : public MailboxQueries {
public:
    explicit SqliteMailboxQueries(SQLite::Database& db);

    bool is_settled(const std::string& bot, Seq message_seq) override;
    std::int64_t unsettled_count(const std::string& bot) override;
    std::optional<std::int64_t> oldest_unsettled_ts(const std::string& bot) override;
    std::vector<DeadLetterRow> dead_letters(const DeadLetterQuery& query) override;
    std::vector<DeadLetterRow> dead_letters_of(Seq message_seq) override;
    std::optional<DeadLetterRow> dead_letter(Seq message_seq) override;
    std::optional<DeadLetterRow> dead_letter(Seq message_seq, const std::string& bot) override;
    Seq delivered_upto(const std::string& bot, const std::string& channel) override;
    std::uint32_t delivery_count(const std::string& bot, const std::string& channel, Seq seq) override;
    std::vector<std::pair<std::string, Seq>> due_expiries(std::int64_t now_us, std::size_t limit) override;
    std::optional<std::int64_t> next_expiry() override;

private:
    DeadLetterRow read_dead_letter(SQLite::Statement& row);

    StreamPositions m_positions;
    SQLite::Statement m_is_settled;
    SQLite::Statement m_floor;
    SQLite::Statement m_settled_above;
    SQLite::Statement m_oldest_unsettled;
    SQLite::Statement m_dead_letters_all;
    SQLite::Statement m_dead_letters_of_bot;
    SQLite::Statement m_dead_letter;
    SQLite::Statement m_dead_letter_of_bot;
    SQLite::Statement m_delivered_upto;
    SQLite::Statement m_delivery_count;
    SQLite::Statement m_due_expiries;
    SQLite::Statement m_next_expiry;
};

}  // namespace botbus::store
