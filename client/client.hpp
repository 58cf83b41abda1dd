// The botbus client library: request/reply over a DEALER socket, direct
// message pushes, and channel subscriptions that catch up from history.
//
// Concurrency: a Client or Subscription belongs to one thread (its ZeroMQ
// socket does); use one per thread. The zmq::context_t may be shared.
// Failover: with ClientOptions::other_nodes (several botbusd nodes on one
// PostgreSQL log, docs/SCALING.md), a request that gets no reply within the
// timeout is sent again to the next node, after the client said hello there
// as before; publish and send then carry an idempotency key of the client's
// own when the caller gave none, so a retry of a write the dead node had
// committed is answered as a duplicate with the first seq. A Subscription
// follows its client to the new node and resumes after the last seq it
// delivered; direct messages not acknowledged yet are pushed again by the
// new node (its mailbox is the cluster's).
// Limitations: a Subscription repairs a gap when it sees a later message;
// messages lost at the very tail show up once the channel moves on.
// Only call() and the helpers built on it fail over (not pipelined
// send_request/wait_reply, fetch or next_push); other writes retried on
// another node are either idempotent (heartbeat, step.start) or answered
// with the state error of a change already made (run.complete twice).
#pragma once

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bus/protocol/codec.hpp"
#include "client/curve_keys.hpp"

namespace botbus::client {

using Millis = std::chrono::milliseconds;

// An error reply from the daemon.
class ReplyError : public std::runtime_error {
public:
    ReplyError(bus::Errc code, std::string code_name, const std::string& message);
    bus::Errc code() const { return m_code; }
    const std::string& code_name() const { return m_code_name; }

private:
    bus::Errc m_code;
    std::string m_code_name;
};

// No reply within the timeout.
class TimeoutError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One botbusd's two sockets.
struct NodeEndpoints {
    std::string command_endpoint;
    std::string feed_endpoint;
};

struct ClientOptions {
    // The node in use: the first one, and after a failover the one moved to.
    std::string command_endpoint = "tcp://127.0.0.1:7440";
    std::string feed_endpoint = "tcp://127.0.0.1:7441";
    Millis timeout{5000};
    // With a daemon run with --auth curve: this bot's key pair and the
    // daemon's public key. A key the daemon does not list gets no connection
    // (requests time out); see PROTOCOL.md "Authentication (CURVE)".
    std::optional<CurveClientKeys> curve = std::nullopt;
    // Further nodes of the same cluster, tried in turn after the node in use
    // leaves a request unanswered for `timeout`.
    std::vector<NodeEndpoints> other_nodes = {};
};

struct Ack {
    std::uint64_t seq = 0;
    std::uint64_t stream_seq = 0;  // channel seq, or the recipient's mailbox seq
    std::int64_t ts_us = 0;
    bool duplicate = false;
};

struct HistoryPage {
    std::vector<bus::Message> messages;
    bool more = false;
};

// What a fetch returned: messages with their delivery counts.
struct Fetched {
    std::vector<bus::Message> messages;
    std::uint64_t position = 0;  // the newest seq the subscription has read
    bool caught_up = false;      // nothing newer was there to fetch
};
// Reads a history reply; throws ReplyError for an error reply.
HistoryPage history_page_of(const bus::Reply& reply);

class Client {
public:
    Client(zmq::context_t& context, ClientOptions options);

    // Sends one request and waits for its reply; direct-message pushes that
    // arrive meanwhile are kept for next_push. Throws TimeoutError.
    bus::Reply call(const bus::Request& request);
    // As call, but throws ReplyError for an error reply.
    bus::Reply call_ok(const bus::Request& request);

    // Pipelining: send now, collect replies later (in any order, by id).
    std::uint64_t send_request(const bus::Request& request);
    std::optional<bus::Reply> receive_reply(Millis timeout);
    // The reply to the request sent with this id; replies to others that
    // arrive first are kept for receive_reply. Throws TimeoutError naming
    // `what`, after the options' timeout or the one given.
    bus::Reply wait_reply(std::uint64_t id, std::string_view what, std::optional<Millis> timeout = std::nullopt);

    // Names this connection's bot. With pushes false it acts as the bot
    // without taking its direct messages (tools: they would count as
    // deliveries to a process that does not handle them).
    void hello(const std::string& bot, bool pushes = true);
    Ack publish(const std::string& channel, const bus::PackedValue& body, const std::string& type = "text",
                std::optional<std::string> idempotency_key = std::nullopt,
                std::optional<std::uint64_t> reply_to = std::nullopt);
    Ack send(const std::string& to, const bus::PackedValue& body, const std::string& type = "text",
             std::optional<std::string> idempotency_key = std::nullopt,
             std::optional<std::uint64_t> reply_to = std::nullopt, std::optional<std::uint64_t> ttl_ms = std::nullopt);
    // Request/reply between bots: sends `body` to `to` and waits for the
    // direct message that answers it (reply_to = the request's seq), which it
    // acknowledges and returns. Other pushes meanwhile are kept for
    // next_push. Needs hello on this client. Throws TimeoutError.
    bus::Message send_and_wait(const std::string& to, const bus::PackedValue& body, Millis timeout,
                               const std::string& type = "text");
    // Acknowledges direct messages (or, with `channel`, the messages of this
    // bot's durable subscription to it): everything up to `upto`, and/or
    // each of `seqs`. Returns the acknowledged floor.
    std::uint64_t ack(std::optional<std::uint64_t> upto, std::vector<std::uint64_t> seqs = {},
                      std::optional<std::string> channel = std::nullopt);
    // Pulls up to `max` messages of this bot's durable pull subscription,
    // waiting up to `wait` for the first when none is there. Throws
    // ReplyError, TimeoutError.
    Fetched fetch(const std::string& channel, std::uint64_t max, Millis wait = Millis{0});
    HistoryPage history(const bus::HistoryRequest& request);

    // The next push to this connection: a direct message (after hello) or a
    // message of a subscription delivered here (event "message", with its
    // delivery count; acknowledge it, or it comes again), or a
    // subscription's caught_up marker (event "caught_up", channel, seq).
    std::optional<bus::Message> next_push(Millis timeout);

    const ClientOptions& options() const { return m_options; }
    zmq::context_t& context() { return m_context; }

    // Whether other nodes are configured to fail over to.
    bool can_fail_over() const { return m_nodes.size() > 1; }
    // Moves to the next node that answers (saying hello there again, if this
    // client did); throws TimeoutError when none does. Replies still owed by
    // the old node are dropped; pushes already received are kept.
    void fail_over();
    // Counts the moves: a Subscription compares it to follow its client.
    std::uint64_t node_generation() const { return m_generation; }

private:
    // Reads one frame; replies go back, pushes go to m_pushes.
    std::optional<bus::Reply> read_one(Millis timeout);

    void connect_node(std::size_t index);
    std::optional<std::string> own_idempotency_key();

    zmq::context_t& m_context;
    ClientOptions m_options;
    std::vector<NodeEndpoints> m_nodes;  // the first node, then other_nodes
    std::size_t m_node = 0;
    std::uint64_t m_generation = 0;
    std::optional<bus::HelloRequest> m_hello;  // said again after a move
    std::string m_key_prefix;                  // own idempotency keys: prefix-counter
    std::uint64_t m_keys_made = 0;
    zmq::socket_t m_socket;
    std::uint64_t m_next_id = 1;
    std::deque<bus::Message> m_pushes;
    std::deque<bus::Reply> m_stray_replies;  // replies to pipelined requests read while waiting for another
};

// Follows one channel: delivers every message after `after_seq` (or, without
// it, from the moment of subscribing), in seq order, without gaps or
// duplicates: it subscribes live, confirms the subscription is active with a
// feed.sync marker, catches up from history, then repairs any gap it sees
// live from history.
class Subscription {
public:
    // Returns once the subscription is live on the feed; history is then
    // fetched a page at a time as next() needs it, the following page always
    // requested before the current one is handed out.
    Subscription(Client& client, std::string channel, std::optional<std::uint64_t> after_seq = std::nullopt);

    // The next message, or nullopt when none arrives within the timeout.
    std::optional<bus::Message> next(Millis timeout);

    std::uint64_t last_seq() const { return m_last_seq; }

private:
    void connect_feed();
    // After the client moved to another node: the feed there, then history
    // after the last seq delivered.
    void follow_client();
    // Whether the client's node still answers (it fails over when not);
    // follows it when it moved.
    void check_node();
    // Confirms the feed socket's subscription; false when the client moved
    // to another node meanwhile (the socket is then on the old one).
    bool sync_feed();
    void request_page(std::uint64_t after_seq);
    // Collects the page in flight, and requests the next one when there is
    // more; throws TimeoutError when it does not come.
    void take_page();
    void catch_up_fully();
    bool accept_live(bus::Message message);

    Client& m_client;
    std::string m_channel;
    std::string m_topic;
    zmq::socket_t m_sub;
    std::uint64_t m_last_seq = 0;
    std::optional<std::uint64_t> m_last_channel_seq;  // of the last delivered message, once known
    std::deque<bus::Message> m_ready;
    bool m_catching_up = false;                  // history has more before live takes over
    std::optional<std::uint64_t> m_page_request;  // id of the history request in flight
    std::uint64_t m_generation;                   // the client's node this follows
};

}  // namespace botbus::client
