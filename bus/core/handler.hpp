// Executes decoded requests against the store, inside the daemon's open
// batch, and says what must happen once the batch is committed.
//
// Operation: refuses a request that needs a hello identity the session
// lacks, then calls the handler overload for its request type (see
// op_context.hpp), which validates it against the projected state (which
// includes earlier requests of the same batch), appends its events, and
// returns its reply or error; handle() encodes either. A request that fails
// validation appends nothing. Permissions (acl.hpp) are part of validation:
// each op checks the rules it needs (acl_ops.cpp, run_permissions.cpp) and
// refuses with `forbidden` or `not_lease_owner` before it appends; the
// rules live in memory (AclIndex), loaded from the store at construction
// and after a failed batch (reload_acl).
// Workflow ops go to the WorkflowHandler it owns (workflow_handler.hpp),
// which also keeps the runs' leases (in the store, beside the log); expire_leases, grant_grace
// and next_lease_expiry are the server's hooks for its lease timer.
// Concurrency: runs on the server's loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "bus/protocol/codec.hpp"
#include "bus/core/acl.hpp"
#include "bus/core/deliveries.hpp"
#include "bus/core/op_context.hpp"
#include "bus/core/delivery_codec.hpp"
#include "bus/core/message_replies.hpp"
#include "bus/core/rate_limiter.hpp"
#include "store/payloads.hpp"
#include "store/store.hpp"

namespace botbus::bus {

// Server-side counters shown by the stats op.
struct ServerCounters {
    std::uint64_t requests = 0;
    std::uint64_t batches = 0;
    std::uint64_t errors = 0;
    std::uint64_t sessions = 0;
    std::uint64_t connections = 0;          // open TCP connections on the command socket
    std::uint64_t refused_connections = 0;  // shut at once: --max-connections were open
    std::uint64_t backlog_bytes = 0;        // replies held for peers that are not reading
    std::uint64_t feed_connections = 0;     // open connections on the feed socket
    std::uint64_t feed_bytes = 0;           // feed events libzmq holds for subscribers
    std::uint64_t feed_disconnects = 0;     // feed subscribers cut for not reading
    std::uint64_t auth_refusals = 0;        // CURVE handshakes refused: the key is not on the allowlist
    std::uint64_t auth_disconnects = 0;     // connections shut: an allowlist reload removed their key for their bot
    std::uint64_t dropped_replies = 0;
    std::uint64_t paused_deliveries = 0;  // a delivered subscription left in the log: its connection was full
    std::uint64_t pushes = 0;             // messages pushed to mailboxes and delivered subscriptions
    std::uint64_t redeliveries = 0;       // of them, pushed again (the ack deadline passed)
    std::uint64_t syncs = 0;  // WAL syncs that released batches, as of the current batch
    std::int64_t started_at_us = 0;
    // Refused by a limit on one client (limit_reached).
    std::uint64_t refused_bot_connections = 0;  // hellos past --max-connections-per-bot
    std::uint64_t refused_in_flight = 0;        // requests past --max-in-flight
};

// Workflow settings. `clock` (UTC µs) stamps leases; tests inject a fake one.
struct WorkflowOptions {
    std::int64_t lease_us = k_default_lease_us;
    std::function<std::int64_t()> clock;  // default: store::now_us
};

// Messaging guards and delivery settings. `clock` (UTC µs) drives rate
// limits, expiry, ping's `ts` and stats' uptime; tests inject a fake one.
struct MessagingOptions {
    std::uint64_t max_hops = k_default_max_hops;
    RateLimit rate_limit;  // off by default
    DeliveryOptions delivery;
    // Channels one bot may be subscribed to: memberships and durable
    // subscriptions, and channels it receives live without being a member.
    std::size_t max_subscriptions_per_bot = 1000;
    std::function<std::int64_t()> clock;  // default: store::now_us
    AclPolicy acl;  // admins and the default policy (acl.hpp)
};

class WorkflowHandler;

// The message.dead_lettered payload for a message a reader was given too often.
store::MessageDeadLettered dead_letter_payload(const Reader& reader, const DeadMessage& dead);

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
    // When this daemon starts running the lease check (at start-up; on a
    // shared log, when it becomes the leader): every running run is held
    // for a full period from now_us, so time nobody watched the leases (a
    // restart, a leader's death) is not taken for a crash of every run.
    void grant_grace(store::Batch& batch, std::int64_t now_us);
    // The earliest lease expiry, when any run holds a lease.
    std::optional<std::int64_t> next_lease_expiry() const;
    // Whether a request granted or renewed a lease since the last call.
    bool take_leases_granted();
    void set_lease_duration(std::int64_t lease_us);
    WorkflowHandler& workflows() { return *m_workflows; }
    // Subscribes refused by max_subscriptions_per_bot (stats refused_subscriptions).
    std::uint64_t refused_subscriptions() const { return m_refused_subscriptions; }
    // Direct-message delivery state, which the server drives.
    Deliveries& deliveries() { return m_deliveries; }
    // The permission rules in force (acl.hpp), as of the ops run so far.
    const AclIndex& acl() const { return m_acl; }
    // A batch or a request's savepoint was rolled back: the rules are read
    // again from the store, so that none its acl ops changed stays.
    void reload_acl();

private:
    // Refuses a request that needs an identity the session lacks, then
    // calls the overload for its type (here or in WorkflowHandler) and
    // encodes its result.
    template <typename T>
    Outcome dispatch(const Envelope& envelope, const Session& session, store::Batch& batch, const T& request);

    // The handler overloads, one per request type (workflow ops: WorkflowHandler).
    using Ctx = OpContext;
    Result<HelloReply> op(Ctx&, const HelloRequest&);
    Result<PingReply> op(Ctx&, const PingRequest&);
    Result<ByeReply> op(Ctx&, const ByeRequest&);
    Result<ChannelReply> op(Ctx&, const ChannelCreateRequest&);
    Result<SeqReply> op(Ctx&, const ChannelDeleteRequest&);
    Result<ChannelListReply> op(Ctx&, const ChannelListRequest&);
    Result<SubscribeReply> op(Ctx&, const SubscribeRequest&);
    Result<UnsubscribeReply> op(Ctx&, const UnsubscribeRequest&);
    Result<SubscriptionsReply> op(Ctx&, const SubscriptionsRequest&);
    Result<SubscribersReply> op(Ctx&, const SubscribersRequest&);
    Result<PublishReply> op(Ctx&, const PublishRequest&);
    Result<SendReply> op(Ctx&, const SendRequest&);
    Result<HistoryRows> op(Ctx&, const HistoryRequest&);
    Result<AckReply> op(Ctx&, const AckRequest&);
    Result<StatsReply> op(Ctx&, const StatsRequest&);
    Result<FeedSyncReply> op(Ctx&, const FeedSyncRequest&);
    Result<MailboxReply> op(Ctx&, const MailboxRequest&);
    Result<DeadLetterRows> op(Ctx&, const DlqListRequest&);
    Result<DlqReplayReply> op(Ctx&, const DlqReplayRequest&);
    Result<std::optional<FetchedPlan>> op(Ctx&, const FetchRequest&);
    Result<ConsumersReply> op(Ctx&, const ConsumersRequest&);
    Result<ChannelReply> op(Ctx&, const ChannelRetentionRequest&);
    Result<std::optional<BackupReply>> op(Ctx&, const BackupRequest&);
    Result<AclChangeReply> op(Ctx&, const AclGrantRequest&);
    Result<AclChangeReply> op(Ctx&, const AclRevokeRequest&);
    Result<AclListReply> op(Ctx&, const AclListRequest&);

    // Reading another bot's things (its mailbox, subscriptions, dead
    // letters...): the bot itself or an admin; `what` names the op.
    Check may_see_bot(const Ctx&, const std::string& bot, std::string_view what) const;

    // What an ack settles that is not settled yet, after checking it.
    struct Settling {
        std::optional<std::uint64_t> upto;
        std::optional<std::vector<std::uint64_t>> seqs;
    };
    Result<Settling> settling(Ctx&, const AckRequest&, const Reader& reader, store::Seq floor);
    // A subscribe that would make `channel` one more of `bot`'s channels
    // past max_subscriptions_per_bot is refused with limit_reached.
    // Memberships and durable subscriptions are read from the store (so a
    // batch's earlier subscribes count); live ones from Deliveries, which
    // has them once their batch is released. A live subscription only
    // counts apart from its membership once another connection of the bot
    // ends that membership, so the limit can be passed only by that, and
    // only by the live subscriptions started in the same batch.
    Check within_subscription_limit(const std::string& bot, const std::string& channel);
    // Validates a delivering subscribe and resolves where it starts.
    Result<DeliveryBinding> plan_delivery(Ctx&, const SubscribeRequest&);
    void append_dead_letter(store::Batch& batch, const Reader& reader, const DeadMessage& dead);

    store::Seq ensure_channel(Ctx&, const std::string& name, const std::string& producer);
    // Checks a new message against the loop and flood guards and fills in
    // its conversation and hop; the error when it is refused.
    Check guard_message(Ctx&, std::string_view sender, std::string_view target,
                                         std::optional<std::uint64_t> reply_to, store::MessagePayload& payload);

    store::Store& m_store;
    const ServerCounters& m_counters;
    AclIndex m_acl;  // before m_workflows, which checks against it
    std::unique_ptr<WorkflowHandler> m_workflows;
    MessagingOptions m_messaging;
    RateLimiter m_rate_limiter;
    Deliveries m_deliveries;
    std::uint64_t m_refused_subscriptions = 0;
};

}  // namespace botbus::bus
