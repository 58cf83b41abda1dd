// MailboxQueries over the projection tables (either engine) (bot_mailboxes,
// mailbox_settled, dead_letters).
// Concurrency: single-threaded, on the SqliteStore's connection.
#pragma once

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"

#include "store/mailbox_queries.hpp"
#include "store/sql/stream_positions.hpp"

namespace botbus::store {

class SqlMailboxQueries final : public MailboxQueries {
public:
    explicit SqlMailboxQueries(sql::Connection& db);

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
    DeadLetterRow read_dead_letter(sql::Statement& row);

    StreamPositions m_positions;
    sql::Statement m_is_settled;
    sql::Statement m_floor;
    sql::Statement m_settled_above;
    sql::Statement m_oldest_unsettled;
    sql::Statement m_dead_letters_all;
    sql::Statement m_dead_letters_of_bot;
    sql::Statement m_dead_letter;
    sql::Statement m_dead_letter_of_bot;
    sql::Statement m_delivered_upto;
    sql::Statement m_delivery_count;
    sql::Statement m_due_expiries;
    sql::Statement m_next_expiry;
};

}  // namespace botbus::store
