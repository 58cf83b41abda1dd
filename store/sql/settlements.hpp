// The settled messages of one kind of reader of a stream (a bot's mailbox,
// a bot's durable subscription to a channel): a floor at or below which
// everything is settled, and the messages settled one by one above it. The
// floor moves up over settled messages as soon as nothing unsettled lies
// below them, and their rows go.
// Used by the projectors, so live appends and rebuilds settle alike.
// Concurrency: single-threaded, like the Database it writes.
#pragma once

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"

#include <string>
#include <string_view>
#include <vector>

#include "store/event.hpp"

namespace botbus::store {

class Settlements {
public:
    // Statements over the reader's tables. The reader's key (one or two
    // text columns) is bound first, as ?1 (and ?2); then the values named.
    struct Sql {
        const char* floor;           // SELECT the floor                         (key)
        const char* raise_floor;     // floor = MAX(floor, upto), last_seq = seq (key, upto, event seq)
        const char* insert_settled;  // insert, ignoring a repeat                (key, seq, outcome)
        const char* is_settled;      // SELECT 1 when settled above the floor    (key, seq)
        const char* delete_upto;     // delete the rows at or below a seq        (key, seq)
    };
    Settlements(sql::Connection& db, const Sql& sql);

    Seq floor(const std::vector<std::string>& key);
    void raise_floor(const std::vector<std::string>& key, Seq upto, Seq event_seq);
    // Settles one message of `stream` (no-op at or below the floor).
    void settle(const std::vector<std::string>& key, Seq message_seq, std::string_view outcome, Seq event_seq);
    // Moves the floor over settled messages of `stream` with nothing unsettled below.
    void compact(const std::vector<std::string>& key, const std::string& stream, Seq event_seq);

private:
    int bind_key(sql::Statement& statement, const std::vector<std::string>& key);  // returns the next index

    sql::Statement m_floor;
    sql::Statement m_raise_floor;
    sql::Statement m_insert_settled;
    sql::Statement m_is_settled;
    sql::Statement m_delete_upto;
    sql::Statement m_next_message;
};

}  // namespace botbus::store
