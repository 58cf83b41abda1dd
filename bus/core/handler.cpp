#include "bus/core/handler.hpp"

#include <algorithm>
#include <cmath>

#include "bus/core/workflow_handler.hpp"
#include "store/payloads.hpp"

namespace botbus::bus {
namespace {

constexpr std::string_view k_default_message_type = "text";
constexpr std::uint64_t k_max_ttl_ms = 365ULL * 24 * 3600 * 1000;
constexpr std::uint64_t k_max_dlq_limit = 1000;
constexpr std::uint64_t k_default_dlq_limit = 100;
constexpr std::uint64_t k_max_credit = 100000;

void pack_limit(msgpack::packer<msgpack::sbuffer>& p, const std::optional<std::uint64_t>& limit) {
    if (limit) {
        p.pack(*limit);
    } else {
        p.pack_nil();
    }
}

void pack_channel(msgpack::packer<msgpack::sbuffer>& p, const store::ChannelRow& c) {
    p.pack_map(8);
    p.pack("name");
    p.pack(c.name);
    p.pack("description");
    if (c.description) {
        p.pack(*c.description);
    } else {
        p.pack_nil();
    }
    p.pack("created_by");
    p.pack(c.created_by);
    p.pack("created_at");
    p.pack(c.created_at);
    p.pack("subscribers");
    p.pack(c.subscriber_count);
    p.pack("last_channel_seq");
    p.pack(c.last_channel_seq);
    p.pack("max_age_ms");
    pack_limit(p, c.max_age_ms);
    p.pack("max_messages");
    pack_limit(p, c.max_messages);
}

// "10" rather than std::to_string's "10.000000".
std::string plain_number(double value) {
    if (value == std::floor(value)) return std::to_string(static_cast<std::int64_t>(value));
    return std::to_string(value);
}

}  // namespace

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
      m_workflows(std::make_unique<WorkflowHandler>(store, std::move(workflow_options))),
      m_messaging(std::move(messaging_options)),
      m_rate_limiter(m_messaging.rate_limit),
      m_deliveries(store, m_messaging.delivery) {
    if (!m_messaging.clock) m_messaging.clock = store::now_us;
}

CommandHandler::~CommandHandler() = default;

std::size_t CommandHandler::expire_leases(store::Batch& batch, std::int64_t now_us) {
    return m_workflows->expire_leases(batch, now_us);
}

void CommandHandler::grant_grace(std::int64_t now_us) { m_workflows->grant_grace(now_us); }

std::optional<std::int64_t> CommandHandler::next_lease_expiry() const { return m_workflows->next_lease_expiry(); }

void CommandHandler::set_lease_duration(std::int64_t lease_us) { m_workflows->set_lease_duration(lease_us); }

namespace {

std::string encode_value(const std::optional<PackedValue>& id, const ReplyBuilder& reply) { return reply.finish_ok(id); }

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
            return Outcome{encode_error_reply(envelope.id, WireError{Errc::not_identified,
                                                                     std::string(T::k_op) +
                                                                         " needs a bot identity: send hello first"}),
                           true};
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
    if (!result) return Outcome{encode_error_reply(envelope.id, result.error()), true};
    Outcome outcome{encode_value(envelope.id, *result), false};
    static_cast<Effects&>(outcome) = std::move(ctx.effects);
    return outcome;
}

Outcome CommandHandler::handle(const Envelope& envelope, const Session& session, store::Batch& batch) {
    return std::visit([&](const auto& request) { return dispatch(envelope, session, batch, request); },
                      envelope.request);
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const HelloRequest& r) {
    ReplyBuilder b;
    b.field("bot", r.bot);
    b.field("protocol", k_protocol_version);
    b.field("mailbox_acked", m_store.messages().mailbox_acked(r.bot));
    b.field("last_seq", ctx.last_seq());
    ctx.effects.hello_bot = r.bot;
    ctx.effects.hello_pushes = r.pushes.value_or(true);
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx&, const PingRequest&) {
    ReplyBuilder b;
    b.field("pong", true);
    b.field("ts", store::now_us());
    return b;
}

store::Seq CommandHandler::ensure_channel(Ctx& ctx, const std::string& name, const std::string& producer) {
    if (m_store.messages().channel_exists(name)) return 0;
    return ctx.batch
        .append({std::string(store::stream::k_channels), std::string(store::event_type::k_channel_created), producer,
                 std::nullopt, store::encode_payload(store::ChannelCreated{name, std::nullopt})})
        .seq;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const ChannelCreateRequest& r) {
    const std::string& me = ctx.me;
    if (m_store.messages().channel_exists(r.name)) {
        return WireError(Errc::conflict, "channel '" + r.name + "' already exists");
    }
    const auto appended =
        ctx.batch.append({std::string(store::stream::k_channels), std::string(store::event_type::k_channel_created),
                          me, std::nullopt, store::encode_payload(store::ChannelCreated{r.name, r.description})});
    ReplyBuilder b;
    b.field("seq", appended.seq);
    pack_channel(b.key("channel"), *m_store.messages().channel(r.name));
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const ChannelDeleteRequest& r) {
    const std::string& me = ctx.me;
    if (!m_store.messages().channel_exists(r.name)) return WireError(Errc::not_found, "no channel '" + r.name + "'");
    const auto appended =
        ctx.batch.append({std::string(store::stream::k_channels), std::string(store::event_type::k_channel_deleted),
                          me, std::nullopt, store::encode_payload(store::ChannelDeleted{r.name})});
    ReplyBuilder b;
    b.field("seq", appended.seq);
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const ChannelRetentionRequest& r) {
    const std::string& me = ctx.me;
    if (!m_store.messages().channel_exists(r.name)) return WireError(Errc::not_found, "no channel '" + r.name + "'");
    constexpr std::uint64_t k_most = 1ULL << 53;  // kept exact through every client's numbers
    if ((r.max_age_ms && *r.max_age_ms > k_most) || (r.max_messages && *r.max_messages > k_most)) {
        return WireError(Errc::invalid_field, "retention limits must be at most 2^53");
    }
    const auto appended = ctx.batch.append(
        {std::string(store::stream::k_channels), std::string(store::event_type::k_channel_retention_set), me,
         std::nullopt, store::encode_payload(store::ChannelRetentionSet{r.name, r.max_age_ms, r.max_messages})});
    ReplyBuilder b;
    b.field("seq", appended.seq);
    pack_channel(b.key("channel"), *m_store.messages().channel(r.name));
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx&, const ChannelListRequest&) {
    const auto channels = m_store.messages().channels();
    ReplyBuilder b;
    auto& p = b.key("channels");
    p.pack_array(static_cast<std::uint32_t>(channels.size()));
    for (const auto& c : channels) pack_channel(p, c);
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const SubscribeRequest& r) {
    const std::string& me = ctx.me;
    const std::string& bot = r.bot ? *r.bot : me;
    std::optional<DeliveryBinding> binding;
    if (r.delivers()) {
        if (bot != me) {
            return WireError(Errc::invalid_field, "a delivering subscription is for this connection's own bot, not '" +
                                                     bot + "'");
        }
        auto planned = plan_delivery(ctx, r);
        if (!planned) return planned.take_error();
        binding = std::move(*planned);
    }
    ReplyBuilder b;
    const bool member = m_store.messages().is_subscribed(bot, r.channel);
    ensure_channel(ctx, r.channel, me);
    std::optional<store::Seq> seq;
    if (!member) {
        seq = ctx.batch
                  .append({std::string(store::stream::k_channels), std::string(store::event_type::k_subscribed), me,
                           std::nullopt, store::encode_payload(store::SubscriptionChanged{bot, r.channel})})
                  .seq;
    }
    b.field("subscribed", !member);  // false: it already was; nothing appended for the membership
    if (binding) {
        const bool durable = r.durable.value_or(false);
        const auto floor = durable ? m_store.consumers().floor(me, r.channel) : std::nullopt;
        if (durable && !floor) {
            seq = ctx.batch
                      .append({std::string(store::stream::k_consumers), std::string(store::event_type::k_consumer_created),
                               me, std::nullopt,
                               store::encode_payload(
                                   store::ConsumerCreated{me, r.channel, binding->settings.start_after})})
                      .seq;
        }
        b.field("durable", durable);
        b.field("resumed", floor.has_value());  // an existing durable subscription goes on from its floor
        b.field("start_after", floor ? *floor : binding->settings.start_after);
        b.field("deliver", binding->settings.pull ? "pull" : "push");
    }
    if (seq) b.field("seq", *seq);
    ctx.effects.binding = std::move(binding);
    return b;
}

Result<DeliveryBinding> CommandHandler::plan_delivery(Ctx& ctx, const SubscribeRequest& r) {
    const bool durable = r.durable.value_or(false);
    const auto deliver = r.deliver.value_or("push");
    if (deliver != "push" && deliver != "pull") {
        return WireError(Errc::invalid_field, "field 'deliver' must be \"push\" or \"pull\"");
    }
    const bool pull = deliver == "pull";
    if (pull && !durable) return WireError(Errc::invalid_field, "deliver \"pull\" needs durable: true");
    if (!pull && ctx.session.req_style) {
        return WireError(Errc::invalid_field, "push delivery needs a DEALER connection (REQ sockets take replies only)");
    }
    if ((r.from_seq ? 1 : 0) + (r.from_time ? 1 : 0) + (r.last ? 1 : 0) > 1) {
        return WireError(Errc::invalid_field, "give at most one of 'from_seq', 'from_time' and 'last'");
    }
    if (r.from_seq && *r.from_seq == 0) return WireError(Errc::invalid_field, "field 'from_seq' starts at 1");
    if (r.credit && (*r.credit == 0 || *r.credit > k_max_credit)) {
        return WireError(Errc::invalid_field, "field 'credit' must be 1 to " + std::to_string(k_max_credit));
    }
    const auto now = ctx.last_seq();
    store::Seq start_after = now;
    if (r.from_seq) {
        start_after = std::min<store::Seq>(*r.from_seq - 1, now);
    } else if (r.from_time) {
        const auto ts = static_cast<std::int64_t>(std::min<std::uint64_t>(*r.from_time, INT64_MAX));
        start_after = m_store.consumers().before_time(r.channel, ts).value_or(now);
    } else if (r.last) {
        start_after = m_store.consumers().before_last(r.channel, *r.last);
    }
    ReaderSettings settings;
    settings.window = r.credit ? static_cast<std::size_t>(*r.credit) : m_messaging.delivery.window;
    settings.pull = pull;
    settings.ephemeral = !durable;
    settings.start_after = start_after;
    return DeliveryBinding{Reader{r.channel, ctx.me, ""}, settings};
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const UnsubscribeRequest& r) {
    const std::string& me = ctx.me;
    const std::string& bot = r.bot ? *r.bot : me;
    ReplyBuilder b;
    std::optional<store::Seq> seq;
    const bool member = m_store.messages().is_subscribed(bot, r.channel);
    if (member) {
        seq = ctx.batch
                  .append({std::string(store::stream::k_channels), std::string(store::event_type::k_unsubscribed), me,
                           std::nullopt, store::encode_payload(store::SubscriptionChanged{bot, r.channel})})
                  .seq;
    }
    // A durable subscription goes with the membership, cursor and all; only
    // its own bot may end it.
    const bool durable = bot == me && m_store.consumers().floor(bot, r.channel).has_value();
    if (durable) {
        seq = ctx.batch
                  .append({std::string(store::stream::k_consumers), std::string(store::event_type::k_consumer_deleted),
                           me, std::nullopt, store::encode_payload(store::ConsumerDeleted{bot, r.channel})})
                  .seq;
    }
    b.field("unsubscribed", member || durable);
    if (seq) b.field("seq", *seq);
    if (bot == me) ctx.effects.unbind_channel = r.channel;
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const SubscriptionsRequest& r) {
    const auto* me = ctx.identity();
    if (!r.bot && !me) return WireError(Errc::not_identified, "give 'bot', or send hello first");
    const std::string& bot = r.bot ? *r.bot : *me;
    ReplyBuilder b;
    b.field("bot", bot);
    b.field("channels", m_store.messages().subscriptions(bot));
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx&, const SubscribersRequest& r) {
    if (!m_store.messages().channel_exists(r.channel)) return WireError(Errc::not_found, "no channel '" + r.channel + "'");
    ReplyBuilder b;
    b.field("channel", r.channel);
    b.field("bots", m_store.messages().subscribers(r.channel));
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const PublishRequest& r) {
    const std::string& me = ctx.me;
    std::optional<store::Appended> appended;
    if (r.idempotency_key) appended = ctx.batch.find_idempotent(me, *r.idempotency_key);
    if (appended && appended->stream != store::stream::channel(r.channel)) {
        return WireError(Errc::conflict, "idempotency_key '" + *r.idempotency_key +
                                            "' was already used by this bot for a different channel or op");
    }
    if (!appended) {
        store::MessagePayload payload;
        if (auto refused = guard_message(ctx, me, store::stream::channel(r.channel), r.reply_to, payload)) {
            return std::move(*refused);
        }
        ensure_channel(ctx, r.channel, me);
        payload.channel = r.channel;
        payload.type = r.type.value_or(std::string(k_default_message_type));
        payload.body = r.body.bytes;
        appended = ctx.batch.append({store::stream::channel(r.channel),
                                     std::string(store::event_type::k_message_published), me, r.idempotency_key,
                                     store::encode_message_payload(payload)});
    }
    ReplyBuilder b;
    b.field("seq", appended->seq);
    b.field("channel_seq", appended->stream_seq);
    b.field("ts", appended->ts_us);
    b.field("duplicate", appended->duplicate);
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const SendRequest& r) {
    const std::string& me = ctx.me;
    std::optional<store::Appended> appended;
    if (r.idempotency_key) appended = ctx.batch.find_idempotent(me, *r.idempotency_key);
    if (appended && appended->stream != store::stream::mailbox(r.to)) {
        return WireError(Errc::conflict, "idempotency_key '" + *r.idempotency_key +
                                            "' was already used by this bot for a different recipient or op");
    }
    if (!appended) {
        if (r.ttl_ms && (*r.ttl_ms == 0 || *r.ttl_ms > k_max_ttl_ms)) {
            return WireError(Errc::invalid_field,
                            "field 'ttl_ms' must be 1 to " + std::to_string(k_max_ttl_ms) + " (one year)");
        }
        store::MessagePayload payload;
        if (auto refused = guard_message(ctx, me, store::stream::mailbox(r.to), r.reply_to, payload)) {
            return std::move(*refused);
        }
        payload.to = r.to;
        payload.type = r.type.value_or(std::string(k_default_message_type));
        payload.body = r.body.bytes;
        if (r.ttl_ms) payload.expires_at = m_messaging.clock() + static_cast<std::int64_t>(*r.ttl_ms) * 1000;
        appended =
            ctx.batch.append({store::stream::mailbox(r.to), std::string(store::event_type::k_message_sent), me,
                              r.idempotency_key, store::encode_message_payload(payload)});
    }
    ReplyBuilder b;
    b.field("seq", appended->seq);
    b.field("mailbox_seq", appended->stream_seq);
    b.field("ts", appended->ts_us);
    b.field("duplicate", appended->duplicate);
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const HistoryRequest& r) {
    const int scopes = (r.channel ? 1 : 0) + (r.peer ? 1 : 0) + (r.inbox.value_or(false) ? 1 : 0);
    if (scopes != 1) {
        return WireError(scopes == 0 ? Errc::missing_field : Errc::invalid_field,
                        "history needs exactly one of 'channel', 'peer' or 'inbox': true");
    }
    store::HistoryQuery query;
    if (r.channel) {
        if (!m_store.messages().channel_exists(*r.channel)) return WireError(Errc::not_found, "no channel '" + *r.channel + "'");
        query.scope = store::HistoryQuery::Scope::channel;
        query.channel = *r.channel;
    } else {
        const auto* me = ctx.identity();
        if (!r.bot && !me) return WireError(Errc::not_identified, "give 'bot', or send hello first");
        query.bot_a = r.bot ? *r.bot : *me;
        if (r.peer) {
            query.scope = store::HistoryQuery::Scope::conversation;
            query.bot_b = *r.peer;
        } else {
            query.scope = store::HistoryQuery::Scope::inbox;
        }
    }
    const auto limit = r.limit.value_or(k_default_history_limit);
    if (limit == 0 || limit > k_max_history_limit) {
        return WireError(Errc::invalid_field, "field 'limit' must be 1 to " + std::to_string(k_max_history_limit));
    }
    if (r.order && *r.order != "asc" && *r.order != "desc") {
        return WireError(Errc::invalid_field, "field 'order' must be \"asc\" or \"desc\"");
    }
    query.after = r.after;
    query.before = r.before;
    query.limit = limit + 1;  // one extra row tells whether there is more
    query.newest_first = r.order && *r.order == "desc";
    auto rows = m_store.messages().history(query);
    const bool more = rows.size() > limit;
    if (more) rows.pop_back();

    ReplyBuilder b;
    std::size_t bytes = 64;
    for (const auto& row : rows) bytes += row.body.size() + row.from.size() + row.type.size() + 96;
    b.reserve(bytes);
    b.key("messages").pack_array(static_cast<std::uint32_t>(rows.size()));
    for (const auto& row : rows) pack_message(b.buffer(), view_of(row));
    b.field("more", more);
    return b;
}

Check CommandHandler::guard_message(Ctx&, std::string_view sender, std::string_view target,
                                                     std::optional<std::uint64_t> reply_to,
                                                     store::MessagePayload& payload) {
    if (reply_to) {
        const auto parent = m_store.messages().message(*reply_to);
        if (!parent) return WireError(Errc::not_found, "reply_to: no message with seq " + std::to_string(*reply_to));
        const auto hop = parent->hop.value_or(0) + 1;
        const auto conversation = parent->conversation.value_or(parent->seq);
        if (hop > m_messaging.max_hops) {
            return WireError(Errc::depth_exceeded,
                            "this answer to seq " + std::to_string(*reply_to) + " would be " + std::to_string(hop) +
                                " answers deep in conversation " + std::to_string(conversation) +
                                "; the limit is " + std::to_string(m_messaging.max_hops));
        }
        payload.reply_to = reply_to;
        payload.hop = hop;
        payload.conversation = conversation;
    }
    if (const auto wait_us = m_rate_limiter.take(sender, target, m_messaging.clock())) {
        const auto retry_ms = static_cast<std::uint64_t>((*wait_us + 999) / 1000);
        return WireError{Errc::rate_limited,
                         "over the rate limit of " + plain_number(m_messaging.rate_limit.per_second) +
                             " messages/s to " + std::string(target) + "; retry in " + std::to_string(retry_ms) + " ms",
                         retry_ms};
    }
    return std::nullopt;
}

Result<CommandHandler::Settling> CommandHandler::settling(Ctx& ctx, const AckRequest& r, const Reader& reader,
                                                         store::Seq floor) {
    Settling out;
    if (r.upto && *r.upto > floor) {
        const auto last = ctx.last_seq();
        if (*r.upto > last) {
            return WireError(Errc::invalid_field,
                            "field 'upto' is past the end of the log (" + std::to_string(last) + ")");
        }
        out.upto = r.upto;
    }
    if (!r.seqs) return out;
    std::vector<std::uint64_t> fresh;
    for (const auto seq : *r.seqs) {
        if (out.upto && seq <= *out.upto) continue;
        const auto message = m_store.messages().message(seq);
        const bool ours = message && (reader.is_mailbox() ? message->to == reader.bot : message->channel == reader.channel);
        if (!ours) {
            return WireError(Errc::invalid_field, "seqs: " + std::to_string(seq) + " is not a message " +
                                                     (reader.is_mailbox() ? "to " + reader.bot
                                                                          : "of channel '" + reader.channel + "'"));
        }
        const bool settled = reader.is_mailbox() ? m_store.mailboxes().is_settled(reader.bot, seq)
                                                 : m_store.consumers().is_settled(reader.bot, reader.channel, seq);
        if (!settled && std::find(fresh.begin(), fresh.end(), seq) == fresh.end()) fresh.push_back(seq);
    }
    if (!fresh.empty()) out.seqs = std::move(fresh);
    return out;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const AckRequest& r) {
    const std::string& me = ctx.me;
    if (!r.upto && !r.seqs) return WireError(Errc::missing_field, "ack needs 'upto', 'seqs' or both");
    const Reader reader{r.channel.value_or(""), me, ""};
    const auto floor =
        r.channel ? m_store.consumers().floor(me, *r.channel) : std::optional(m_store.messages().mailbox_acked(me));
    if (!floor) return WireError(Errc::not_found, me + " has no durable subscription to '" + *r.channel + "'");
    auto settle = settling(ctx, r, reader, *floor);
    if (!settle) return settle.take_error();
    ReplyBuilder b;
    if (!settle->upto && !settle->seqs) {
        b.field("acked", *floor);  // all of it was settled already; nothing appended
        return b;
    }
    std::string payload;
    if (r.channel) {
        payload = store::encode_payload(store::ConsumerAcked{me, *r.channel, settle->upto, std::move(settle->seqs)});
    } else {
        payload = store::encode_payload(store::MailboxAcked{settle->upto, std::move(settle->seqs)});
    }
    const auto appended = ctx.batch.append(
        {std::string(r.channel ? store::stream::k_consumers : store::stream::k_mailboxes),
         std::string(r.channel ? store::event_type::k_consumer_acked : store::event_type::k_mailbox_acked), me,
         std::nullopt, std::move(payload)});
    b.field("acked", r.channel ? m_store.consumers().floor(me, *r.channel).value_or(0)
                               : m_store.messages().mailbox_acked(me));
    b.field("seq", appended.seq);
    return b;
}

Result<std::optional<ReplyBuilder>> CommandHandler::op(Ctx& ctx, const FetchRequest& r) {
    const std::string& me = ctx.me;
    const auto max = r.max.value_or(k_default_history_limit);
    if (max == 0 || max > k_max_history_limit) {
        return WireError(Errc::invalid_field, "field 'max' must be 1 to " + std::to_string(k_max_history_limit));
    }
    if (r.wait_ms && *r.wait_ms > k_max_fetch_wait_ms) {
        return WireError(Errc::invalid_field, "field 'wait_ms' must be at most " + std::to_string(k_max_fetch_wait_ms));
    }
    if (!m_store.consumers().floor(me, r.channel)) {
        return WireError(Errc::not_found, me + " has no durable subscription to '" + r.channel +
                                             "' (subscribe with durable: true, deliver: \"pull\")");
    }
    const Reader reader{r.channel, me, ""};
    if (const auto status = m_deliveries.status(reader); status && !status->pull) {
        return WireError(Errc::invalid_field, "the subscription of " + me + " to '" + r.channel +
                                                 "' is pushed; subscribe with deliver: \"pull\" to fetch");
    }
    const auto visible = ctx.last_seq();
    const auto now = m_messaging.clock();
    auto plan = m_deliveries.pull(reader, static_cast<std::size_t>(max), visible, now);
    // Given up on while fetching: logged in this batch.
    for (const auto& dead : plan.dead) append_dead_letter(ctx.batch, reader, dead);
    if (plan.deliveries.empty() && r.wait_ms && *r.wait_ms > 0) {
        ctx.effects.fetch_wait =
            FetchWait{reader, static_cast<std::size_t>(max), now + static_cast<std::int64_t>(*r.wait_ms) * 1000};
        return std::optional<ReplyBuilder>();
    }
    ReplyBuilder b;
    add_fetched(b, plan, plan.at_head);
    return std::optional<ReplyBuilder>(std::move(b));
}

void CommandHandler::append_dead_letter(store::Batch& batch, const Reader& reader, const DeadMessage& dead) {
    batch.append({std::string(store::stream::k_dead_letters), std::string(store::event_type::k_message_dead_lettered),
                  std::string(k_daemon_producer), std::nullopt,
                  store::encode_payload(dead_letter_payload(reader, dead))});
}

Result<ReplyBuilder> CommandHandler::op(Ctx&, const ConsumersRequest& r) {
    const auto rows = m_store.consumers().consumers(r.bot, r.channel);
    const auto now = m_messaging.clock();
    ReplyBuilder b;
    auto& p = b.key("consumers");
    p.pack_array(static_cast<std::uint32_t>(rows.size()));
    for (const auto& c : rows) {
        const auto status = m_deliveries.status(Reader{c.channel, c.bot, ""});
        const auto in_flight = status ? status->in_flight : 0;
        const bool idle = !status || (!status->pull && !status->online);
        // Stopped acknowledging: messages waiting and no ack (nor a start)
        // for two ack timeouts, connected or not. A pull subscription fetches
        // at its own pace, so it is never called stuck.
        const auto quiet_since = status ? status->last_ack_us : m_counters.started_at_us;
        const bool pulled = status && status->pull;
        const bool stuck =
            !pulled && c.unsettled > 0 && now - quiet_since > 2 * m_messaging.delivery.ack_timeout_us;
        p.pack_map(10);
        p.pack("bot");
        p.pack(c.bot);
        p.pack("channel");
        p.pack(c.channel);
        p.pack("acked");
        p.pack(c.acked);
        p.pack("head");
        p.pack(c.head);
        p.pack("lag");
        p.pack(c.unsettled);
        p.pack("in_flight");
        p.pack(in_flight);
        p.pack("mode");
        p.pack(idle ? "idle" : status->pull ? "pull" : "push");
        p.pack("last_ack");
        p.pack(status ? status->last_ack_us : std::int64_t{0});
        p.pack("stuck");
        p.pack(stuck);
        p.pack("created_at");
        p.pack(c.created_at);
    }
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const MailboxRequest& r) {
    const auto* me = ctx.identity();
    if (!r.bot && !me) return WireError(Errc::not_identified, "give 'bot', or send hello first");
    const std::string& bot = r.bot ? *r.bot : *me;
    ReplyBuilder b;
    b.field("bot", bot);
    if (r.channel) {
        // A durable subscription's pending messages, the same way.
        const auto consumer = m_store.consumers().consumer(bot, *r.channel);
        if (!consumer) return WireError(Errc::not_found, bot + " has no durable subscription to '" + *r.channel + "'");
        b.field("channel", *r.channel);
        b.field("acked", consumer->acked);
        b.field("unsettled", consumer->unsettled);
    } else {
        b.field("acked", m_store.messages().mailbox_acked(bot));
        b.field("unsettled", m_store.mailboxes().unsettled_count(bot));
    }
    const auto in_flight = m_deliveries.in_flight(Reader{r.channel.value_or(""), bot, ""});
    auto& p = b.key("in_flight");
    p.pack_array(static_cast<std::uint32_t>(in_flight.size()));
    for (const auto& f : in_flight) {
        p.pack_map(3);
        p.pack("seq");
        p.pack(f.seq);
        p.pack("deliveries");
        p.pack(f.deliveries);
        p.pack("ack_deadline");
        p.pack(f.deadline_us);
    }
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx&, const DlqListRequest& r) {
    const auto limit = r.limit.value_or(k_default_dlq_limit);
    if (limit == 0 || limit > k_max_dlq_limit) {
        return WireError(Errc::invalid_field, "field 'limit' must be 1 to " + std::to_string(k_max_dlq_limit));
    }
    store::DeadLetterQuery query;
    query.bot = r.bot;
    query.after = r.after.value_or(0);
    query.limit = limit + 1;
    auto rows = m_store.mailboxes().dead_letters(query);
    const bool more = rows.size() > limit;
    if (more) rows.pop_back();
    ReplyBuilder b;
    auto& p = b.key("dead_letters");
    p.pack_array(static_cast<std::uint32_t>(rows.size()));
    for (const auto& d : rows) {
        const auto message = m_store.messages().message(d.message_seq);
        p.pack_map(7 + (d.replayed_seq ? 1U : 0U) + (d.channel ? 1U : 0U));
        p.pack("seq");
        p.pack(d.seq);
        p.pack("message_seq");  // what dlq.replay takes, also once the message is trimmed
        p.pack(d.message_seq);
        p.pack("bot");
        p.pack(d.bot);
        p.pack("reason");
        p.pack(d.reason);
        p.pack("deliveries");
        p.pack(d.deliveries);
        p.pack("ts");
        p.pack(d.dead_at);
        p.pack("message");
        if (message) {
            pack_message(b.buffer(), view_of(*message));
        } else {
            p.pack_nil();  // trimmed from the log
        }
        if (d.replayed_seq) {
            p.pack("replayed_seq");
            p.pack(*d.replayed_seq);
        }
        if (d.channel) {
            p.pack("channel");
            p.pack(*d.channel);
        }
    }
    b.field("more", more);
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const DlqReplayRequest& r) {
    const std::string& me = ctx.me;
    std::optional<store::DeadLetterRow> dead;
    if (r.bot) {
        dead = m_store.mailboxes().dead_letter(r.seq, *r.bot);
    } else {
        auto all = m_store.mailboxes().dead_letters_of(r.seq);
        if (all.size() > 1) {
            return WireError(Errc::invalid_field, std::to_string(all.size()) + " bots gave up on message seq " +
                                                     std::to_string(r.seq) + ": say whose with 'bot'");
        }
        if (!all.empty()) dead = std::move(all.front());
    }
    if (!dead) return WireError(Errc::not_found, "no dead letter for message seq " + std::to_string(r.seq));
    if (dead->replayed_seq) {
        return WireError(Errc::conflict, "the dead letter for message seq " + std::to_string(r.seq) +
                                            " was already replayed as seq " + std::to_string(*dead->replayed_seq));
    }
    const auto original = m_store.messages().message(r.seq);
    if (!original) return WireError(Errc::not_found, "message seq " + std::to_string(r.seq) + " is no longer in the log");
    // A copy with a new seq at the end of the mailbox: the floor may have
    // moved past the original, and the original's history stays as it was.
    store::MessagePayload payload;
    payload.to = dead->bot;
    payload.type = original->type;
    payload.body = original->body;
    payload.reply_to = original->reply_to;
    payload.conversation = original->conversation;
    payload.hop = original->hop;
    payload.replay_of = r.seq;
    payload.replayed_by = me;
    const auto appended =
        ctx.batch.append({store::stream::mailbox(dead->bot), std::string(store::event_type::k_message_sent),
                          original->from, std::nullopt, store::encode_message_payload(payload)});
    ReplyBuilder b;
    b.field("seq", appended.seq);
    b.field("mailbox_seq", appended.stream_seq);
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const StatsRequest&) {
    const auto s = m_store.stats();
    ReplyBuilder b;
    b.field("last_seq", ctx.batch.events().empty() ? s.last_seq : ctx.batch.events().back().seq);
    b.field("events", s.event_count);
    b.field("channels", s.channel_count);
    b.field("subscriptions", s.subscription_count);
    b.field("messages", s.message_count);
    b.field("db_bytes", s.db_bytes);
    b.field("requests", m_counters.requests);
    b.field("batches", m_counters.batches);
    b.field("errors", m_counters.errors);
    b.field("sessions", m_counters.sessions);
    b.field("dropped_replies", m_counters.dropped_replies);
    b.field("paused_deliveries", m_counters.paused_deliveries);
    b.field("syncs", m_counters.syncs);
    b.field("checkpoints", m_store.checkpoints());
    b.field("uptime_us", store::now_us() - m_counters.started_at_us);
    return b;
}

Result<ReplyBuilder> CommandHandler::op(Ctx& ctx, const FeedSyncRequest& r) {
    ReplyBuilder b;
    b.field("topic", sync_topic(r.token));
    ctx.effects.sync_token = r.token;
    return b;
}

}  // namespace botbus::bus
