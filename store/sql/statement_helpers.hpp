// Small helpers every statement user in store/ needs: stepping write
// statements safely, resetting queries however the caller leaves, and
// nullable columns and parameters. Internal to store/.
#pragma once


#include "store/sql/statement.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

namespace botbus::store::detail {

// Steps a write statement and resets it, also when the step fails: a
// statement left unreset after an error refuses every later bind, which would
// fail every later batch.
// A seq, count or bound from a request as an SQL integer (64 bits): seqs never pass
// INT64_MAX, so anything beyond it means "past every seq" rather than
// wrapping to a negative number that is below every seq.
inline std::int64_t to_sql_int(std::uint64_t value) {
    constexpr auto k_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(value > k_max ? k_max : value);
}

// The rows it changed.
inline int exec_and_reset(sql::Statement& statement) {
    int changed = 0;
    try {
        changed = statement.exec();
    } catch (...) {
        try {
            statement.reset();
        } catch (...) {  // reset repeats the step's error, already being thrown
        }
        throw;
    }
    statement.reset();
    return changed;
}

// A write whose outcome is not read (Statement::send), then reset: on
// PostgreSQL it goes out without a round trip of its own.
inline void send_and_reset(sql::Statement& statement) {
    try {
        statement.send();
    } catch (...) {
        try {
            statement.reset();
        } catch (...) {
        }
        throw;
    }
    statement.reset();
}

// Resets a query statement however the caller leaves, so a thrown exception
// never leaves a read transaction pinned.
struct ResetOnExit {
    sql::Statement& statement;
    ~ResetOnExit() {
        try {
            statement.reset();
        } catch (...) {  // a failed reset repeats the step's error, already reported
        }
    }
};

inline void bind_optional(sql::Statement& statement, int index, const std::optional<std::string>& value) {
    if (value) {
        statement.bind(index, *value);
    } else {
        statement.bind(index);
    }
}

inline std::optional<std::string> optional_text(const sql::Column& column) {
    if (column.isNull()) return std::nullopt;
    return column.getString();
}

inline std::optional<std::int64_t> optional_int(const sql::Column& column) {
    if (column.isNull()) return std::nullopt;
    return column.getInt64();
}

}  // namespace botbus::store::detail
