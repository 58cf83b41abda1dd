#include "bus/server/delivery_router.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "bus/core/delivery_attempts.hpp"
#include "bus/core/delivery_codec.hpp"

namespace botbus::bus {
namespace {

std::string describe(const Reader& reader) {
    if (reader.is_mailbox()) return "the mailbox of " + reader.bot;
    return reader.bot + "'s " + (reader.connection.empty() ? "" : "ephemeral ") + "subscription to '" + reader.channel +
           "'";
}

}  // namespace

DeliveryRouter::DeliveryRouter(boost::asio::io_context& io, store::Store& store, Deliveries& deliveries,
                               Transport& transport, ServerCounters& counters, std::function<std::int64_t()> clock,
                               Hooks hooks)
    : m_io(io),
      m_store(store),
      m_deliveries(deliveries),
      m_transport(transport),
      m_counters(counters),
      m_clock(std::move(clock)),
      m_hooks(std::move(hooks)),
      m_fetch_timer(io),
      m_settlement_timer(io),
      m_redelivery_timer(io),
      m_attempts_timer(io),
      m_claim_timer(io) {}

void DeliveryRouter::start(store::Seq visible) {
    m_visible_seq = visible;
    m_running = true;
    if (m_store.shared()) schedule_claim_check();
}

void DeliveryRouter::schedule_claim_check() {
    m_claim_timer.expires_after(std::chrono::milliseconds(k_claim_check_ms));
    m_claim_timer.async_wait([this](boost::system::error_code ec) {
        if (ec || !m_running) return;
        check_claims();
        schedule_claim_check();
    });
}

void DeliveryRouter::check_claims() {
    try {
        if (const auto released = m_deliveries.release_idle()) {
            spdlog::debug("released {} reader(s) no consumer here reads any more", released);
        }
    } catch (const std::exception& e) {
        spdlog::error("releasing readers for other nodes failed: {}", e.what());
    }
    // Readers another node delivered: theirs to take once that node lets go.
    const auto now_us = m_clock();
    for (const auto& reader : m_deliveries.refused_readers()) {
        deliver(reader);
        if (m_parked.front(reader)) serve(reader, now_us);
    }
    schedule_fetch_timer();
    m_hooks.drain();  // sends outside the drain loop can swallow the command socket's edge
}

void DeliveryRouter::stop() {
    m_running = false;
    m_redelivery_timer.cancel();
    m_fetch_timer.cancel();
    m_settlement_timer.cancel();
    m_attempts_timer.cancel();
    m_claim_timer.cancel();
}

void DeliveryRouter::schedule_attempts() {
    if (m_attempts_scheduled || !m_running || !m_deliveries.has_attempts()) return;
    m_attempts_scheduled = true;
    // Long enough for the acks and sends that usually follow to carry them.
    m_attempts_timer.expires_after(std::chrono::milliseconds(20));
    m_attempts_timer.async_wait([this](boost::system::error_code ec) {
        m_attempts_scheduled = false;
        if (ec || !m_running) return;
        record_attempts_now();
    });
}

void DeliveryRouter::record_attempts_now() {
    if (!m_deliveries.has_attempts()) return;
    auto attempts = m_deliveries.take_attempts();
    if (!m_hooks.run_daemon_batch([&](store::Batch& tx) { record_delivery_attempts(tx, attempts); },
                                  "recording delivery attempts")) {
        m_deliveries.restore_attempts(std::move(attempts));
        schedule_attempts();
    }
}

void DeliveryRouter::deliver(const Reader& reader) {
    if (!m_running || !m_deliveries.has_consumers(reader)) return;  // pulled, or nobody takes its pushes
    // A consumer whose connection is not keeping up gets nothing new: its
    // share stays in the log (or goes to the others) until it drains.
    bool paused = false;
    const auto takes = [&](const Holder& holder) {
        if (holder.empty()) return true;  // a mailbox's fan-out connections
        if (!m_transport.backlogged(holder)) return true;
        paused = true;
        return false;
    };
    auto plan = pump(reader, takes);
    const bool more = plan.more || (!plan.caught_up && !plan.deliveries.empty() && !reader.connection.empty());
    carry_out(std::move(plan));
    if (more || paused) {
        // Read in steps of max_read_bytes, an ephemeral reader that has not
        // reached the head reads on, and one whose consumer filled up waits
        // for it to drain.
        if (m_behind.insert(reader).second && paused) ++m_counters.paused_deliveries;
        m_transport.schedule_backlog_retry();
    }
}

DeliveryPlan DeliveryRouter::pump(const Reader& reader, const std::function<bool(const Holder&)>& takes) {
    auto plan = m_deliveries.pump(reader, m_visible_seq, m_clock(), takes);
    if (plan.read_error) {
        spdlog::error("reading the log for {} failed: {}", describe(reader), *plan.read_error);
        read_again(reader);
    }
    return plan;
}

void DeliveryRouter::carry_out(DeliveryPlan plan) {
    const auto& reader = plan.reader;
    auto count = [this](const Delivery& delivery) {
        ++m_counters.pushes;
        if (delivery.redelivered) ++m_counters.redeliveries;
    };
    // A mailbox's fan-out connections see every push of it, whichever
    // replica holds the message.
    const auto fan_out =
        reader.is_mailbox() && !plan.deliveries.empty() ? m_transport.fan_out_connections(reader.bot)
                                                        : std::vector<std::string>();
    for (const auto& delivery : plan.deliveries) {
        count(delivery);
        auto push = encode_push(view_of(delivery.message), delivery.deliveries, delivery.redelivered);
        for (const auto& routing_id : fan_out) {
            if (routing_id != delivery.holder) m_transport.send_to(routing_id, false, push);
        }
        if (!delivery.holder.empty()) m_transport.send_to(delivery.holder, false, std::move(push));
    }
    for (const auto& holder : plan.caught_up_holders) {
        if (!holder.empty()) m_transport.send_to(holder, false, encode_caught_up(reader.channel, plan.caught_up_seq));
    }
    if (!plan.deliveries.empty() && !reader.connection.size()) schedule_redelivery();
    schedule_attempts();
    queue_settlements(std::move(plan));
}

bool DeliveryRouter::deliver_behind() {
    auto behind = std::move(m_behind);
    m_behind.clear();
    for (const auto& reader : behind) deliver(reader);
    return !m_behind.empty();
}

void DeliveryRouter::join_mailbox(const std::string& routing_id, const std::string& bot, bool fan_out,
                                  std::size_t window) {
    const Reader mailbox{"", bot, ""};
    const auto now_us = m_clock();
    if (fan_out) {
        // A new mirror gets what the group holds pushed again (as a hello
        // always did), and then every push.
        if (m_deliveries.has_consumer(mailbox, Holder{})) {
            m_deliveries.attach(mailbox, Holder{}, ReaderSettings{window, false, false, 0}, now_us);
        }
    } else {
        m_deliveries.attach(mailbox, routing_id, ReaderSettings{window, false, false, 0}, now_us);
    }
    balance_mailbox(bot, window);
    deliver(mailbox);
}

void DeliveryRouter::balance_mailbox(const std::string& bot, std::size_t window) {
    // The fan-out connections are one consumer (Holder{}) while the bot has
    // no competing one; with competing ones they only watch.
    const Reader mailbox{"", bot, ""};
    const bool mirrors = !m_transport.fan_out_connections(bot).empty();
    bool competing = false;
    if (const auto status = m_deliveries.status(mailbox)) {
        for (const auto& consumer : status->consumers) competing = competing || !consumer.holder.empty();
    }
    const bool group = m_deliveries.has_consumer(mailbox, Holder{});
    if (mirrors && !competing && !group) {
        m_deliveries.attach(mailbox, Holder{}, ReaderSettings{window, false, false, 0}, m_clock());
    } else if ((!mirrors || competing) && group) {
        m_deliveries.detach(mailbox, Holder{}, m_clock());
    }
}

void DeliveryRouter::unroute(const Reader& reader, const std::string& routing_id) {
    const auto now_us = m_clock();
    m_deliveries.forget(Reader{reader.channel, reader.bot, routing_id});
    m_behind.erase(Reader{reader.channel, reader.bot, routing_id});
    if (!m_deliveries.has_consumer(reader, routing_id)) return;
    m_deliveries.detach(reader, routing_id, now_us);
    deliver(reader);  // what it held, to the others
}

void DeliveryRouter::consumer_left(const std::string& routing_id, const std::vector<std::string>& bots) {
    for (const auto& reader : m_deliveries.connection_gone(routing_id, m_clock())) {
        // What it held goes to the others now: pushed, or to a waiting fetch.
        deliver(reader);
        if (m_parked.front(reader)) serve(reader, m_clock());
    }
    for (const auto& bot : bots) balance_mailbox(bot, m_deliveries.options().window);
    for (const auto& bot : bots) deliver(Reader{"", bot, ""});
    schedule_fetch_timer();
}

void DeliveryRouter::connection_rebound(const std::string& routing_id, const std::vector<std::string>& previous) {
    // Everything it consumed was the old bot's.
    if (!previous.empty()) consumer_left(routing_id, previous);
}

void DeliveryRouter::connection_gone(const std::string& routing_id, const std::optional<std::string>& bot) {
    connection_fetches_gone(routing_id);
    consumer_left(routing_id, bot ? std::vector<std::string>{*bot} : std::vector<std::string>{});
}

namespace {

WireError subscription_gone(const Reader& reader) {
    return {Errc::not_found, reader.bot + " has no durable subscription to '" + reader.channel + "' any more"};
}

}  // namespace

void DeliveryRouter::forget_route(const Reader& reader) {
    m_behind.erase(reader);
    for (auto& fetch : m_parked.take_all(reader)) answer(fetch, encode_error_reply(fetch.id, subscription_gone(reader)));
}

void DeliveryRouter::answer(const WaitingFetch& fetch, std::optional<std::string> reply) {
    m_deliveries.fetch_stopped_waiting(fetch.wait.reader);
    if (!m_transport.knows(fetch.routing_id)) return;  // gone: nobody to answer
    auto& waiting = m_transport.session(fetch.routing_id).waiting_fetches;
    if (waiting > 0) --waiting;
    if (reply) m_transport.send_reply(fetch.routing_id, fetch.req_style, std::move(*reply));
}

void DeliveryRouter::answer_with(const WaitingFetch& fetch, const DeliveryPlan& plan) {
    if (plan.gone) {
        answer(fetch, encode_error_reply(fetch.id, subscription_gone(fetch.wait.reader)));
    } else if (plan.read_error && plan.deliveries.empty()) {
        // Answered now, as a fetch that failed at once would be; the client retries.
        spdlog::error("reading the log for a waiting fetch of {} failed: {}", describe(fetch.wait.reader),
                      *plan.read_error);
        const WireError failed{Errc::storage_error, "reading the log failed: " + *plan.read_error + "; retry"};
        answer(fetch, encode_error_reply(fetch.id, failed));
    } else {
        ReplyBuilder b;
        add_fetched(b, plan, plan.at_head);
        answer(fetch, b.finish_ok(fetch.id));
        schedule_attempts();
    }
}

void DeliveryRouter::connection_fetches_gone(const std::string& routing_id) {
    for (auto& fetch : m_parked.take_connection(routing_id)) answer(fetch, std::nullopt);
}

void DeliveryRouter::park(std::vector<WaitingFetch> waits, const std::set<std::string>& channels, std::int64_t now_us) {
    std::set<Reader> news;
    for (auto& wait : waits) {
        if (!m_transport.knows(wait.routing_id)) {
            answer(wait, std::nullopt);  // its connection closed while the batch waited for its sync
            continue;
        }
        // Messages or a redelivery may have come since it looked.
        news.insert(wait.wait.reader);
        m_parked.park(std::move(wait));
    }
    // Fetches that did not wait took messages: their redeliveries come due later.
    const auto pulled = m_deliveries.take_pulled();
    if (m_parked.size() == 0) return;
    for (const auto& channel : channels) {
        for (auto& reader : m_parked.readers_of(channel)) news.insert(std::move(reader));
    }
    for (const auto& reader : pulled) {
        if (!news.contains(reader)) m_parked.watch(reader, m_deliveries.next_deadline(reader));
    }
    for (const auto& reader : news) serve(reader, now_us);
    answer_due(now_us);
    schedule_fetch_timer();
}

void DeliveryRouter::serve(const Reader& reader, std::int64_t now_us) {
    // One read serves the oldest waiting fetch; the next is read for only
    // if that one got something, so waking costs what is handed out, not
    // how many wait.
    while (const auto* head = m_parked.front(reader)) {
        if (!m_transport.knows(head->routing_id)) {
            answer(*m_parked.take_front(reader), std::nullopt);  // its connection is gone
            continue;
        }
        auto plan = m_deliveries.pull(reader, head->wait.max, m_visible_seq, now_us);
        if (plan.gone) {
            for (auto& fetch : m_parked.take_all(reader)) answer_with(fetch, plan);
            return;
        }
        const bool failed = plan.read_error.has_value();
        const bool answered = !plan.deliveries.empty() || failed;
        if (answered) answer_with(*m_parked.take_front(reader), plan);
        queue_settlements(std::move(plan));
        // A failed read stops here: the rest are read for at their next news.
        if (!answered || failed) break;
    }
    m_parked.watch(reader, m_deliveries.next_deadline(reader));
}

void DeliveryRouter::answer_due(std::int64_t now_us) {
    std::set<Reader> pulled;
    for (auto& fetch : m_parked.take_due(now_us)) {
        // Answered with what there is now: nothing, or what came due meanwhile.
        auto plan = m_deliveries.pull(fetch.wait.reader, fetch.wait.max, m_visible_seq, now_us);
        answer_with(fetch, plan);
        if (!plan.deliveries.empty()) pulled.insert(fetch.wait.reader);
        queue_settlements(std::move(plan));
    }
    for (const auto& reader : pulled) m_parked.watch(reader, m_deliveries.next_deadline(reader));
}

void DeliveryRouter::wake(std::int64_t now_us) {
    for (const auto& reader : m_parked.take_redeliverable(now_us)) {
        const auto next = m_deliveries.next_deadline(reader);
        if (next && *next <= now_us) {
            serve(reader, now_us);
        } else {
            m_parked.watch(reader, next);  // acknowledged meanwhile, or moved later
        }
    }
    answer_due(now_us);
    schedule_fetch_timer();
}

void DeliveryRouter::schedule_fetch_timer() {
    if (!m_running) return;
    // Each fetch waits for its deadline, or for a delivery of its subscription to come due again.
    const auto next = m_parked.next_wakeup();
    if (!next) return;
    if (m_fetch_timer_at && *m_fetch_timer_at <= *next) return;
    m_fetch_timer_at = *next;
    m_fetch_timer.expires_after(std::chrono::microseconds(std::max<std::int64_t>(0, *next - m_clock())));
    m_fetch_timer.async_wait([this](boost::system::error_code ec) {
        if (ec) return;  // rescheduled earlier, or stopping
        m_fetch_timer_at.reset();
        wake(m_clock());
        m_hooks.drain();  // sends outside the drain loop can swallow the command socket's edge
    });
}

void DeliveryRouter::queue_settlements(DeliveryPlan plan) {
    if (plan.expired.empty() && plan.dead.empty()) return;
    // Logged in a batch of their own once this release is done: a release
    // must not open a batch while another may be executing.
    const bool first = m_settlements.empty();
    plan.deliveries.clear();
    m_settlements.push_back(std::move(plan));
    if (first) boost::asio::post(m_io, [this] { append_settlements(); });
}

void DeliveryRouter::append_settlements() {
    if (!m_running || m_settlements.empty()) return;
    auto settlements = std::move(m_settlements);
    m_settlements.clear();
    const bool ok = m_hooks.run_daemon_batch(
        [&](store::Batch& tx) {
            // Decided before this batch: an ack may have settled some since.
            const auto settled = [&](const Reader& reader, store::Seq seq) {
                return reader.is_mailbox() ? m_store.mailboxes().is_settled(reader.bot, seq)
                                           : m_store.consumers().is_settled(reader.bot, reader.channel, seq);
            };
            for (const auto& plan : settlements) {
                std::vector<std::uint64_t> expired;
                for (const auto seq : plan.expired) {
                    if (!settled(plan.reader, seq)) expired.push_back(seq);
                }
                if (!expired.empty()) {
                    tx.append({std::string(store::stream::k_mailboxes), store::EventType::message_expired,
                               std::string(k_daemon_producer), std::nullopt,
                               store::encode_payload(store::MessagesExpired{plan.reader.bot, std::move(expired)})});
                }
                for (const auto& dead : plan.dead) {
                    if (settled(plan.reader, dead.seq)) continue;
                    tx.append({std::string(store::stream::k_dead_letters),
                               store::EventType::message_dead_lettered, std::string(k_daemon_producer),
                               std::nullopt, store::encode_payload(dead_letter_payload(plan.reader, dead))});
                }
            }
        },
        "logging expired and dead-lettered messages");
    if (!ok) {
        // Nothing was logged: decided again when next read, which the retry
        // makes happen even if nothing else touches these readers.
        for (const auto& plan : settlements) {
            m_deliveries.abandon(plan);
            read_again(plan.reader);
        }
    }
}

void DeliveryRouter::read_again(const Reader& reader) {
    if (!m_running) return;
    const bool first = m_read_again.empty();
    m_read_again.insert(reader);
    if (!first) return;  // the pending wait covers this reader too
    spdlog::error("reading {} again in 1 s (a failed read, or settlements that failed to be logged)",
                  describe(reader));
    m_settlement_timer.expires_after(std::chrono::seconds(1));
    m_settlement_timer.async_wait([this](boost::system::error_code ec) {
        if (ec || !m_running) return;
        auto readers = std::move(m_read_again);
        m_read_again.clear();
        // Unreachable readers are read again when a connection takes them.
        for (const auto& again : readers) deliver(again);
        m_hooks.drain();  // sends outside the drain loop can swallow the command socket's edge
    });
}

void DeliveryRouter::schedule_redelivery() {
    if (m_redelivery_scheduled || !m_running) return;
    const auto next = m_deliveries.next_deadline();
    if (!next) return;
    m_redelivery_scheduled = true;
    // Deadlines closer together than this share a wake-up; after a failed
    // read, what stayed due waits a second rather than spinning.
    constexpr std::int64_t k_granularity_us = 5000;
    constexpr std::int64_t k_after_failure_us = 1'000'000;
    const auto delay =
        std::max<std::int64_t>(m_redelivery_failed ? k_after_failure_us : k_granularity_us, *next - m_clock());
    m_redelivery_timer.expires_after(std::chrono::microseconds(delay));
    m_redelivery_timer.async_wait([this](boost::system::error_code ec) {
        m_redelivery_scheduled = false;
        if (ec || !m_running) return;
        redeliver();
    });
}

void DeliveryRouter::redeliver() {
    auto plans = m_deliveries.expire(m_clock());
    m_redelivery_failed = false;
    for (const auto& plan : plans) {
        if (!plan.read_error) continue;
        spdlog::error("reading the log to redeliver to {} failed: {}; trying again in 1 s", describe(plan.reader),
                      *plan.read_error);
        m_redelivery_failed = true;
    }
    for (auto& plan : plans) {
        if (m_deliveries.has_consumers(plan.reader)) {
            carry_out(std::move(plan));
        } else {
            // Nobody to push to; what was given up on is logged all the same.
            queue_settlements(plan);
            m_deliveries.offline(plan.reader);
        }
    }
    schedule_redelivery();
    m_hooks.drain();  // sends outside the drain loop can swallow the command socket's edge
}

}  // namespace botbus::bus
