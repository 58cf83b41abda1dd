// A socket's TCP connections as libzmq reports them (the command ROUTER's,
// the feed XPUB's): which are open, which closed, and which must be turned
// away.
//
// Operation: attach() asks libzmq to report the socket's accepted and
// closed connections on an inproc PAIR socket, whose descriptor is waited
// on with Asio. Each report is read in order by poll(), which the transport
// also calls before it receives requests, so a request is never seen before
// its connection's acceptance. A connection accepted while max_connections
// are open is shut (shutdown(2) on its descriptor: libzmq sees the peer go
// and closes it); a closed connection is handed to the `closed` hook with
// its descriptor, the key the transport files its peers under (ZMQ_SRCFD).
// Concurrency: the io_context's thread only; the PAIR socket is this
// object's alone, and is closed by stop() before the context ends.
// Limitations: a descriptor can be reused by the next connection as soon as
// libzmq closes it. libzmq reports a close before the descriptor is freed,
// and a refusal is skipped when the same poll already read the close; the
// window left is a connection accepted in the microseconds between the two,
// which is then refused with the over-limit one it replaced.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <zmq.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>

namespace botbus::bus {

// Closes a connection that never finishes its ZMTP handshake (10 s) or,
// with heartbeat_ms > 0, stops answering PINGs for three intervals: a peer
// gone without a FIN, or one stuck half way through a frame.
void close_silent_peers(zmq::socket_t& socket, int heartbeat_ms);

class ConnectionMonitor {
public:
    struct Hooks {
        std::function<void(int fd)> closed;  // a connection's descriptor, as its requests carry it
    };

    // `limit_option` names the setting in log lines ("--max-connections").
    ConnectionMonitor(boost::asio::io_context& io, zmq::context_t& zmq, std::size_t max_connections,
                      std::string limit_option, Hooks hooks);
    ConnectionMonitor(const ConnectionMonitor&) = delete;
    ConnectionMonitor& operator=(const ConnectionMonitor&) = delete;
    ~ConnectionMonitor();

    // Starts reporting on `socket`; call before it binds.
    void attach(zmq::socket_t& socket);
    // Reads and applies every report waiting.
    void poll();
    // Stops reporting and closes the PAIR socket; `socket` must still be open.
    void stop(zmq::socket_t& socket);

    std::size_t open() const { return m_open.size(); }
    // Descriptors of the open connections (valid until the next poll()).
    const std::unordered_set<int>& open_descriptors() const { return m_open; }
    std::uint64_t refused() const { return m_refused; }

private:
    void wait();

    std::size_t m_max_connections;
    std::string m_limit_option;
    Hooks m_hooks;
    std::string m_endpoint;
    zmq::socket_t m_pair;
    boost::asio::posix::stream_descriptor m_pair_fd;
    bool m_attached = false;
    bool m_waiting = false;
    std::unordered_set<int> m_open;  // descriptors of the open connections
    std::uint64_t m_refused = 0;
};

}  // namespace botbus::bus
