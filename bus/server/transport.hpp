// The daemon's command socket (a ROUTER), the peers that talk on it, and
// the replies waiting for a full peer. (The feed's XPUB socket is feed.hpp's.)
//
// Operation: bind() binds the socket; when_readable() waits for the
// ROUTER's ZMQ_FD, and receive() drains up to `max` requests (and about
// max_batch_bytes) into Inbound records, checking each message's frame shape
// (a malformed one is kept in its place with the error to answer it with).
// ZMQ_FD is edge-triggered: the caller drains to EAGAIN after every wake-up
// and after every send made outside its drain loop, or the next request may
// never wake it.
// Each routing id has a Session; bind_session() makes a connection a bot's
// (unbind_session() undoes it), and fan_out_connections() finds the bot's
// connections that take a copy of every direct message. send_to() sends a reply or push; when the peer's queue is
// full it waits in that peer's backlog, retried every millisecond on a
// timer: ROUTER_MANDATORY is on, so nothing is lost silently. A backlog is
// bounded in replies and in bytes, per peer and over all peers; past a bound
// replies are dropped, counted and logged.
// In flight: each connection's requests are counted from receive() until
// their answer (send_reply) leaves its backlog for libzmq or is dropped. A
// request that finds max_in_flight already counted is handed out refused
// (problem limit_reached, its frame freed), to be answered in its turn so
// that replies keep request order; it counts until then like any other.
// Identity: set_bot() names a connection's bot at once (a hello, and its undo
// when the batch fails), so bot_connections() holds within a batch too.
// Connections: a ConnectionMonitor sees each TCP connection come and go. A
// connection past max_connections is shut at once; a peer whose connection
// closes (or stops answering ZMTP heartbeats) is forgotten with its session,
// and the hooks say so. A peer found gone by a send (EHOSTUNREACH) is
// forgotten the same way.
// Memory: what botbusd holds per peer is bounded in bytes here. What libzmq
// holds for a peer is bounded in messages (send_hwm, recv_hwm) and, for
// replies of 1 KiB or more, in bytes too: they are counted while libzmq
// holds them (counted_message.hpp), and past max_peer_backlog_bytes for the
// peer (or max_backlog_bytes over all peers) the peer counts as full. See PROTOCOL.md "Connections and their limits".
// Concurrency: every method runs on the io_context's single thread; the
// zmq::context_t may be shared, the sockets are this object's alone.
// Limitations: a connection is known by the descriptor its requests came
// from; a request still queued from a connection that has closed can make a
// session again, kept until that descriptor's next connection closes.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <zmq.hpp>

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/core/handler.hpp"
#include "bus/protocol/codec.hpp"
#include "bus/server/connection_monitor.hpp"
#include "bus/server/counted_message.hpp"

namespace botbus::bus {

struct TransportOptions {
    std::string command_endpoint;
    std::size_t max_frame = k_default_max_frame;
    std::size_t max_batch_bytes = 4 * 1024 * 1024;  // request bytes received per batch (at least one request)
    std::size_t max_peer_backlog = 100000;           // replies held for one peer
    std::size_t max_peer_backlog_bytes = 16 * 1024 * 1024;
    std::size_t max_backlog_bytes = 512 * 1024 * 1024;  // over all peers
    int send_hwm = 1000;
    int recv_hwm = 1000;
    std::size_t max_connections = 4096;
    int heartbeat_ms = 10000;  // 0: no ZMTP heartbeats
    std::optional<std::string> curve_secret_key = std::nullopt;  // Z85: a CURVE server, approved by the ZAP handler
    std::size_t max_in_flight = 4096;  // requests received from one connection and not yet answered
};

// One request as it came off the ROUTER.
struct Inbound {
    std::string routing_id;
    zmq::message_t body;  // the request frame itself: decoded in place, never copied
    bool req_style = false;  // had an empty delimiter: REQ-like, never pushed to
    std::optional<WireError> problem;  // not run: answered in turn with this (bad shape, --max-in-flight)
    std::optional<PackedValue> problem_id;  // the id `problem`'s reply echoes, when it could be read
};

class Transport {
public:
    struct Hooks {
        // A connection that was bots' `previous` is now another bot's.
        std::function<void(const std::string& routing_id, const std::vector<std::string>& previous)> rebound;
        // A peer is gone; `bot` is the one it was, if any.
        std::function<void(const std::string& routing_id, const std::optional<std::string>& bot)> forgotten;
        // Runs after each backlog retry; true while it has work waiting for
        // a peer to drain, which keeps the retry timer going.
        std::function<bool()> after_retry;
        // Drains the command socket to EAGAIN: called when it signals, and
        // after sends outside the drain loop (they can swallow the edge).
        std::function<void()> drain;
        // With CURVE: whether a connection's key (Z85) still maps to its bot
        // (the allowlist may have been reloaded since its handshake). A
        // request from one that does not is dropped and its connection shut.
        std::function<bool(const std::string& key, const std::string& bot)> key_allowed;
    };

    Transport(boost::asio::io_context& io, zmq::context_t& zmq, TransportOptions options, ServerCounters& counters,
              Hooks hooks);
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;
    ~Transport();

    // Binds the socket; throws std::runtime_error naming the endpoint when
    // the bind fails.
    void bind();
    const std::string& command_endpoint() const { return m_bound_command; }

    // Calls the `drain` hook once when the command socket signals
    // (edge-triggered: only after a drain to EAGAIN).
    void when_readable();
    std::vector<Inbound> receive(std::size_t max);
    bool requests_waiting();  // the command socket has a request ready

    // The connection's session, made on first use.
    Session& session(const std::string& routing_id) { return m_peers[routing_id].session; }
    bool knows(const std::string& routing_id) const { return m_peers.contains(routing_id); }
    std::optional<std::string> bot_of(const std::string& routing_id) const;
    // Sets (or clears) the connection's hello identity at once; the delivery
    // routes follow at bind_session, when the hello is released.
    void set_bot(const std::string& routing_id, const std::optional<std::string>& bot);
    // Connections whose identity is `bot`, counting hellos not yet released.
    std::size_t bot_connections(const std::string& bot) const;
    // Bots with at least one connection bound to them.
    std::size_t identified_bots() const { return m_bot_sessions.size(); }
    std::size_t sessions() const { return m_peers.size(); }
    std::size_t connections() const { return m_monitor.open(); }
    std::uint64_t refused_connections() const { return m_monitor.refused(); }
    std::size_t backlog_bytes() const { return m_backlog_bytes; }
    // A released hello: the connection is the bot's; with can_push it takes
    // pushes, with fan_out a copy of every direct message of the bot.
    void bind_session(const std::string& routing_id, const std::string& bot, bool can_push, bool fan_out = false);
    // A released bye: the connection is nobody's (until another hello).
    void unbind_session(const std::string& routing_id);
    // The bot's connections that asked for every direct message (hello's fan_out).
    std::vector<std::string> fan_out_connections(const std::string& bot) const;
    // Shuts every connection whose key no longer passes key_allowed (after
    // an allowlist reload); returns how many. Each is forgotten when its
    // close is reported.
    std::size_t close_unlisted_connections();
    std::uint64_t auth_disconnects() const { return m_auth_disconnects; }

    // A push, or an answer to a request receive() never counted.
    void send_to(const std::string& routing_id, bool req_style, std::string body);
    // The answer to a request receive() handed out: the connection has one
    // request fewer in flight once it leaves the backlog (or is dropped).
    void send_reply(const std::string& routing_id, bool req_style, std::string body);
    std::size_t in_flight(const std::string& routing_id) const;
    bool backlogged(const std::string& routing_id) const { return m_backlog.contains(routing_id); }
    void schedule_backlog_retry();

    // Shutdown, in this order: stop_reading() stops waking and retrying;
    // refuse_queued() answers the requests still queued with shutting_down;
    // close() sends what the backlogs hold where there is room, then closes
    // the socket, lingering up to linger_ms.
    void stop_reading();
    void refuse_queued();
    // Answers one request that was received but will never run the same way.
    void refuse(const Inbound& in);
    void close(int linger_ms);
    // Whether a request came in since the last call (for the shutdown drain).
    bool take_activity();

private:
    struct PeerState {
        Session session;
        bool fan_out = false;  // takes a copy of every direct message of its bot
        int fd = -1;  // the descriptor its requests come from
        std::string key;  // its CURVE public key (Z85), when authenticated
        ByteCounter queued = make_byte_counter();  // bytes of its big replies libzmq holds
        // Requests received and not yet answered: in a batch, held for the
        // sync, waiting fetches, replies in its backlog (--max-in-flight).
        std::size_t in_flight = 0;
    };
    struct Pending {
        bool req_style;
        std::string body;
        bool reply = false;  // answers a counted request
    };
    struct Backlog {
        std::deque<Pending> replies;
        std::size_t bytes = 0;
    };

    void forget_peer(const std::string& routing_id);
    void connection_closed(int fd);
    void note_peer_fd(const std::string& routing_id, const zmq::message_t& part);
    // Records the connection's authenticated bot and key; false when the key
    // no longer maps to that bot (the connection has been shut).
    bool note_peer_key(const std::string& routing_id, const zmq::message_t& part);
    void shut_connection(int fd);
    void drop_reply(const std::string& routing_id, bool reply, const char* why);
    void answered(const std::string& routing_id);
    void deliver(const std::string& routing_id, bool req_style, std::string body, bool reply);
    // Refuses a request past --max-in-flight in its turn, without running it.
    void refuse_over_limit(Inbound& in, std::size_t in_flight);
    void pop_front(Backlog& backlog);
    void erase_backlog(std::map<std::string, Backlog>::iterator it);
    bool try_send(const std::string& routing_id, bool req_style, const std::string& body);
    // Sends unless the peer is full (in replies or bytes): false, nothing sent.
    bool send_now(const std::string& routing_id, bool req_style, const std::string& body);
    bool pollin();        // ZMQ_EVENTS says a request is ready
    void recheck_soon();  // after touching the socket while waiting for its edge
    void refuse_body(const std::string& routing_id, bool req_style, std::string_view body, bool counted);
    void retry_backlog();

    TransportOptions m_options;
    ServerCounters& m_counters;
    Hooks m_hooks;
    zmq::socket_t m_router;
    boost::asio::posix::stream_descriptor m_router_fd;
    boost::asio::steady_timer m_backlog_timer;
    std::string m_bound_command;
    bool m_open = false;
    bool m_armed = false;
    bool m_recheck_posted = false;
    bool m_retry_scheduled = false;
    bool m_activity = false;
    ConnectionMonitor m_monitor;
    std::unordered_map<std::string, PeerState> m_peers;         // by routing id
    std::map<std::string, std::set<std::string>> m_bot_peers;    // bot -> routing ids (released hellos)
    std::unordered_map<std::string, std::size_t> m_bot_sessions;  // bot -> sessions naming it (set_bot)
    std::unordered_map<int, std::set<std::string>> m_fd_peers;   // descriptor -> routing ids
    std::map<std::string, Backlog> m_backlog;                    // routing id -> replies waiting for room
    std::size_t m_backlog_bytes = 0;                             // over every backlog
    std::uint64_t m_auth_disconnects = 0;                        // shut: key no longer listed for its bot
    ByteCounter m_queued = make_byte_counter();                  // big replies libzmq holds, over every peer
};

}  // namespace botbus::bus
