// The message ops: publish, send and history, and the loop and flood guards
// every new message passes.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bus/core/handler.hpp"
#include "bus/core/paging.hpp"
#include "store/payloads.hpp"

namespace botbus::bus {
namespace {

constexpr std::string_view k_default_message_type = "text";
constexpr std::uint64_t k_max_ttl_ms = 365ULL * 24 * 3600 * 1000;

// The event this bot appended earlier under the request's idempotency key,
// if any (a retry gets its first answer); a conflict when that event went to
// another stream, which `elsewhere` names ("channel", "recipient").
Result<std::optional<store::Appended>> earlier_append(store::Batch& batch, const std::string& me,
                                                      const std::optional<std::string>& key, const std::string& stream,
                                                      std::string_view elsewhere) {
    if (!key) return std::optional<store::Appended>();
    auto appended = batch.find_idempotent(me, *key);
    if (appended && appended->stream != stream) {
        return WireError(Errc::conflict, "idempotency_key '" + *key + "' was already used by this bot for a different " +
                                             std::string(elsewhere) + " or op");
    }
    return appended;
}

// "10" rather than std::to_string's "10.000000".
std::string plain_number(double value) {
    if (value == std::floor(value)) return std::to_string(static_cast<std::int64_t>(value));
    return std::to_string(value);
}

}  // namespace

Result<PublishReply> CommandHandler::op(Ctx& ctx, const PublishRequest& r) {
    const std::string& me = ctx.me;
    if (auto refused = m_acl.check(ctx.identity(), Permission::publish, r.channel)) return std::move(*refused);
    auto earlier = earlier_append(ctx.batch, me, r.idempotency_key, store::stream::channel(r.channel), "channel");
    if (!earlier) return earlier.error();
    auto& appended = *earlier;
    if (!appended) {
        store::MessagePayload payload;
        if (auto refused = guard_message(ctx, me, store::stream::channel(r.channel), r.reply_to, payload)) {
            return std::move(*refused);
        }
        ensure_channel(ctx, r.channel, me);
        payload.channel = r.channel;
        payload.type = r.type ? std::string_view(*r.type) : k_default_message_type;
        payload.body = r.body.bytes;
        appended = ctx.batch.append({store::stream::channel(r.channel),
                                     store::EventType::message_published, me, r.idempotency_key,
                                     store::encode_message_payload(payload)});
    }
    return PublishReply{appended->seq, appended->stream_seq, appended->ts_us, appended->duplicate};
}

Result<SendReply> CommandHandler::op(Ctx& ctx, const SendRequest& r) {
    const std::string& me = ctx.me;
    auto earlier = earlier_append(ctx.batch, me, r.idempotency_key, store::stream::mailbox(r.to), "recipient");
    if (!earlier) return earlier.error();
    auto& appended = *earlier;
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
        payload.type = r.type ? std::string_view(*r.type) : k_default_message_type;
        payload.body = r.body.bytes;
        payload.ttl_ms = r.ttl_ms;  // expires at the event's own ts + ttl_ms, exactly
        appended =
            ctx.batch.append({store::stream::mailbox(r.to), store::EventType::message_sent, me,
                              r.idempotency_key, store::encode_message_payload(payload)});
    }
    return SendReply{appended->seq, appended->stream_seq, appended->ts_us, appended->duplicate};
}

Result<HistoryRows> CommandHandler::op(Ctx& ctx, const HistoryRequest& r) {
    const int scopes = (r.channel ? 1 : 0) + (r.peer ? 1 : 0) + (r.inbox.value_or(false) ? 1 : 0);
    if (scopes != 1) {
        return WireError(scopes == 0 ? Errc::missing_field : Errc::invalid_field,
                        "history needs exactly one of 'channel', 'peer' or 'inbox': true");
    }
    store::HistoryQuery query;
    if (r.channel) {
        if (auto refused = m_acl.check(ctx.identity(), Permission::read, *r.channel)) return std::move(*refused);
        if (!m_store.messages().channel_exists(*r.channel)) return WireError(Errc::not_found, "no channel '" + *r.channel + "'");
        query.scope = store::HistoryQuery::Scope::channel;
        query.channel = *r.channel;
    } else {
        const auto* me = ctx.identity();
        if (!r.bot && !me) return WireError(Errc::not_identified, "give 'bot', or send hello first");
        query.bot_a = r.bot ? *r.bot : *me;
        // A conversation: either of its two bots; an inbox: its bot; or an admin.
        const bool participant = me && r.peer && *me == *r.peer;
        if (auto refused = may_see_bot(ctx, query.bot_a, r.peer ? "read the conversations" : "read the inbox");
            refused && !participant) {
            return std::move(*refused);
        }
        if (r.peer) {
            query.scope = store::HistoryQuery::Scope::conversation;
            query.bot_b = *r.peer;
        } else {
            query.scope = store::HistoryQuery::Scope::inbox;
        }
    }
    const auto limit = page_limit(r.limit);
    if (!limit) return limit.error();
    if (r.order && *r.order != "asc" && *r.order != "desc") {
        return WireError(Errc::invalid_field, "field 'order' must be \"asc\" or \"desc\"");
    }
    query.after = r.after;
    query.before = r.before;
    query.limit = *limit + 1;  // one extra row tells whether there is more
    query.newest_first = r.order && *r.order == "desc";
    // The store stops after the row that takes the page past the budget:
    // fit_page leaves that row out, and it shows that more follow.
    query.max_bytes = k_max_reply_bytes + 1;
    auto rows = m_store.messages().history(query);
    bool more = fit_page(rows, *limit, store::message_bytes);
    if (!more && rows.size() == 1 && store::message_bytes(rows.front()) > k_max_reply_bytes) {
        // One message over the budget stopped the read alone: ask for one more.
        auto next = query;
        (query.newest_first ? next.before : next.after) = rows.front().seq;
        next.limit = 1;
        next.max_bytes = 1;
        more = !m_store.messages().history(next).empty();
    }
    return HistoryRows{std::move(rows), more};
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

}  // namespace botbus::bus
