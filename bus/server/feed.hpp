// The feed: the daemon's PUB socket, its subscribers' connections, and the
// bytes of feed events libzmq still holds for them.
//
// Operation: publish() hands each event to libzmq as a counted message
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
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "bus/server/connection_monitor.hpp"
#include "bus/server/counted_message.hpp"

namespace botbus::bus {

struct FeedOptions {
    std::string endpoint;
    int hwm = 100000;                                 // events queued per subscriber before PUB drops
    std::size_t max_held_bytes = 64 * 1024 * 1024;    // over all subscribers, before slow ones are cut
    std::size_t max_connections = 1024;
    int heartbeat_ms = 10000;  // 0: no ZMTP heartbeats
};

class Feed {
public:
    Feed(boost::asio::io_context& io, zmq::context_t& zmq, FeedOptions options);
    Feed(const Feed&) = delete;
    Feed& operator=(const Feed&) = delete;

    // Binds the PUB socket; throws std::runtime_error naming the endpoint.
    void bind();
    const std::string& endpoint() const { return m_bound; }

    void publish(const std::string& topic, std::string event);

    std::size_t held_bytes() const { return m_held->load(std::memory_order_relaxed); }
    std::size_t connections() const { return m_monitor.open(); }
    std::uint64_t refused_connections() const { return m_monitor.refused(); }
    std::uint64_t slow_disconnects() const { return m_slow_disconnects; }

    // Closes the socket; queued events are sent for up to linger_ms.
    void close(int linger_ms);

private:
    void shed_slow_subscribers();

    FeedOptions m_options;
    zmq::socket_t m_pub;
    ConnectionMonitor m_monitor;
    std::string m_bound;
    ByteCounter m_held;  // what libzmq holds of the events (counted_message.hpp)
    std::chrono::steady_clock::time_point m_last_check{};
    std::uint64_t m_slow_disconnects = 0;
};

}  // namespace botbus::bus
