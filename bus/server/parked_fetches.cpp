#include "bus/server/parked_fetches.hpp"

namespace botbus::bus {

void ParkedFetches::park(WaitingFetch fetch) {
    const auto id = m_next_id++;
    auto& queue = m_queues[fetch.wait.reader];
    queue.ids.push_back(id);
    ++queue.live;
    m_deadlines.emplace(fetch.wait.deadline_us, id);
    m_connections[fetch.routing_id].insert(id);
    m_fetches.emplace(id, std::move(fetch));
}

WaitingFetch ParkedFetches::remove(Id id) {
    const auto it = m_fetches.find(id);
    auto fetch = std::move(it->second);
    m_fetches.erase(it);
    m_deadlines.erase({fetch.wait.deadline_us, id});
    if (const auto c = m_connections.find(fetch.routing_id); c != m_connections.end()) {
        c->second.erase(id);
        if (c->second.empty()) m_connections.erase(c);
    }
    const auto q = m_queues.find(fetch.wait.reader);
    auto& queue = q->second;
    --queue.live;
    if (queue.live == 0) {
        unwatch(queue, q->first);
        m_queues.erase(q);
    } else {
        tidy(queue);
    }
    return fetch;
}

void ParkedFetches::tidy(Queue& queue) {
    while (!queue.ids.empty() && !m_fetches.contains(queue.ids.front())) queue.ids.pop_front();
    // Fetches leave from the middle when their deadline comes first: past
    // twice the live ones (and a few), the stale ids go all at once, which
    // keeps the cost per removal constant on average.
    if (queue.ids.size() > 2 * queue.live + 64) {
        std::erase_if(queue.ids, [&](Id id) { return !m_fetches.contains(id); });
    }
}

const WaitingFetch* ParkedFetches::front(const Reader& reader) {
    const auto q = m_queues.find(reader);
    if (q == m_queues.end()) return nullptr;
    tidy(q->second);
    return &m_fetches.at(q->second.ids.front());
}

std::optional<WaitingFetch> ParkedFetches::take_front(const Reader& reader) {
    const auto q = m_queues.find(reader);
    if (q == m_queues.end()) return std::nullopt;
    tidy(q->second);
    return remove(q->second.ids.front());
}

std::vector<WaitingFetch> ParkedFetches::take_all(const Reader& reader) {
    std::vector<WaitingFetch> out;
    while (auto fetch = take_front(reader)) out.push_back(std::move(*fetch));
    return out;
}

std::vector<WaitingFetch> ParkedFetches::take_due(std::int64_t now_us) {
    std::vector<WaitingFetch> out;
    while (!m_deadlines.empty() && m_deadlines.begin()->first <= now_us) {
        out.push_back(remove(m_deadlines.begin()->second));
    }
    return out;
}

std::vector<WaitingFetch> ParkedFetches::take_connection(const std::string& routing_id) {
    std::vector<WaitingFetch> out;
    const auto c = m_connections.find(routing_id);
    if (c == m_connections.end()) return out;
    const std::vector<Id> ids(c->second.begin(), c->second.end());  // remove() erases from the set
    for (const auto id : ids) out.push_back(remove(id));
    return out;
}

std::vector<Reader> ParkedFetches::readers_of(const std::string& channel) const {
    std::vector<Reader> out;
    for (auto it = m_queues.lower_bound(Reader{channel, "", ""}); it != m_queues.end() && it->first.channel == channel;
         ++it) {
        out.push_back(it->first);
    }
    return out;
}

void ParkedFetches::unwatch(Queue& queue, const Reader& reader) {
    if (queue.redelivery_us) m_redeliveries.erase({*queue.redelivery_us, reader});
    queue.redelivery_us.reset();
}

void ParkedFetches::watch(const Reader& reader, std::optional<std::int64_t> redelivery_us) {
    const auto q = m_queues.find(reader);
    if (q == m_queues.end()) return;
    unwatch(q->second, reader);
    if (!redelivery_us) return;
    q->second.redelivery_us = redelivery_us;
    m_redeliveries.emplace(*redelivery_us, reader);
}

std::vector<Reader> ParkedFetches::take_redeliverable(std::int64_t now_us) {
    std::vector<Reader> out;
    while (!m_redeliveries.empty() && m_redeliveries.begin()->first <= now_us) {
        auto reader = m_redeliveries.begin()->second;
        m_queues.at(reader).redelivery_us.reset();
        m_redeliveries.erase(m_redeliveries.begin());
        out.push_back(std::move(reader));
    }
    return out;
}

std::optional<std::int64_t> ParkedFetches::next_wakeup() const {
    std::optional<std::int64_t> next;
    if (!m_deadlines.empty()) next = m_deadlines.begin()->first;
    if (!m_redeliveries.empty() && (!next || m_redeliveries.begin()->first < *next)) {
        next = m_redeliveries.begin()->first;
    }
    return next;
}

}  // namespace botbus::bus
