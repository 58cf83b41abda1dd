// ConsumerQueries over the projection tables (either engine) (channel_consumers,
// consumer_settled) and the event log's (stream, seq) index
// (stream_positions.hpp): each row's lag costs a few index probes.
// Concurrency: single-threaded, on the SqliteStore's connection.
#pragma once

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"

#include "store/consumer_queries.hpp"
#include "store/sql/stream_positions.hpp"

namespace botbus::store {

class SqlConsumerQueries final : public ConsumerQueries {
public:
    explicit SqlConsumerQueries(sql::Connection& db);

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
    ConsumerRow read(sql::Statement& row);
    // A row's lag (unsettled) and head.
    void add_counts(ConsumerRow& row);

    StreamPositions m_positions;
    sql::Statement m_consumer;
    sql::Statement m_floor;
    sql::Statement m_page_all;
    sql::Statement m_page_of_bot;
    sql::Statement m_page_of_channel;
    sql::Statement m_settled_above;
    sql::Statement m_is_settled;
    sql::Statement m_head;
    sql::Statement m_first_at;
};

}  // namespace botbus::store
