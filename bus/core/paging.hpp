// Paging of the list ops (history, dlq.list, channel.list, subscriptions,
// subscribers, workflow.list, run.list, run.crashed, run.steps,
// run.completed_steps): one `limit` rule and one reply byte budget for all,
// so no request can make the loop build a reply of unbounded size.
//
// Operation: an op checks the request's limit with page_limit(), asks the
// store for page_query(limit) (one row more than the limit, read at most to
// the byte budget: store/page.hpp), and cuts the rows with fit_page(),
// which says whether more follow. A client pages on with the key of the
// last row it got (docs/PROTOCOL.md, "Paging").
// Concurrency: plain functions; the loop thread calls them.
// Limitations: the budget counts row weights (store/page.hpp), not packed
// bytes; a reply is always at least one row, so one row larger than the
// budget comes alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bus/core/op_context.hpp"
#include "store/page.hpp"

namespace botbus::bus {

inline constexpr std::size_t k_max_reply_bytes = 1024 * 1024;  // a list reply's rows, about
inline constexpr std::uint64_t k_max_page_limit = 1000;
inline constexpr std::uint64_t k_default_page_limit = 100;

// The request's `limit` (1..k_max_page_limit, default k_default_page_limit).
inline Result<std::size_t> page_limit(const std::optional<std::uint64_t>& limit) {
    const auto value = limit.value_or(k_default_page_limit);
    if (value == 0 || value > k_max_page_limit) {
        return WireError(Errc::invalid_field, "field 'limit' must be 1 to " + std::to_string(k_max_page_limit));
    }
    return static_cast<std::size_t>(value);
}

// What to ask the store for a page of `limit` rows: one more, which tells
// whether more follow, and no more bytes than a reply may hold.
inline store::Page page_query(std::size_t limit) { return store::Page{limit + 1, k_max_reply_bytes}; }

// Cuts rows read with page_query(limit) to what one reply holds: at most
// `limit` rows, and rows past the first only while `weigh`ed together they
// stay within k_max_reply_bytes. True when rows were left out (more follow).
template <typename Row, typename Weigh>
bool fit_page(std::vector<Row>& rows, std::size_t limit, Weigh weigh) {
    bool more = rows.size() > limit;
    if (more) rows.resize(limit);
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        bytes += weigh(rows[i]);
        if (i > 0 && bytes > k_max_reply_bytes) {
            rows.resize(i);
            return true;
        }
    }
    return more;
}

template <typename Row>
bool fit_page(std::vector<Row>& rows, std::size_t limit) {
    return fit_page(rows, limit, [](const Row& row) {
        using store::row_bytes;  // and, by argument-dependent lookup, the row's own
        return row_bytes(row);
    });
}

}  // namespace botbus::bus
