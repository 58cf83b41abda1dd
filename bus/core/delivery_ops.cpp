// The delivery ops: ack, fetch, consumers, mailbox, dlq.list, dlq.replay.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "bus/core/handler.hpp"
#include "bus/core/paging.hpp"
#include "store/payloads.hpp"

namespace botbus::bus {
namespace {

constexpr std::uint64_t k_max_dlq_limit = 1000;
constexpr std::uint64_t k_default_dlq_limit = 100;
constexpr std::uint64_t k_max_consumers_limit = 1000;
constexpr std::uint64_t k_default_consumers_limit = 100;
// No byte budget is needed beside the limit: an entry is two names of at
// most 128 bytes and ten small fields, so 1000 of them stay under 0.5 MiB.
constexpr std::size_t k_max_listed_in_flight = 1000;  // mailbox's in_flight array
// Replicas listed per subscription by consumers (each ~40 bytes: 1000
// subscriptions stay under another 0.5 MiB); mailbox lists up to 1000.
constexpr std::size_t k_max_listed_replicas = 8;
constexpr std::size_t k_max_mailbox_replicas = 1000;

std::vector<ReplicaInfo> replicas_of(const std::optional<ReaderStatus>& status, std::size_t most) {
    std::vector<ReplicaInfo> replicas;
    if (!status) return replicas;
    for (const auto& c : status->consumers) {
        if (replicas.size() >= most) break;
        replicas.push_back(ReplicaInfo{connection_name(c.holder), c.window, c.in_flight});
    }
    return replicas;
}

// A fetch that would wait is refused past the bounds on waiting fetches:
// each takes memory until it is answered.
Check may_wait(const Session& session, const Deliveries& deliveries, const Reader& reader) {
    const auto& options = deliveries.options();
    const auto refuse = [](const std::string& why) {
        return WireError(Errc::invalid_field, "field 'wait_ms': " + why +
                                                  "; fetch without wait_ms, or once a waiting fetch is answered");
    };
    if (session.waiting_fetches >= options.max_waiting_fetches_per_connection) {
        return refuse(std::to_string(session.waiting_fetches) +
                      " fetches of this connection wait already, the most allowed");
    }
    if (const auto n = deliveries.waiting_fetches(reader); n >= options.max_waiting_fetches_per_subscription) {
        return refuse(std::to_string(n) + " fetches of the subscription of " + reader.bot + " to '" + reader.channel +
                      "' wait already, the most allowed");
    }
    if (deliveries.waiting_fetches() >= options.max_waiting_fetches) {
        return refuse(std::to_string(deliveries.waiting_fetches()) + " fetches wait already, the most the daemon allows");
    }
    return std::nullopt;
}

}  // namespace

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

Result<AckReply> CommandHandler::op(Ctx& ctx, const AckRequest& r) {
    const std::string& me = ctx.me;
    if (!r.upto && !r.seqs) return WireError(Errc::missing_field, "ack needs 'upto', 'seqs' or both");
    const Reader reader{r.channel.value_or(""), me, ""};
    const auto floor =
        r.channel ? m_store.consumers().floor(me, *r.channel) : std::optional(m_store.messages().mailbox_acked(me));
    if (!floor) return WireError(Errc::not_found, me + " has no durable subscription to '" + *r.channel + "'");
    auto settle = settling(ctx, r, reader, *floor);
    if (!settle) return settle.take_error();
    if (!settle->upto && !settle->seqs) return AckReply{*floor, std::nullopt};  // all settled already; nothing appended
    std::string payload;
    if (r.channel) {
        payload = store::encode_payload(store::ConsumerAcked{me, *r.channel, settle->upto, std::move(settle->seqs)});
    } else {
        payload = store::encode_payload(store::MailboxAcked{settle->upto, std::move(settle->seqs)});
    }
    const auto appended = ctx.batch.append(
        {std::string(r.channel ? store::stream::k_consumers : store::stream::k_mailboxes),
         r.channel ? store::EventType::consumer_acked : store::EventType::mailbox_acked, me,
         std::nullopt, std::move(payload)});
    return AckReply{r.channel ? m_store.consumers().floor(me, *r.channel).value_or(0) : m_store.messages().mailbox_acked(me),
                    appended.seq};
}

Result<std::optional<FetchedPlan>> CommandHandler::op(Ctx& ctx, const FetchRequest& r) {
    const std::string& me = ctx.me;
    const auto max = r.max.value_or(k_default_history_limit);
    if (max == 0 || max > k_max_history_limit) {
        return WireError(Errc::invalid_field, "field 'max' must be 1 to " + std::to_string(k_max_history_limit));
    }
    if (r.wait_ms && *r.wait_ms > k_max_fetch_wait_ms) {
        return WireError(Errc::invalid_field, "field 'wait_ms' must be at most " + std::to_string(k_max_fetch_wait_ms));
    }
    if (auto refused = m_acl.check(ctx.identity(), Permission::read, r.channel)) return std::move(*refused);
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
    auto plan = m_deliveries.pull(reader, static_cast<std::size_t>(max), visible, now, ctx.session.connection);
    if (plan.read_error && plan.deliveries.empty()) {
        m_deliveries.abandon(plan);  // nothing of it is logged: decided again by the next fetch
        return WireError(Errc::storage_error, "reading the log failed: " + *plan.read_error + "; retry");
    }
    const bool waits = plan.deliveries.empty() && r.wait_ms && *r.wait_ms > 0;
    if (waits) {
        if (auto refused = may_wait(ctx.session, m_deliveries, reader)) {
            m_deliveries.abandon(plan);  // nothing of it is logged: decided again by the next fetch
            return std::move(*refused);
        }
    }
    // Given up on while fetching: logged in this batch.
    for (const auto& dead : plan.dead) append_dead_letter(ctx.batch, reader, dead);
    if (waits) {
        ctx.effects.fetch_wait =
            FetchWait{reader, static_cast<std::size_t>(max), now + static_cast<std::int64_t>(*r.wait_ms) * 1000};
        return std::optional<FetchedPlan>();
    }
    const bool at_head = plan.at_head;
    return std::optional(FetchedPlan{std::move(plan), at_head});
}

void CommandHandler::append_dead_letter(store::Batch& batch, const Reader& reader, const DeadMessage& dead) {
    batch.append({std::string(store::stream::k_dead_letters), store::EventType::message_dead_lettered,
                  std::string(k_daemon_producer), std::nullopt,
                  store::encode_payload(dead_letter_payload(reader, dead))});
}

Result<ConsumersReply> CommandHandler::op(Ctx& ctx, const ConsumersRequest& r) {
    if (r.bot) {
        if (auto refused = may_see_bot(ctx, *r.bot, "list the durable subscriptions")) return std::move(*refused);
    }
    const auto limit = r.limit.value_or(k_default_consumers_limit);
    if (limit == 0 || limit > k_max_consumers_limit) {
        return WireError(Errc::invalid_field, "field 'limit' must be 1 to " + std::to_string(k_max_consumers_limit));
    }
    if (r.after.has_value() != r.after_bot.has_value()) {
        return WireError(Errc::invalid_field,
                         "fields 'after' and 'after_bot' go together: the channel and bot of the last consumer listed");
    }
    store::ConsumerFilter filter{r.bot, r.channel, std::nullopt, static_cast<std::size_t>(limit) + 1};
    if (r.after) filter.after = std::pair(*r.after, *r.after_bot);
    auto rows = m_store.consumers().consumers(filter);
    const auto now = m_messaging.clock();
    ConsumersReply reply;
    reply.more = rows.size() > limit;
    if (reply.more) rows.pop_back();
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
        reply.consumers.push_back(ConsumerInfo{c.bot, c.channel, c.acked, c.head, c.unsettled, in_flight,
                                               idle ? "idle" : status->pull ? "pull" : "push",
                                               status ? status->last_ack_us : std::int64_t{0}, stuck, c.created_at,
                                               status ? status->consumers.size() : 0,
                                               replicas_of(status, k_max_listed_replicas)});
    }
    return reply;
}

Result<MailboxReply> CommandHandler::op(Ctx& ctx, const MailboxRequest& r) {
    const auto* me = ctx.identity();
    if (!r.bot && !me) return WireError(Errc::not_identified, "give 'bot', or send hello first");
    const std::string& bot = r.bot ? *r.bot : *me;
    if (auto refused = may_see_bot(ctx, bot, "read the mailbox")) return std::move(*refused);
    MailboxReply reply;
    reply.bot = bot;
    if (r.channel) {
        // A durable subscription's pending messages, the same way.
        const auto consumer = m_store.consumers().consumer(bot, *r.channel);
        if (!consumer) return WireError(Errc::not_found, bot + " has no durable subscription to '" + *r.channel + "'");
        reply.channel = r.channel;
        reply.acked = consumer->acked;
        reply.unsettled = consumer->unsettled;
    } else {
        reply.acked = m_store.messages().mailbox_acked(bot);
        reply.unsettled = m_store.mailboxes().unsettled_count(bot);
    }
    const Reader reader{r.channel.value_or(""), bot, ""};
    // A window may hold up to 100,000: the reply lists the oldest and counts them all.
    for (const auto& f : m_deliveries.in_flight(reader, k_max_listed_in_flight)) {
        reply.in_flight.push_back(InFlightInfo{f.seq, f.deliveries, f.deadline_us, connection_name(f.holder)});
    }
    const auto status = m_deliveries.status(reader);
    reply.in_flight_count = status ? status->in_flight : 0;
    reply.replicas = replicas_of(status, k_max_mailbox_replicas);
    return reply;
}

Result<DeadLetterRows> CommandHandler::op(Ctx& ctx, const DlqListRequest& r) {
    if (r.bot) {
        if (auto refused = may_see_bot(ctx, *r.bot, "list the dead letters")) return std::move(*refused);
    }
    const auto limit = r.limit.value_or(k_default_dlq_limit);
    if (limit == 0 || limit > k_max_dlq_limit) {
        return WireError(Errc::invalid_field, "field 'limit' must be 1 to " + std::to_string(k_max_dlq_limit));
    }
    store::DeadLetterQuery query;
    query.bot = r.bot;
    query.after = r.after.value_or(0);
    query.limit = limit + 1;
    auto rows = m_store.mailboxes().dead_letters(query);
    bool more = rows.size() > limit;
    if (more) rows.pop_back();
    DeadLetterRows reply;
    std::size_t bytes = 0;
    for (auto& row : rows) {
        auto message = m_store.messages().message(row.message_seq);  // none: trimmed from the log
        // Within the reply byte budget (paging.hpp), and always the first.
        bytes += row.reason.size() + row.bot.size() + (message ? store::message_bytes(*message) : 0);
        if (!reply.rows.empty() && bytes > k_max_reply_bytes) {
            more = true;
            break;
        }
        reply.rows.push_back({std::move(row), std::move(message)});
    }
    reply.more = more;
    return reply;
}

Result<DlqReplayReply> CommandHandler::op(Ctx& ctx, const DlqReplayRequest& r) {
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
    if (auto refused = may_see_bot(ctx, dead->bot, "replay the dead letters")) return std::move(*refused);
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
        ctx.batch.append({store::stream::mailbox(dead->bot), store::EventType::message_sent,
                          original->from, std::nullopt, store::encode_message_payload(payload)});
    return DlqReplayReply{appended.seq, appended.stream_seq};
}

}  // namespace botbus::bus
