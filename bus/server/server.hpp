// botbusd's serving loop: requests from the Transport, executed in store
// batches, released by the Committer, shown by FanOut and delivered by the
// DeliveryRouter, all on one Asio io_context.
//
// Operation: when the command socket signals, the server drains ready
// requests (up to max_batch) until EAGAIN, decodes them, executes them in
// arrival order in one store batch and commits it without syncing. A batch
// whose replies pass max_batch_reply_bytes (list pages are up to ~1 MiB
// each) stops there; the requests left run first as the next batch. Each
// request runs in a savepoint of the batch: one that throws (a storage error,
// a bug) is rolled back alone and answered storage_error (internal for a
// bug), and the others commit. A hello past max_connections_per_bot is
// refused (limit_reached); otherwise it
// binds the connection to its bot at once, for the batch's later requests
// too; when the batch fails to commit (or SQLite loses its transaction),
// those bindings are undone and every request is answered storage_error. The committed batch goes to the
// Committer (committer.hpp), which holds it until a WAL sync covers it; its
// release sends the replies (transport.hpp), applies the delivery changes
// (hellos, subscribes, unsubscribes), fans out its events (fan_out.hpp),
// delivers to the readers they touched and answers parked fetches
// (delivery_router.hpp), and publishes feed.sync markers on the feed (feed.hpp). ZMQ_FD is
// edge-triggered, so every wake-up and every send outside the drain loop
// ends with a drain to EAGAIN.
// Timers of the server's own: the lease check appends run.crashed for runs
// whose lease ran out; the trimmer applies retention one small batch at a
// time. Both run as daemon batches, released like request batches.
// Every time the server reads (lease expiry, deadlines, the stats start) is
// ServerOptions::clock's, which the handlers share unless given their own.
// Concurrency: every method runs on the io_context's single thread, except
// the SyncThread's, which posts its results to the loop.
// Limitations: see transport.hpp (sessions of vanished peers) and
// committer.hpp (a failed sync stops the daemon).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <zmq.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bus/core/handler.hpp"
#include "bus/protocol/vocabulary.hpp"
#include "bus/server/backlog_gauges.hpp"
#include "bus/server/backups.hpp"
#include "bus/server/committer.hpp"
#include "bus/server/delivery_router.hpp"
#include "bus/server/fan_out.hpp"
#include "bus/server/feed.hpp"
#include "bus/server/release.hpp"
#include "bus/server/server_metrics.hpp"
#include "bus/server/sync_thread.hpp"
#include "bus/server/transport.hpp"
#include "bus/server/zap_handler.hpp"
#include "store/store.hpp"
#include "store/trimmer.hpp"

namespace botbus::bus {

// --auth curve: both sockets are CURVE servers and the ZAP handler admits
// only the keys of the allowlist (zap_handler.hpp).
struct CurveServerOptions {
    std::string secret_key;  // the daemon's, Z85
    KeyAllowlist allowlist;
};

struct ServerOptions {
    std::string command_endpoint = "tcp://127.0.0.1:7440";
    std::string feed_endpoint = "tcp://127.0.0.1:7441";
    std::size_t max_frame = k_default_max_frame;
    std::size_t max_batch = 1024;                        // requests per store transaction
    std::size_t max_batch_bytes = 4 * 1024 * 1024;       // request bytes per store transaction (at least one)
    std::size_t max_batch_reply_bytes = 16 * 1024 * 1024;  // reply bytes a batch builds before the rest waits
    std::size_t max_peer_backlog = 100000;               // queued replies per slow peer before dropping
    std::size_t max_peer_backlog_bytes = 16 * 1024 * 1024;  // the same, in bytes
    std::size_t max_backlog_bytes = 512 * 1024 * 1024;   // over every slow peer
    int send_hwm = 1000;   // messages ZeroMQ queues per command connection before the backlog
    int recv_hwm = 1000;   // requests ZeroMQ reads ahead per command connection before it stops reading
    int feed_hwm = 100000;  // per subscriber, before PUB drops (clients repair from history)
    std::size_t max_feed_bytes = 64 * 1024 * 1024;  // feed events held for subscribers before slow ones are cut
    std::size_t max_feed_connections = 1024;
    std::size_t max_connections = 4096;  // open command connections; more are shut at once
    // Limits on one client (limit_reached; PROTOCOL.md "Limits per bot and per connection").
    std::size_t max_connections_per_bot = 64;  // connections one bot's hellos hold
    std::size_t max_in_flight = 4096;          // requests of one connection received and not yet answered
    int heartbeat_ms = 10000;            // ZMTP PING interval; a peer silent for 3x this is closed; 0: none
    // After SIGTERM, requests keep getting shutting_down until none came for
    // this long (or for at most shutdown_drain_max_ms), then the sockets close.
    int shutdown_quiet_ms = 200;
    int shutdown_drain_max_ms = 2000;
    std::int64_t lease_us = k_default_lease_us;  // a running run's lease without heartbeats
    MessagingOptions messaging;                  // loop and flood guards, direct-message delivery
    store::RetentionLimits retention;            // defaults for every channel and mailbox; none by default
    std::int64_t trim_interval_us = 1'000'000;   // how often a trimming step runs
    // UTC µs; also the handlers' clock when `messaging.clock` is not set.
    std::function<std::int64_t()> clock = store::now_us;
    std::optional<CurveServerOptions> curve;  // none: plaintext (NULL mechanism), no identities from keys
    // Whether a feed subscriber may subscribe to a topic prefix (feed.hpp);
    // empty: the permission rules decide (AclIndex::may_subscribe_topic).
    std::function<bool(const std::optional<std::string>& user_id, std::string_view topic_prefix)> may_subscribe;
    std::string backup_dir = "backups";  // where the backup op writes its copies
};

class Server {
public:
    Server(boost::asio::io_context& io, zmq::context_t& zmq, store::Store& store, ServerOptions options);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server();

    // Binds both sockets and starts serving; throws std::runtime_error naming
    // the endpoint when a bind fails.
    void start();
    // Stops taking requests, syncs and releases the batches waiting for
    // their sync, and answers the requests still queued on the socket with
    // shutting_down (none of them ran). It goes on answering shutting_down
    // to whatever arrives until no request came for shutdown_quiet_ms (or
    // shutdown_drain_max_ms passed); then it sends what is queued (bounded
    // by linger_ms) and closes the sockets, and the loop runs out of work.
    // Throws when the final sync fails: the waiting batches are then not
    // known to be durable and get no reply.
    void stop(int linger_ms = 2000);

    const std::string& command_endpoint() const { return m_transport.command_endpoint(); }
    const std::string& feed_endpoint() const { return m_feed.endpoint(); }
    const ServerCounters& counters() const { return m_counters; }
    // The Prometheus exposition of everything the stats op shows and more
    // (server_metrics.cpp); reads the store's counts, so on the loop only.
    std::string metrics_text();
    // Starts the bounded background scan behind the mailbox and subscription
    // backlog gauges (backlog_gauges.hpp): only a daemon with a metrics
    // endpoint pays for it.
    void enable_backlog_gauges();
    // Serving, and the last batch committed: what /readyz answers.
    bool ready() const { return m_running && !m_commit_failed; }

    // Replaces the CURVE allowlist (SIGHUP) and shuts the command and feed
    // connections whose key was removed or now maps to another bot; returns
    // how many. Without CURVE it does nothing and returns 0.
    std::size_t reload_allowlist(KeyAllowlist allowlist);
    bool authenticated() const { return m_zap.has_value(); }

private:
    std::int64_t now() const { return m_options.clock(); }
    void arm();
    void on_readable();
    std::size_t drain_once();
    void run_batch(std::vector<Inbound>& batch);
    // One request in a savepoint of the batch: when it throws, its part is
    // undone and it alone gets an error reply. Throws only when the batch
    // itself is lost.
    Outcome execute(const Envelope& envelope, const Session& session, store::Batch& tx);
    void release(Release& batch);
    // The store's sync, timed for the metrics (any thread).
    void timed_sync();
    // A hello that would give `bot` more than max_connections_per_bot
    // connections is refused (after it ran: a hello appends nothing).
    bool admit_hello(const Session& session, const std::string& bot);
    WireError bot_connections_reached(const std::string& bot) const;
    // Runs `work` in a batch of the daemon's own and holds its events for
    // release like a request batch's. False when the batch failed.
    bool run_daemon_batch(const std::function<void(store::Batch&)>& work, const char* what);
    // After a failure: when the store can serve no more (its database
    // connection broke), stops the daemon by throwing out of the loop.
    void stop_if_store_lost();
    void schedule_trim();
    void trim();
    // A log shared with other nodes: their events, read from the log, are
    // shown here (feed, pushes, parked fetches) in seq order with this
    // node's own, every k_tail_interval and before each own batch's release.
    void schedule_tail();
    // Waits on the store's wake-up (another node announced a commit).
    void watch_other_nodes();
    void stop_watching_other_nodes();
    // Reads the log's head and shows what is above this node's mark.
    void show_what_others_appended();
    void show_others(store::Seq upto);
    // What a released event shows, whoever appended it.
    void show_events(const std::vector<store::Event>& events, Touched& touched);
    // Direct messages whose time to live ran out are logged message.expired
    // at their deadline, a page at a time, whether or not their bot connects.
    void schedule_expiry_sweep();
    void sweep_expiries();
    // The lease check: when the earliest lease runs out (on a shared log at
    // least every k_shared_lease_poll_us), on the leading node only.
    void schedule_lease_check();
    void set_lease_timer(std::int64_t at_us);
    void schedule_backlog_scan();
    void expire_leases();
    void note_transport_counters();
    // After stop(): refuses what arrives until it is quiet, then closes.
    void refuse_until_quiet(int linger_ms, std::chrono::steady_clock::time_point until);

    boost::asio::io_context& m_io;
    store::Store& m_store;
    ServerOptions m_options;
    ServerCounters m_counters;
    ServerMetrics m_metrics;
    bool m_commit_failed = false;  // the last batch failed to commit
    CommandHandler m_handler;
    std::optional<ZapHandler> m_zap;  // with CURVE; started before the sockets bind
    Transport m_transport;
    Feed m_feed;
    DeliveryRouter m_router;
    FanOut m_fan_out;
    Committer m_committer;
    store::Trimmer m_trimmer;
    Backups m_backups;
    BacklogGauges m_backlog_gauges;
    bool m_backlog_gauges_on = false;
    boost::asio::steady_timer m_backlog_timer;
    boost::asio::steady_timer m_lease_timer;
    boost::asio::steady_timer m_trim_timer;
    boost::asio::steady_timer m_expiry_timer;
    boost::asio::steady_timer m_tail_timer;
    // The store's wake-up descriptor (not owned: released, never closed).
    std::optional<boost::asio::posix::stream_descriptor> m_wake;
    store::Seq m_shown_seq = 0;  // every event up to it was shown (own or another node's)
    std::optional<std::int64_t> m_expiry_sweep_at;  // UTC µs the timer is set for
    boost::asio::steady_timer m_drain_timer;
    std::uint64_t m_feed_auth_disconnects = 0;  // feed connections shut by allowlist reloads
    std::vector<Inbound> m_carried;  // requests a batch left for the next (max_batch_reply_bytes)
    std::optional<std::int64_t> m_lease_check_at;  // UTC µs the lease timer is set for
    bool m_leads_lease_check = false;               // granted grace and ran the check last time
    static constexpr std::int64_t k_shared_lease_poll_us = 1'000'000;
    bool m_running = false;
    // Sync completions are posted to the loop; they must not touch a Server
    // that is gone by the time they run.
    std::shared_ptr<int> m_alive = std::make_shared<int>(0);
    std::unique_ptr<SyncThread> m_syncer;  // only when the store needs syncing; last, so it joins first
};

}  // namespace botbus::bus
