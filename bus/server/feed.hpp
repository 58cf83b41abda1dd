// The feed: the daemon's XPUB socket, its subscribers' connections and
// subscriptions, and the bytes of feed events libzmq still holds for them.
//
// Operation: the socket is an XPUB with ZMQ_XPUB_MANUAL, so no subscription
// takes effect by itself: the loop reads each subscription message (1 byte,
// 1 subscribe / 0 unsubscribe, then the topic prefix) when the socket's
// ZMQ_FD signals, with the subscriber's User-Id (its bot, with CURVE) and
// descriptor, and applies a subscribe only when the may_subscribe hook
// allows it (default: everything). A refused subscription is counted and
// its subscriber simply receives nothing for that prefix. With CURVE the
// socket is a CURVE server checked by the ZAP handler (zap_handler.hpp);
// close_connections_of() and close_unlisted_connections() shut the
// connections of a bot, or of keys a reload took off the allowlist, as far
// as their subscription messages made them known; recheck_subscriptions()
// shuts those holding a subscription the hook now refuses (a permission
// revoked), since XPUB cannot retract one connection's subscription.
// publish() hands each event to libzmq as a counted message
// (counted_message.hpp), so the bytes queued for subscribers are known at
// all times. A subscriber that does not
// read holds the events queued for it: once the held bytes pass
// max_held_bytes, every subscriber whose TCP connection cannot take more
// (its socket is not writable: it has stopped draining) is disconnected,
// which frees what libzmq held for it, the way Redis and NATS cut a slow
// consumer. libzmq SUB sockets reconnect by themselves; the subscriber sees
// a gap in channel_seq and repairs it from history (PROTOCOL.md, The feed).
// Connections past max_connections are shut as they are accepted.
// publish() never blocks: PUB also drops for a subscriber at its high-water
// mark (hwm events).
// Concurrency: every method runs on the io_context's thread (libzmq's I/O
// thread only lowers the atomic count).
// Limitations: the held bytes overshoot the bound by what is published
// within one check interval (50 ms); the event frames are counted, not
// libzmq's per-message overhead or the kernel's socket buffers.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bus/server/connection_monitor.hpp"
#include "bus/server/counted_message.hpp"

namespace botbus::bus {

struct FeedOptions {
    std::string endpoint;
    int hwm = 100000;                                 // events queued per subscriber before PUB drops
    std::size_t max_held_bytes = 64 * 1024 * 1024;    // over all subscribers, before slow ones are cut
    std::size_t max_connections = 1024;
    int heartbeat_ms = 10000;  // 0: no ZMTP heartbeats
    std::optional<std::string> curve_secret_key = std::nullopt;  // Z85: a CURVE server, approved by the ZAP handler
    // Whether a subscriber (its User-Id: the bot, with CURVE) may subscribe
    // to a topic prefix. Empty: everyone may subscribe to everything.
    std::function<bool(const std::optional<std::string>& user_id, std::string_view topic_prefix)> may_subscribe;
};

class Feed {
public:
    Feed(boost::asio::io_context& io, zmq::context_t& zmq, FeedOptions options);
    Feed(const Feed&) = delete;
    Feed& operator=(const Feed&) = delete;
    ~Feed();

    // Binds the XPUB socket and starts reading subscriptions; throws
    // std::runtime_error naming the endpoint.
    void bind();
    const std::string& endpoint() const { return m_bound; }

    void publish(const std::string& topic, std::string event);

    std::size_t held_bytes() const { return m_held->load(std::memory_order_relaxed); }
    std::size_t connections() const { return m_monitor.open(); }
    std::uint64_t refused_connections() const { return m_monitor.refused(); }
    std::uint64_t slow_disconnects() const { return m_slow_disconnects; }
    std::uint64_t refused_subscriptions() const { return m_refused_subscriptions; }

    // Shuts the feed connections that subscribed as `bot`; returns how many.
    std::size_t close_connections_of(const std::string& bot);
    // Shuts the connections whose key no longer maps to their bot; returns
    // how many.
    std::size_t close_unlisted_connections(const std::function<bool(const std::string& key, const std::string& bot)>& allowed);
    // Asks may_subscribe again for every subscription applied so far (after
    // a permission rule changed) and shuts the connections that hold one it
    // now refuses: XPUB cannot take back one connection's subscription, so
    // the subscriber reconnects, subscribes again, and is asked afresh.
    // Returns how many were shut.
    std::size_t recheck_subscriptions();
    // Reads the subscription messages waiting (also run after publishing:
    // a send can swallow the ZMQ_FD edge).
    void read_subscriptions();

    // Closes the socket; queued events are sent for up to linger_ms.
    void close(int linger_ms);

private:
    struct Subscriber {
        std::optional<std::string> bot;   // User-Id: with CURVE, the bot
        std::string key;                  // Z85, with CURVE
        std::multiset<std::string> topics;  // the prefixes applied for it
    };

    void shed_slow_subscribers();
    void wait_readable();
    // The connection a subscription message came from (null when libzmq
    // cannot say).
    Subscriber* note_subscriber(const zmq::message_t& message);
    std::size_t shut(const std::function<bool(const Subscriber&)>& which);

    FeedOptions m_options;
    zmq::socket_t m_pub;
    boost::asio::posix::stream_descriptor m_pub_fd;
    bool m_open = false;
    bool m_waiting = false;
    bool m_read_posted = false;
    ConnectionMonitor m_monitor;
    std::unordered_map<int, Subscriber> m_subscribers;  // by descriptor, once one subscribed
    std::uint64_t m_refused_subscriptions = 0;
    std::string m_bound;
    ByteCounter m_held;  // what libzmq holds of the events (counted_message.hpp)
    std::chrono::steady_clock::time_point m_last_check{};
    std::uint64_t m_slow_disconnects = 0;
};

}  // namespace botbus::bus
