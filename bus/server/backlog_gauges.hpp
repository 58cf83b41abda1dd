// What waits for bots: mailbox depth and the age of the oldest
// unacknowledged direct message, durable subscription lag, for the metrics
// endpoint.
//
// Operation: a pass walks every mailbox stream, then every durable
// subscription, a page at a time: step() reads at most `rows_per_step` rows
// (a few index probes each), so a scan never holds the loop for longer than
// a page, however many bots there are. When a pass ends its totals become
// the published ones and the next pass starts. The figures are those of
// the last complete pass: at most one pass old (the server steps it every
// 100 ms; a pass over N bots and subscriptions takes N / rows_per_step steps).
// Concurrency: the server's loop, between batches (the Store's thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "store/store.hpp"

namespace botbus::bus {

struct BacklogFigures {
    std::uint64_t mailboxes = 0;          // mailboxes holding at least one unacknowledged message
    std::uint64_t mailbox_messages = 0;   // unacknowledged direct messages, over every mailbox
    std::uint64_t mailbox_max = 0;        // the deepest mailbox
    std::optional<std::int64_t> oldest_unacked_us;  // when the oldest unacknowledged one was sent (UTC µs)
    std::uint64_t subscriptions = 0;      // durable subscriptions
    std::uint64_t subscription_lag = 0;   // unacknowledged messages, over every durable subscription
    std::uint64_t subscription_max_lag = 0;
    std::int64_t completed_at_us = 0;     // when the pass that found these ended; 0 before the first
};

class BacklogGauges {
public:
    explicit BacklogGauges(store::Store& store, std::size_t rows_per_step = 256)
        : m_store(store), m_rows_per_step(rows_per_step) {}

    // One bounded step of the current pass; returns true when it ended one.
    bool step(std::int64_t now_us);
    const BacklogFigures& figures() const { return m_published; }

private:
    bool step_mailboxes(std::size_t& budget);
    bool step_subscriptions(std::size_t& budget);

    store::Store& m_store;
    std::size_t m_rows_per_step;
    bool m_in_subscriptions = false;
    std::string m_stream_cursor;
    std::optional<std::pair<std::string, std::string>> m_consumer_cursor;
    BacklogFigures m_pass;
    BacklogFigures m_published;
};

}  // namespace botbus::bus
