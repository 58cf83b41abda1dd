// One page of a list query: how many rows, and how many bytes of them, a
// query reads at most. Every list query of the store seam takes one, so no
// read of a list is unbounded (keyset paging: each query also takes the key
// of the last row the caller has, and reads on from there).
//
// Operation: a query reads rows in its order until it holds `limit` of them,
// or until the rows it holds weigh more than `max_bytes` and there are at
// least two: the row that crossed the budget tells the caller that more
// rows follow the ones it keeps (at least one), so it needs no second query
// to know whether the list goes on. Weights are row_bytes() below and in the
// row headers: the variable parts of a row plus a fixed allowance, close to
// the row's size on the wire.
// Limitations: max_bytes bounds the read to the budget plus two rows; a
// single row is never cut.
#pragma once

#include <cstddef>
#include <limits>
#include <string>

namespace botbus::store {

struct Page {
    std::size_t limit = 100;
    std::size_t max_bytes = std::numeric_limits<std::size_t>::max();
};

// What a name (a channel or bot id in a list of names) weighs.
inline std::size_t row_bytes(const std::string& name) { return name.size() + 1; }

// Fills `rows` as `page` allows: `next(rows)` appends the next row and
// returns true, or returns false at the end of the list. A row weighs its
// row_bytes().
template <typename Rows, typename Next>
void read_page(Rows& rows, const Page& page, Next next) {
    std::size_t bytes = 0;
    while (rows.size() < page.limit && next(rows)) {
        bytes += row_bytes(rows.back());
        if (bytes > page.max_bytes && rows.size() >= 2) break;
    }
}

}  // namespace botbus::store
