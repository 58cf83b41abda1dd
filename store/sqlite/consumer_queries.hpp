// ConsumerQueries over the SQLite projections (channel_consumers,
// consumer_settled) and the event log's (stream, seq) index
// (stream_positions.hpp): each row's lag costs a few index probes.
// Concurrency: single-threaded, on the SqliteStore's connection.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "store/consumer_queries.hpp"
#include "store/sqlite/stream_positions.hpp"

namespace botbus::store {

class SqliteConsumerQueries final : public ConsumerQueries {
public:
    explicit SqliteConsumerQueries(SQLite::Database& db);

    std::optional<ConsumerRow> consumer(const std::string& bot, const std::string& channel) override;
    std::vector<ConsumerRow> consumers(const std::optional<std::string>& bot,
                                       const std::optional<std::string>& channel) override;
    std::vector<ConsumerRow> consumers(const ConsumerFilter& filter) override;
    std::optional<Seq> floor(const std::string& bot, const std::string& channel) override;
    bool is_settled(const std::string& bot, const std::string& channel, Seq message_seq) override;
    Seq head(const std::string& channel) override;
    std::optional<Seq> before_time(const std::string& channel, std::int64_t ts_us) override;
    Seq before_last(const std::string& channel, std::uint64_t count) override;

private:
    ConsumerRow read(SQLite::Statement& row);
    // A row's lag (unsettled) and head.
    void add_counts(ConsumerRow& row);

    StreamPositions m_positions;
    SQLite::Statement m_consumer;
    SQLite::Statement m_floor;
    SQLite::Statement m_page_all;
    SQLite::Statement m_page_of_bot;
    SQLite::Statement m_page_of_channel;
    SQLite::Statement m_settled_above;
    SQLite::Statement m_is_settled;
    SQLite::Statement m_head;
    SQLite::Statement m_first_at;
};

}  // namespace botbus::store
