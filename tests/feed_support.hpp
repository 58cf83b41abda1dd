// A raw SUB socket for end-to-end tests: feed events decoded to JSON, the
// subscription confirmed live with a feed.sync marker (no sleeping for the
// slow joiner).
#pragma once

#include <unistd.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "client/client.hpp"

namespace botbus::testing {

using namespace std::chrono_literals;

inline client::Millis until(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<client::Millis>(deadline - std::chrono::steady_clock::now());
    return left.count() > 0 ? left : client::Millis{0};
}

struct FeedEvent {
    std::string topic;
    nlohmann::json event;  // the event map, e.g. {event, seq, ts, ...}
    std::string type() const { return event.value("event", std::string()); }
};

// A raw SUB socket on some topics, confirmed live with a feed.sync marker
// before the constructor returns (no sleeping for the slow joiner).
class Feed {
public:
    // `reads_slowly`: the socket takes one event at a time into a 4 KiB
    // buffer, so what the test does not read stays queued in the daemon.
    Feed(zmq::context_t& context, client::Client& client, const std::vector<std::string>& topics,
         bool reads_slowly = false)
        : m_sub(context, zmq::socket_type::sub) {
        m_sub.set(zmq::sockopt::linger, 0);
        if (client.options().curve) client::use_curve(m_sub, *client.options().curve);
        if (reads_slowly) {
            m_sub.set(zmq::sockopt::rcvhwm, 1);
            m_sub.set(zmq::sockopt::rcvbuf, 4096);
        }
        for (const auto& topic : topics) m_sub.set(zmq::sockopt::subscribe, topic);
        m_sub.connect(client.options().feed_endpoint);
        sync(client);
    }

    // Round-trips a feed.sync marker through this socket and returns what
    // arrived before it: the subscriptions are live, and (PUB keeps order)
    // every event published before the marker's request has been received.
    std::vector<FeedEvent> sync(client::Client& client) {
        static int k_tokens = 0;
        const auto token = "feed-" + std::to_string(::getpid()) + "-" + std::to_string(++k_tokens);
        const auto marker = bus::sync_topic(token);
        m_sub.set(zmq::sockopt::subscribe, marker);
        std::vector<FeedEvent> before;
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::chrono::steady_clock::now() < deadline) {
            client.call_ok(bus::FeedSyncRequest{token});
            const auto round = std::min(deadline, std::chrono::steady_clock::now() + 100ms);
            while (std::chrono::steady_clock::now() < round) {
                auto parts = receive(until(round));
                if (!parts) break;
                if (parts->first == marker) {
                    m_sub.set(zmq::sockopt::unsubscribe, marker);
                    return before;
                }
                if (!parts->first.starts_with("sync/")) {
                    before.push_back(FeedEvent{parts->first, nlohmann::json::from_msgpack(parts->second)});
                }
            }
        }
        throw std::runtime_error("the feed never confirmed the subscription");
    }

    // The next event on the subscribed topics, or nullopt on timeout.
    std::optional<FeedEvent> next(client::Millis timeout) {
        auto parts = receive(timeout);
        if (!parts) return std::nullopt;
        return FeedEvent{parts->first, nlohmann::json::from_msgpack(parts->second)};
    }

    // Waits for the first event of `type` (on `topic`, when given); events
    // before it are kept in skipped(). nullopt when the deadline passes.
    std::optional<FeedEvent> wait_for(const std::string& type, client::Millis timeout,
                                      const std::optional<std::string>& topic = std::nullopt) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            auto event = next(until(deadline));
            if (!event) break;
            if (event->type() == type && (!topic || event->topic == *topic)) return event;
            m_skipped.push_back(std::move(*event));
        }
        return std::nullopt;
    }

    const std::vector<FeedEvent>& skipped() const { return m_skipped; }

private:
    std::optional<std::pair<std::string, std::string>> receive(client::Millis timeout) {
        zmq::pollitem_t item{m_sub.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, std::max(timeout, client::Millis{0})) == 0) return std::nullopt;
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(m_sub, std::back_inserter(parts), zmq::recv_flags::dontwait) || parts.size() != 2) {
            return std::nullopt;
        }
        return std::pair{parts[0].to_string(), parts[1].to_string()};
    }

    zmq::socket_t m_sub;
    std::vector<FeedEvent> m_skipped;
};

}  // namespace botbus::testing
