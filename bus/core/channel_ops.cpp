// The channel and subscription ops: channel.create, channel.delete,
// channel.retention, channel.list, subscribe (with delivery plans),
// unsubscribe, subscriptions, subscribers.
#include <algorithm>
#include <cstdint>

#include "bus/core/handler.hpp"
#include "bus/core/paging.hpp"
#include "store/payloads.hpp"

namespace botbus::bus {
namespace {

ChannelInfo channel_info(const store::ChannelRow& c) {
    return ChannelInfo{c.name,       c.description,      c.created_by, c.created_at, c.subscriber_count,
                       c.last_channel_seq, c.max_age_ms, c.max_messages};
}

}  // namespace

store::Seq CommandHandler::ensure_channel(Ctx& ctx, const std::string& name, const std::string& producer) {
    if (m_store.messages().channel_exists(name)) return 0;
    return ctx.batch
        .append({std::string(store::stream::k_channels), store::EventType::channel_created, producer,
                 std::nullopt, store::encode_payload(store::ChannelCreated{name, std::nullopt})})
        .seq;
}

Result<ChannelReply> CommandHandler::op(Ctx& ctx, const ChannelCreateRequest& r) {
    const std::string& me = ctx.me;
    if (auto refused = m_acl.check(ctx.identity(), Permission::admin, r.name)) return std::move(*refused);
    if (m_store.messages().channel_exists(r.name)) {
        return WireError(Errc::conflict, "channel '" + r.name + "' already exists");
    }
    const auto appended =
        ctx.batch.append({std::string(store::stream::k_channels), store::EventType::channel_created,
                          me, std::nullopt, store::encode_payload(store::ChannelCreated{r.name, r.description})});
    return ChannelReply{appended.seq, channel_info(*m_store.messages().channel(r.name))};
}

Result<SeqReply> CommandHandler::op(Ctx& ctx, const ChannelDeleteRequest& r) {
    const std::string& me = ctx.me;
    if (auto refused = m_acl.check(ctx.identity(), Permission::admin, r.name)) return std::move(*refused);
    if (!m_store.messages().channel_exists(r.name)) return WireError(Errc::not_found, "no channel '" + r.name + "'");
    // Every subscription ends with the channel. Durable ones are ended in the
    // log, each as its own bot's unsubscribe would, so that a rebuild agrees
    // and their cursors, waiting fetches and consumers entries go;
    // memberships go with channel.deleted; each connection's delivered
    // subscription ends when the server shows channel.deleted.
    for (const auto& consumer : m_store.consumers().consumers(std::nullopt, r.name)) {
        ctx.batch.append({std::string(store::stream::k_consumers), store::EventType::consumer_deleted, me,
                          std::nullopt, store::encode_payload(store::ConsumerDeleted{consumer.bot, r.name})});
    }
    const auto appended =
        ctx.batch.append({std::string(store::stream::k_channels), store::EventType::channel_deleted,
                          me, std::nullopt, store::encode_payload(store::ChannelDeleted{r.name})});
    return SeqReply{appended.seq};
}

Result<ChannelReply> CommandHandler::op(Ctx& ctx, const ChannelRetentionRequest& r) {
    const std::string& me = ctx.me;
    if (auto refused = m_acl.check(ctx.identity(), Permission::admin, r.name)) return std::move(*refused);
    if (!m_store.messages().channel_exists(r.name)) return WireError(Errc::not_found, "no channel '" + r.name + "'");
    constexpr std::uint64_t k_most = 1ULL << 53;  // kept exact through every client's numbers
    if ((r.max_age_ms && *r.max_age_ms > k_most) || (r.max_messages && *r.max_messages > k_most)) {
        return WireError(Errc::invalid_field, "retention limits must be at most 2^53");
    }
    const auto appended = ctx.batch.append(
        {std::string(store::stream::k_channels), store::EventType::channel_retention_set, me,
         std::nullopt, store::encode_payload(store::ChannelRetentionSet{r.name, r.max_age_ms, r.max_messages})});
    return ChannelReply{appended.seq, channel_info(*m_store.messages().channel(r.name))};
}

Result<ChannelListReply> CommandHandler::op(Ctx&, const ChannelListRequest& r) {
    const auto limit = page_limit(r.limit);
    if (!limit) return limit.error();
    auto rows = m_store.messages().channels(r.after.value_or(""), page_query(*limit));
    ChannelListReply reply;
    reply.more = fit_page(rows, *limit);
    for (const auto& c : rows) reply.channels.push_back(channel_info(c));
    return reply;
}

Result<SubscribeReply> CommandHandler::op(Ctx& ctx, const SubscribeRequest& r) {
    const std::string& me = ctx.me;
    const std::string& bot = r.bot ? *r.bot : me;
    // Every form reads the channel: membership (the feed), delivered, durable, catch-up.
    if (auto refused = m_acl.check(ctx.identity(), Permission::read, r.channel)) return std::move(*refused);
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
    if (auto refused = within_subscription_limit(bot, r.channel)) return std::move(*refused);
    SubscribeReply reply;
    const bool member = m_store.messages().is_subscribed(bot, r.channel);
    ensure_channel(ctx, r.channel, me);
    std::optional<store::Seq> seq;
    if (!member) {
        seq = ctx.batch
                  .append({std::string(store::stream::k_channels), store::EventType::subscription_added, me,
                           std::nullopt, store::encode_payload(store::SubscriptionChanged{bot, r.channel})})
                  .seq;
    }
    reply.subscribed = !member;  // false: it already was; nothing appended for the membership
    if (binding) {
        const bool durable = r.durable.value_or(false);
        const auto floor = durable ? m_store.consumers().floor(me, r.channel) : std::nullopt;
        if (durable && !floor) {
            seq = ctx.batch
                      .append({std::string(store::stream::k_consumers), store::EventType::consumer_created,
                               me, std::nullopt,
                               store::encode_payload(
                                   store::ConsumerCreated{me, r.channel, binding->settings.start_after})})
                      .seq;
        }
        reply.durable = durable;
        reply.resumed = floor.has_value();  // an existing durable subscription goes on from its floor
        reply.start_after = floor ? *floor : binding->settings.start_after;
        reply.deliver = binding->settings.pull ? "pull" : "push";
    }
    reply.seq = seq;
    ctx.effects.binding = std::move(binding);
    return reply;
}

Check CommandHandler::within_subscription_limit(const std::string& bot, const std::string& channel) {
    auto& messages = m_store.messages();
    // A channel the bot has already, in any way, adds nothing: resubscribing
    // after a reconnect, or one more replica's live subscription, is free.
    if (messages.is_subscribed(bot, channel) || m_store.consumers().floor(bot, channel) ||
        m_deliveries.receives_live(bot, channel)) {
        return std::nullopt;
    }
    const auto most = m_messaging.max_subscriptions_per_bot;
    auto count = messages.subscribed_channels(bot, most);
    // Live subscriptions normally come with a membership (subscribe makes
    // one), so each is looked up only when they could reach the limit.
    if (count < most) {
        const auto live = m_deliveries.live_channels(bot);
        if (count + live.size() >= most) {
            for (const auto& c : live) {
                if (!messages.is_subscribed(bot, c) && !m_store.consumers().floor(bot, c) && ++count >= most) break;
            }
        }
    }
    if (count < most) return std::nullopt;
    ++m_refused_subscriptions;
    return WireError(Errc::limit_reached, "--max-subscriptions-per-bot is " + std::to_string(most) + ": " + bot +
                                              " is subscribed to that many channels already; unsubscribe from one first");
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

Result<UnsubscribeReply> CommandHandler::op(Ctx& ctx, const UnsubscribeRequest& r) {
    const std::string& me = ctx.me;
    const std::string& bot = r.bot ? *r.bot : me;
    std::optional<store::Seq> seq;
    const bool member = m_store.messages().is_subscribed(bot, r.channel);
    if (member) {
        seq = ctx.batch
                  .append({std::string(store::stream::k_channels), store::EventType::subscription_removed, me,
                           std::nullopt, store::encode_payload(store::SubscriptionChanged{bot, r.channel})})
                  .seq;
    }
    // A durable subscription goes with the membership, cursor and all; only
    // its own bot may end it.
    const bool durable = bot == me && m_store.consumers().floor(bot, r.channel).has_value();
    if (durable) {
        seq = ctx.batch
                  .append({std::string(store::stream::k_consumers), store::EventType::consumer_deleted,
                           me, std::nullopt, store::encode_payload(store::ConsumerDeleted{bot, r.channel})})
                  .seq;
    }
    if (bot == me) ctx.effects.unbind_channel = r.channel;
    return UnsubscribeReply{member || durable, seq};
}

Result<SubscriptionsReply> CommandHandler::op(Ctx& ctx, const SubscriptionsRequest& r) {
    const auto* me = ctx.identity();
    if (!r.bot && !me) return WireError(Errc::not_identified, "give 'bot', or send hello first");
    const std::string& bot = r.bot ? *r.bot : *me;
    if (auto refused = may_see_bot(ctx, bot, "list the subscriptions")) return std::move(*refused);
    const auto limit = page_limit(r.limit);
    if (!limit) return limit.error();
    SubscriptionsReply reply{bot, m_store.messages().subscriptions(bot, r.after.value_or(""), page_query(*limit))};
    reply.more = fit_page(reply.channels, *limit);
    return reply;
}

Result<SubscribersReply> CommandHandler::op(Ctx&, const SubscribersRequest& r) {
    if (!m_store.messages().channel_exists(r.channel)) return WireError(Errc::not_found, "no channel '" + r.channel + "'");
    const auto limit = page_limit(r.limit);
    if (!limit) return limit.error();
    SubscribersReply reply{r.channel, m_store.messages().subscribers(r.channel, r.after.value_or(""), page_query(*limit))};
    reply.more = fit_page(reply.bots, *limit);
    return reply;
}

}  // namespace botbus::bus
