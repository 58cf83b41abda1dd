#include "bus/core/handler.hpp"

#include "bus/core/workflow_handler.hpp"
#include "store/payloads.hpp"

// The dispatcher and the session ops (hello, ping, stats, feed.sync); the
// other ops live in channel_ops.cpp, message_ops.cpp, delivery_ops.cpp and,
// for workflows, workflow_ops.cpp, run_ops.cpp and step_ops.cpp (declared in
// workflow_handler.hpp).
namespace botbus::bus {

store::MessageDeadLettered dead_letter_payload(const Reader& reader, const DeadMessage& dead) {
    store::MessageDeadLettered payload;
    payload.bot = reader.bot;
    payload.message_seq = dead.seq;
    payload.reason = "max_deliveries: delivered " + std::to_string(dead.deliveries) + " times without an acknowledgement";
    payload.deliveries = dead.deliveries;
    if (!reader.is_mailbox()) payload.channel = reader.channel;
    return payload;
}

CommandHandler::CommandHandler(store::Store& store, const ServerCounters& counters, WorkflowOptions workflow_options,
                               MessagingOptions messaging_options)
    : m_store(store),
      m_counters(counters),
      m_acl(messaging_options.acl),
      m_workflows(std::make_unique<WorkflowHandler>(store, std::move(workflow_options), m_acl)),
      m_messaging(std::move(messaging_options)),
      m_rate_limiter(m_messaging.rate_limit),
      m_deliveries(store, m_messaging.delivery) {
    if (!m_messaging.clock) m_messaging.clock = store::now_us;
    reload_acl();
}

void CommandHandler::reload_acl() { m_acl.load(m_store.acl_rules()); }

CommandHandler::~CommandHandler() = default;

std::size_t CommandHandler::expire_leases(store::Batch& batch, std::int64_t now_us) {
    return m_workflows->expire_leases(batch, now_us);
}

void CommandHandler::grant_grace(store::Batch& batch, std::int64_t now_us) { m_workflows->grant_grace(batch, now_us); }

bool CommandHandler::take_leases_granted() { return m_workflows->take_leases_granted(); }

std::optional<std::int64_t> CommandHandler::next_lease_expiry() const { return m_workflows->next_lease_expiry(); }

void CommandHandler::set_lease_duration(std::int64_t lease_us) { m_workflows->set_lease_duration(lease_us); }

namespace {

template <Shape R>
std::string encode_value(const std::optional<PackedValue>& id, const R& reply) {
    if constexpr (requires { reply.size_hint(); }) {
        ReplyBuilder builder;
        builder.reserve(reply.size_hint());
        builder.fields(reply);
        return builder.finish_ok(id);
    } else {
        return encode_reply(id, reply);
    }
}

// The reply, or none when the request waits (fetch_wait).
template <typename R>
std::string encode_value(const std::optional<PackedValue>& id, const std::optional<R>& reply) {
    return reply ? encode_value(id, *reply) : std::string();
}

}  // namespace

template <typename T>
Outcome CommandHandler::dispatch(const Envelope& envelope, const Session& session, store::Batch& batch,
                                 const T& request) {
    if constexpr (needs_identity_v<T>) {
        if (!session.bot) {
            return Outcome::refused(
                encode_error_reply(envelope.id, WireError{Errc::not_identified,
                                                          std::string(T::k_op) + " needs a bot identity: send hello first"}),
                Errc::not_identified);
        }
    }
    static const std::string k_anonymous;
    Ctx ctx{envelope, session, batch, m_store, session.bot ? *session.bot : k_anonymous, {}};
    auto result = [&] {
        if constexpr (requires(WorkflowHandler& workflows, Ctx& c, const T& r) { workflows.op(c, r); }) {
            return m_workflows->op(ctx, request);
        } else {
            return op(ctx, request);
        }
    }();
    if (!result) return Outcome::refused(encode_error_reply(envelope.id, result.error()), result.error().code);
    Outcome outcome{encode_value(envelope.id, *result)};
    static_cast<Effects&>(outcome) = std::move(ctx.effects);
    return outcome;
}

Outcome CommandHandler::handle(const Envelope& envelope, const Session& session, store::Batch& batch) {
    return std::visit([&](const auto& request) { return dispatch(envelope, session, batch, request); },
                      envelope.request);
}

Result<HelloReply> CommandHandler::op(Ctx& ctx, const HelloRequest& r) {
    // On an authenticated connection the key names the bot: every event it
    // produces is then the key holder's.
    if (ctx.session.key_bot && r.bot != *ctx.session.key_bot) {
        return WireError{Errc::forbidden, "this connection's key belongs to bot " + *ctx.session.key_bot +
                                              "; it cannot say hello as " + r.bot};
    }
    if (r.credit && (*r.credit == 0 || *r.credit > k_max_credit)) {
        return WireError(Errc::invalid_field, "field 'credit' must be 1 to " + std::to_string(k_max_credit));
    }
    ctx.effects.hello_bot = r.bot;
    ctx.effects.hello_pushes = r.pushes.value_or(true);
    ctx.effects.hello_fan_out = r.fan_out.value_or(false);
    ctx.effects.hello_credit = r.credit ? static_cast<std::size_t>(*r.credit) : m_messaging.delivery.window;
    return HelloReply{r.bot, k_protocol_version, m_store.messages().mailbox_acked(r.bot), ctx.last_seq(),
                      connection_name(ctx.session.connection)};
}

Result<ByeReply> CommandHandler::op(Ctx& ctx, const ByeRequest&) {
    ctx.effects.bye = true;
    return ByeReply{ctx.session.bot};
}

Result<PingReply> CommandHandler::op(Ctx&, const PingRequest&) {
    return PingReply{true, m_messaging.clock()};
}
Result<StatsReply> CommandHandler::op(Ctx& ctx, const StatsRequest&) {
    const auto s = m_store.stats();
    StatsReply reply{ctx.batch.events().empty() ? s.last_seq : ctx.batch.events().back().seq,
                      s.event_count,
                      s.channel_count,
                      s.subscription_count,
                      s.message_count,
                      s.db_bytes,
                      m_counters.requests,
                      m_counters.batches,
                      m_counters.errors,
                      m_counters.sessions,
                      m_counters.connections,
                      m_counters.refused_connections,
                      m_counters.backlog_bytes,
                      m_counters.feed_connections,
                      m_counters.feed_bytes,
                      m_counters.feed_disconnects,
                      m_counters.dropped_replies,
                      m_counters.paused_deliveries,
                      m_counters.syncs,
                      m_store.checkpoints(),
                      m_messaging.clock() - m_counters.started_at_us,
                      m_counters.auth_refusals,
                      m_counters.auth_disconnects};
    // Limits on one client.
    reply.refused_bot_connections = m_counters.refused_bot_connections;
    reply.refused_subscriptions = m_refused_subscriptions;
    reply.refused_in_flight = m_counters.refused_in_flight;
    return reply;
}

Result<FeedSyncReply> CommandHandler::op(Ctx& ctx, const FeedSyncRequest& r) {
    ctx.effects.sync_token = r.token;
    return FeedSyncReply{sync_topic(r.token)};
}

Result<std::optional<BackupReply>> CommandHandler::op(Ctx& ctx, const BackupRequest& r) {
    // Where anyone may claim any bot, an admin check would protect nothing.
    if (m_acl.policy().owners_only) {
        if (auto refused = m_acl.check_admin(ctx.identity(), "take backups")) return std::move(*refused);
    }
    if (r.name.empty() || r.name.front() == '.' || r.name.ends_with(".partial")) {
        return WireError(Errc::invalid_name, "field 'name' must not start with '.' or end in '.partial' (a backup "
                                             "being written is named so)");
    }
    // Written once the batch is released, so the copy holds everything
    // acknowledged before it; answered by the server when it is written.
    ctx.effects.backup_name = r.name;
    return std::optional<BackupReply>();
}
}  // namespace botbus::bus
