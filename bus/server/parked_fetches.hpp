// The fetches that found nothing and wait (`fetch` with `wait_ms`), kept so
// that waking them costs what they are handed, not how many wait.
//
// Operation: each pull subscription (Reader) has a FIFO of its waiting
// fetches, oldest first; the DeliveryRouter serves a subscription from the
// front of its FIFO while reads hand something out, and stops at the first
// that gets nothing. Beside the FIFOs: the fetches by deadline (the soonest
// is answered first), by connection (a closed connection's fetches go at
// once), and a watch of each waited-on subscription's next redelivery, so a
// delivery coming due again wakes its waiters without looking at every
// subscription. Removing a fetch from the middle of a FIFO (its deadline,
// its connection) leaves a stale id behind that the front skips; a FIFO with
// more stale ids than live ones is compacted, so its memory stays in
// proportion to the fetches that wait.
// Concurrency: the loop thread only.
// Limitations: a plain container: the bounds on how many may wait are
// checked by the fetch op (delivery_ops.cpp) before a fetch is parked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bus/server/release.hpp"

namespace botbus::bus {

class ParkedFetches {
public:
    // Adds the fetch at the back of its subscription's FIFO.
    void park(WaitingFetch fetch);

    bool waiting(const Reader& reader) const { return m_queues.contains(reader); }
    std::size_t size() const { return m_fetches.size(); }
    // The oldest fetch waiting on the subscription, if any; stays parked.
    const WaitingFetch* front(const Reader& reader);
    // Takes the oldest fetch waiting on the subscription out.
    std::optional<WaitingFetch> take_front(const Reader& reader);
    // Every fetch waiting on the subscription, oldest first.
    std::vector<WaitingFetch> take_all(const Reader& reader);
    // Every fetch whose deadline is at or before now_us, soonest first.
    std::vector<WaitingFetch> take_due(std::int64_t now_us);
    // Every fetch of a connection.
    std::vector<WaitingFetch> take_connection(const std::string& routing_id);

    // Subscriptions of a channel that have fetches waiting.
    std::vector<Reader> readers_of(const std::string& channel) const;

    // The subscription's next redelivery (none: nothing in flight); a
    // subscription without waiting fetches is not watched.
    void watch(const Reader& reader, std::optional<std::int64_t> redelivery_us);
    // Watched subscriptions whose redelivery time is at or before now_us;
    // no longer watched until watch() is called for them again.
    std::vector<Reader> take_redeliverable(std::int64_t now_us);

    // When the next fetch deadline or watched redelivery comes.
    std::optional<std::int64_t> next_wakeup() const;

    // Ids in the subscription's FIFO, stale ones included: its memory.
    std::size_t queued_ids(const Reader& reader) const {
        const auto q = m_queues.find(reader);
        return q == m_queues.end() ? 0 : q->second.ids.size();
    }

private:
    using Id = std::uint64_t;
    struct Queue {
        std::deque<Id> ids;  // oldest first; ids no longer in m_fetches are stale
        std::size_t live = 0;
        std::optional<std::int64_t> redelivery_us;  // its entry in m_redeliveries
    };
    WaitingFetch remove(Id id);
    void unwatch(Queue& queue, const Reader& reader);
    // Drops stale ids from the front (and everywhere once they outnumber the live ones).
    void tidy(Queue& queue);

    Id m_next_id = 1;
    std::unordered_map<Id, WaitingFetch> m_fetches;
    std::map<Reader, Queue> m_queues;                            // ordered: a channel's readers are adjacent
    std::set<std::pair<std::int64_t, Id>> m_deadlines;           // soonest first
    std::unordered_map<std::string, std::set<Id>> m_connections;  // routing id -> its fetches
    std::set<std::pair<std::int64_t, Reader>> m_redeliveries;    // watched subscriptions, soonest first
};

}  // namespace botbus::bus
