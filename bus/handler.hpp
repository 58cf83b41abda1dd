// Executes decoded requests against the store, inside the daemon's open
// batch, and says what must happen once the batch is committed.
//
// Operation: validates each request against the projected state (which
// includes earlier requests of the same batch), appends its events, and
// encodes its reply. A request that fails validation appends nothing.
// Workflow ops go to the WorkflowHandler it owns (workflow_handler.hpp),
// which also keeps the runs' leases in memory; expire_leases, grant_grace
// and next_lease_expiry are the server's hooks for its lease timer.
// Concurrency: runs on the server's loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "bus/codec.hpp"
#include "bus/mailbox_delivery.hpp"
#include "bus/rate_limiter.hpp"
#include "store/store.hpp"

namespace botbus::bus {

// Per-connection state the server keeps.
struct Session {
    std::optional<std::string> bot;  // set by hello
};

// Server-side counters shown by the stats op.
struct ServerCounters {
    std::uint64_t requests = 0;
    std::uint64_t batches = 0;
    std::uint64_t errors = 0;
    std::uint64_t sessions = 0;
    std::uint64_t dropped_replies = 0;
    std::uint64_t syncs = 0;  // WAL syncs that released batches, as of the current batch
    std::int64_t started_at_us = 0;
};

struct Outcome {
    std::string reply;
    bool failed = false;
    std::optional<std::string> hello_bot;   // bind the connection to this bot now
    std::optional<std::string> sync_token;  // publish a feed.sync marker after commit
};

// Workflow settings. `clock` (UTC µs) stamps leases; tests inject a fake one.
struct WorkflowOptions {
    std::int64_t lease_us = k_default_lease_us;
    std::function<std::int64_t()> clock;  // default: store::now_us
};

// Messaging guards and delivery settings. `clock` (UTC µs) drives rate
// limits and expiry; tests inject a fake one.
struct MessagingOptions {
    std::uint64_t max_hops = k_default_max_hops;
    RateLimit rate_limit;  // off by default
    DeliveryOptions delivery;
    std::function<std::int64_t()> clock;  // default: store::now_us
};

class WorkflowHandler;

// A stored message as the wire shows it (history replies, mailbox replay).
MessageView view_of(const store::MessageRow& row);

class CommandHandler {
public:
    CommandHandler(store::Store& store, const ServerCounters& counters, WorkflowOptions workflow_options = {},
                   MessagingOptions messaging_options = {});
    CommandHandler(const CommandHandler&) = delete;
    CommandHandler& operator=(const CommandHandler&) = delete;
    ~CommandHandler();

    Outcome handle(const Envelope& envelope, const Session& session, store::Batch& batch);

    // ---- leases (see WorkflowHandler for the details)

    // Appends run.crashed (producer "botbusd") for every running run whose
    // lease expired at or before now_us; returns how many.
    std::size_t expire_leases(store::Batch& batch, std::int64_t now_us);
    // At daemon start: every running run gets a fresh lease from now_us, so a
    // restart is not taken for a crash of every run.
    void grant_grace(std::int64_t now_us);
    // The earliest lease expiry, when any run holds a lease.
    std::optional<std::int64_t> next_lease_expiry() const;
    void set_lease_duration(std::int64_t lease_us);
    WorkflowHandler& workflows() { return *m_workflows; }
    // Direct-message delivery state, which the server drives.
    MailboxDelivery& deliveries() { return m_deliveries; }

private:
    struct Ctx;
    Outcome hello(Ctx&, const HelloRequest&);
    Outcome ping(Ctx&, const PingRequest&);
    Outcome channel_create(Ctx&, const ChannelCreateRequest&);
    Outcome channel_delete(Ctx&, const ChannelDeleteRequest&);
    Outcome channel_list(Ctx&, const ChannelListRequest&);
    Outcome subscribe(Ctx&, const SubscribeRequest&);
    Outcome unsubscribe(Ctx&, const UnsubscribeRequest&);
    Outcome subscriptions(Ctx&, const SubscriptionsRequest&);
    Outcome subscribers(Ctx&, const SubscribersRequest&);
    Outcome publish(Ctx&, const PublishRequest&);
    Outcome send(Ctx&, const SendRequest&);
    Outcome history(Ctx&, const HistoryRequest&);
    Outcome ack(Ctx&, const AckRequest&);
    Outcome stats(Ctx&, const StatsRequest&);
    Outcome feed_sync(Ctx&, const FeedSyncRequest&);
    Outcome mailbox(Ctx&, const MailboxRequest&);
    Outcome dlq_list(Ctx&, const DlqListRequest&);
    Outcome dlq_replay(Ctx&, const DlqReplayRequest&);

    store::Seq ensure_channel(Ctx&, const std::string& name, const std::string& producer);
    // Checks a new message against the loop and flood guards and fills in
    // its conversation and hop; a failed Outcome when it is refused.
    std::optional<Outcome> guard_message(Ctx&, std::string_view sender, std::string_view target,
                                         std::optional<std::uint64_t> reply_to, store::MessagePayload& payload);

    store::Store& m_store;
    const ServerCounters& m_counters;
    std::unique_ptr<WorkflowHandler> m_workflows;
    MessagingOptions m_messaging;
    RateLimiter m_rate_limiter;
    MailboxDelivery m_deliveries;
};

}  // namespace botbus::bus
