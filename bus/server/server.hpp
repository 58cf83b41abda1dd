// botbusd's wire front: a ROUTER command socket and a PUB feed socket driven
// by one Asio io_context.
//
// Operation: when the ROUTER's ZMQ_FD signals, the server drains ready
// requests (up to max_batch) until EAGAIN, executes them in arrival order in
// one store batch and commits it without syncing. The batch's replies,
// feed events and direct-message pushes wait in order until the SyncThread
// reports a WAL sync that covers the batch; only then are they sent. While
// a sync runs the loop goes on executing the next batches, and one sync
// releases all of them (group commit across batches). Batches that append
// nothing wait too: their replies may have read what earlier batches wrote.
// ZMQ_FD is edge-triggered, so every wake-up and every send outside the
// drain loop ends with a drain to EAGAIN.
// Replies to a peer whose queue is full wait in a per-peer backlog (bounded;
// beyond it replies are dropped, counted and logged) and are retried on a
// timer: ROUTER_MANDATORY is on, so nothing is lost silently.
// Concurrency: every method runs on the io_context's single thread; the
// zmq::context_t may be shared, the sockets are this object's alone.
// Direct messages and delivered subscriptions are pushed as Deliveries
// decides (deliveries.hpp): after each release, for every reader whose stream
// changed, from the log up to the newest released seq; a timer redelivers
// what was not acknowledged.
// Limitations: sessions of peers that vanish without a later send to them are
// kept until the daemon restarts (a few bytes each).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "bus/core/handler.hpp"
#include "bus/protocol/vocabulary.hpp"
#include "bus/server/sync_thread.hpp"
#include "store/payloads.hpp"
#include "store/store.hpp"
#include "store/trimmer.hpp"

namespace botbus::bus {

struct ServerOptions {
    std::string command_endpoint = "tcp://127.0.0.1:7440";
    std::string feed_endpoint = "tcp://127.0.0.1:7441";
    std::size_t max_frame = k_default_max_frame;
    std::size_t max_batch = 1024;           // requests per store transaction
    std::size_t max_peer_backlog = 100000;  // queued replies per slow peer before dropping
    int send_hwm = 100000;                  // messages ZeroMQ queues per command connection before the backlog
    int feed_hwm = 100000;                  // per subscriber, before PUB drops (clients repair from history)
    std::int64_t lease_us = k_default_lease_us;  // a running run's lease without heartbeats
    MessagingOptions messaging;                  // loop and flood guards, direct-message delivery
    store::RetentionLimits retention;            // defaults for every channel and mailbox; none by default
    std::int64_t trim_interval_us = 1'000'000;   // how often a trimming step runs
};

class Server {
public:
    Server(boost::asio::io_context& io, zmq::context_t& zmq, store::Store& store, ServerOptions options);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();

    // Binds both sockets and starts serving; throws zmq::error_t naming the
    // endpoint when a bind fails.
    void start();
    // Stops taking requests, syncs and releases the batches waiting for
    // their sync, answers the requests still queued on the socket with
    // shutting_down (none of them ran), sends what is queued (bounded by
    // linger_ms), and closes the sockets. Throws when the final sync fails:
    // the waiting batches are then not known to be durable and get no reply.
    void stop(int linger_ms = 2000);

    const std::string& command_endpoint() const { return m_bound_command; }
    const std::string& feed_endpoint() const { return m_bound_feed; }
    const ServerCounters& counters() const { return m_counters; }

private:
    struct Inbound {
        std::string routing_id;
        zmq::message_t body;  // the request frame itself: decoded in place, never copied
        bool req_style = false;  // had an empty delimiter: REQ-like, never pushed to
        std::optional<WireError> problem;  // the message's shape is wrong: answered in turn with this
    };
    struct PeerState {
        Session session;
        bool can_push = false;
    };

    struct Reply {
        std::string routing_id;
        bool req_style;
        std::string body;
    };
    struct Hello {
        std::string routing_id;
        std::string bot;
        bool no_pushes;  // REQ-style, or asked for no pushes
    };
    // What a batch shows once it is durable, in the order it is shown.
    // A fetch waiting for messages (FetchWait), and whom to answer.
    struct Waiting {
        std::string routing_id;
        bool req_style = false;
        std::optional<PackedValue> id;
        FetchWait wait;
    };
    struct Unbind {
        std::string routing_id;
        Reader reader;  // the durable reader; the connection's ephemeral one goes too
    };
    struct Bind {
        std::string routing_id;
        DeliveryBinding binding;
    };
    // Changes to who receives what, applied in the order of their requests.
    using DeliveryChange = std::variant<Hello, Unbind, Bind>;
    struct Release {
        std::uint64_t ticket = 0;  // released once a sync covers this ticket
        std::vector<Reply> replies;
        std::vector<DeliveryChange> changes;
        std::vector<Waiting> fetch_waits;
        std::vector<store::Event> events;
        std::vector<std::string> sync_tokens;
    };

    void refuse_queued();
    void hold(Release release, bool appended);
    bool requests_waiting();  // the command socket has a request ready
    void on_synced(std::uint64_t through, std::exception_ptr error);
    bool release_synced(std::uint64_t through);  // true when something was released
    void release(Release& release);
    void sync_here();  // syncs on the loop thread: everything committed so far is durable
    void sync_and_release_all();
    void arm();
    void on_readable();
    std::size_t drain_once();
    void run_batch(std::vector<Inbound>& batch);
    // Shows one released event; readers with something new go to `touched`,
    // channels with new messages to `channels`.
    void fan_out(const store::Event& event, std::set<Reader>& touched, std::set<std::string>& channels);
    void publish(const std::string& topic, const std::string& event);
    void push_to_bot(const std::string& bot, const std::string& push);
    bool has_push_connection(const std::string& bot) const;
    // Delivery to readers (Deliveries decides, these carry it out).
    void deliver(const Reader& reader);
    void carry_out(DeliveryPlan plan);
    void deliver_behind();  // readers left behind by a full connection, once it drains
    void unroute(const Reader& reader, const std::string& routing_id);
    void drop_routes_of(const std::string& routing_id);
    // Answers waiting fetches whose channel has news, or whose time is up.
    void answer_waiting(const std::set<std::string>& channels, std::int64_t now_us);
    void schedule_fetch_timer();
    // Queues a plan's expiries and dead letters to be logged in a batch of their own.
    void queue_settlements(DeliveryPlan plan);
    void append_settlements();
    // Reads the readers whose settlements failed to be logged again, in a
    // second, so that what they gave up on is decided and logged anew.
    void schedule_settlement_retry();
    void schedule_redelivery();
    void redeliver();
    // Runs `work` in a batch of the daemon's own and holds its events for
    // release like a request batch's. False when the batch failed.
    bool run_daemon_batch(const std::function<void(store::Batch&)>& work, const char* what);
    void bind_session(const std::string& routing_id, const std::string& bot, bool can_push);
    void forget_peer(const std::string& routing_id);
    void send_to(const std::string& routing_id, bool req_style, std::string body);
    bool try_send(const std::string& routing_id, bool req_style, const std::string& body);
    void schedule_backlog_retry();
    void retry_backlog();
    void schedule_trim();
    void trim();
    void schedule_lease_check();
    void expire_leases();
    void publish_workflow_event(const store::Event& event);

    boost::asio::io_context& m_io;
    store::Store& m_store;
    ServerOptions m_options;
    zmq::socket_t m_router;
    zmq::socket_t m_pub;
    boost::asio::posix::stream_descriptor m_router_fd;
    boost::asio::steady_timer m_backlog_timer;
    boost::asio::steady_timer m_lease_timer;
    boost::asio::steady_timer m_redelivery_timer;
    boost::asio::steady_timer m_trim_timer;
    boost::asio::steady_timer m_settlement_timer;
    std::set<Reader> m_settle_again;  // readers whose settlements failed to be logged
    store::Trimmer m_trimmer;
    bool m_redelivery_scheduled = false;
    std::vector<DeliveryPlan> m_settlements;  // expiries and dead letters waiting to be logged
    std::map<Reader, std::string> m_routes;   // channel readers pushed to: their connection's routing id
    std::set<Reader> m_behind;                // readers to push to again once their connection drains
    std::vector<Waiting> m_waiting;           // fetches waiting for messages
    boost::asio::steady_timer m_fetch_timer;
    std::optional<std::int64_t> m_fetch_timer_at;
    store::Seq m_visible_seq = 0;             // the newest seq released (durable and shown)
    std::optional<std::int64_t> m_lease_check_at;  // UTC µs the lease timer is set for
    std::string m_bound_command;
    std::string m_bound_feed;
    bool m_running = false;
    bool m_retry_scheduled = false;
    bool m_armed = false;

    ServerCounters m_counters;
    CommandHandler m_handler;
    std::deque<Release> m_held;       // committed batches waiting for their sync, oldest first
    std::uint64_t m_committed_ticket = 0;  // numbers the batches that appended something
    std::uint64_t m_synced_ticket = 0;
    std::uint64_t m_inline_syncs = 0;  // syncs the loop ran itself
    std::atomic<std::uint64_t> m_sync_done{0};  // written by the sync thread
    // Sync completions are posted to the loop; they must not touch a Server
    // that is gone by the time they run.
    std::shared_ptr<int> m_alive = std::make_shared<int>(0);
    std::unique_ptr<SyncThread> m_syncer;  // only when the store needs syncing
    store::MessageDecoder m_messages;  // fan-out reads every message it sends
    std::unordered_map<std::string, PeerState> m_peers;          // by routing id
    std::map<std::string, std::set<std::string>> m_bot_peers;     // bot -> routing ids
    struct Pending {
        bool req_style;
        std::string body;
    };
    std::map<std::string, std::deque<Pending>> m_backlog;  // routing id -> replies waiting for room
};

}  // namespace botbus::bus
