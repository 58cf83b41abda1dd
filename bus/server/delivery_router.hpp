// Carries out what Deliveries (deliveries.hpp) decides: pushes to the
// connections that take a reader's messages, answers parked fetches, logs
// expiries and dead letters, and redelivers what was not acknowledged.
//
// Operation: after each release, deliver() runs for every reader whose
// stream changed; it pumps the reader from the log up to the newest
// released seq (set_visible) and sends each message of the plan to the
// consumer holding it (Deliveries' attach: a bot's replicas share its
// mailbox and its durable subscriptions), and a mailbox's messages also to
// the bot's fan-out connections (join_mailbox). A connection whose queue is
// full gets nothing new: its share stays in the log ("behind") or goes to
// the other consumers; deliver_behind() reads again once the Transport's
// backlog retry finds room. A consumer that leaves (its connection closes,
// a bye, another hello) hands what it held to the others at once. Fetches that found
// nothing are parked (park(), parked_fetches.hpp) until their channel has
// news, a delivery of their reader comes due again, or their deadline
// passes; a subscription's waiting fetches are served oldest first, one
// read each, and only while reads hand something out. A plan's expiries
// and dead letters are logged in a daemon batch of their own, posted after
// the current release (a release must not open a batch while another may be
// executing); when that batch fails they are decided again a second later.
// A failed read of the log (Deliveries' read_error) never escapes: the
// reader is read again a second later, a waiting fetch is answered
// storage_error, a redelivery pass tries again a second later; each is
// logged.
// A redelivery timer hands the deliveries not acknowledged in time back to
// their readers. On a log shared by several nodes a durable reader is
// delivered by one node at a time (Deliveries' claims): every
// k_claim_check_ms the router gives up the readers it no longer has
// consumers for and tries again for the ones another node had. Every timer's work ends with the `drain` hook: sends
// outside the drain loop can swallow the command socket's ZMQ_FD edge.
// Concurrency: the loop thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bus/core/handler.hpp"
#include "bus/server/parked_fetches.hpp"
#include "bus/server/release.hpp"
#include "bus/server/transport.hpp"
#include "store/store.hpp"

namespace botbus::bus {

class DeliveryRouter {
public:
    struct Hooks {
        // Runs `work` in a batch of the daemon's own, released like a request
        // batch's; false when the batch failed.
        std::function<bool(const std::function<void(store::Batch&)>& work, const char* what)> run_daemon_batch;
        // Drains the command socket.
        std::function<void()> drain;
    };

    DeliveryRouter(boost::asio::io_context& io, store::Store& store, Deliveries& deliveries, Transport& transport,
                   ServerCounters& counters, std::function<std::int64_t()> clock, Hooks hooks);

    void start(store::Seq visible);
    void stop();  // cancels the timers; nothing is delivered after it

    // The newest seq released (durable and shown): nothing newer is read.
    void set_visible(store::Seq seq) { m_visible_seq = std::max(m_visible_seq, seq); }

    // A released hello: the connection takes a share of the bot's direct
    // messages (up to `window` unacknowledged), or with `fan_out` a copy of
    // every push.
    void join_mailbox(const std::string& routing_id, const std::string& bot, bool fan_out, std::size_t window);
    // The reader's subscription is gone: its fetches that wait are answered
    // (not_found) now, not at their deadline.
    void forget_route(const Reader& reader);
    // The connection no longer consumes the reader (what it held goes to the
    // others), nor the connection's ephemeral reader of the same channel.
    void unroute(const Reader& reader, const std::string& routing_id);
    // The connection consumes nothing any more (a bye, another hello, gone):
    // what it held goes to the others now.
    void consumer_left(const std::string& routing_id, const std::vector<std::string>& bots);
    // Transport hooks: a connection became another bot's, or is gone.
    void connection_rebound(const std::string& routing_id, const std::vector<std::string>& previous);
    void connection_gone(const std::string& routing_id, const std::optional<std::string>& bot);

    void deliver(const Reader& reader);
    // Readers left behind by a full connection, once it drains; true while
    // some are still behind.
    bool deliver_behind();
    // Parks the fetches of a released batch and answers the parked ones
    // whose channel is in `channels` (while there are messages for them),
    // or whose time is up. Every fetch parked was counted waiting (its
    // session's waiting_fetches, Deliveries::fetch_waits); answering or
    // dropping it uncounts it.
    void park(std::vector<WaitingFetch> waits, const std::set<std::string>& channels, std::int64_t now_us);
    std::size_t waiting_fetches() const { return m_parked.size(); }
    // Delivery attempts not written yet go into the next batch of requests;
    // when none comes within a few milliseconds, into a batch of their own
    // (scheduled here, after each plan carried out).
    void schedule_attempts();
    void record_attempts_now();

private:
    // Deliveries::pump; a failed read is logged and the reader read again later.
    DeliveryPlan pump(const Reader& reader, const std::function<bool(const Holder&)>& takes);
    void carry_out(DeliveryPlan plan);
    // Makes the bot's fan-out connections one consumer of its mailbox while
    // it has no competing one, and not otherwise.
    void balance_mailbox(const std::string& bot, std::size_t window);
    // Serves the reader's waiting fetches from the oldest while reads hand something out.
    void serve(const Reader& reader, std::int64_t now_us);
    // Answers the fetches whose deadline passed, with what there is.
    void answer_due(std::int64_t now_us);
    // The fetch timer: due redeliveries and deadlines.
    void wake(std::int64_t now_us);
    // Uncounts a parked fetch and sends it the reply, if its connection is still there.
    void answer(const WaitingFetch& fetch, std::optional<std::string> reply);
    // The reply for a fetch from a read made for it.
    void answer_with(const WaitingFetch& fetch, const DeliveryPlan& plan);
    void connection_fetches_gone(const std::string& routing_id);
    void schedule_fetch_timer();
    // Queues a plan's expiries and dead letters to be logged in a batch of their own.
    void queue_settlements(DeliveryPlan plan);
    void append_settlements();
    // Reads the reader again in a second: its read failed, or its
    // settlements failed to be logged (what it gave up on is then decided
    // and logged anew).
    void read_again(const Reader& reader);
    void schedule_redelivery();
    void redeliver();
    // Shared log: releases the readers no consumer here reads, and tries
    // the claims other nodes held again.
    void schedule_claim_check();
    void check_claims();
    static constexpr int k_claim_check_ms = 1000;

    boost::asio::io_context& m_io;
    store::Store& m_store;
    Deliveries& m_deliveries;
    Transport& m_transport;
    ServerCounters& m_counters;
    std::function<std::int64_t()> m_clock;
    Hooks m_hooks;
    bool m_running = false;
    store::Seq m_visible_seq = 0;
    std::set<Reader> m_behind;               // readers to push to again once their connection drains
    ParkedFetches m_parked;                  // fetches waiting for messages
    boost::asio::steady_timer m_fetch_timer;
    std::optional<std::int64_t> m_fetch_timer_at;
    std::vector<DeliveryPlan> m_settlements;  // expiries and dead letters waiting to be logged
    std::set<Reader> m_read_again;            // readers to read again once m_settlement_timer fires
    boost::asio::steady_timer m_settlement_timer;
    boost::asio::steady_timer m_redelivery_timer;
    bool m_redelivery_scheduled = false;
    bool m_redelivery_failed = false;  // the last redelivery pass could not read everything it had due
    boost::asio::steady_timer m_attempts_timer;
    bool m_attempts_scheduled = false;
    boost::asio::steady_timer m_claim_timer;
};

}  // namespace botbus::bus
