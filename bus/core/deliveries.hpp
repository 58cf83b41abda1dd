// Delivery with acknowledgements: what is pushed to (or fetched by) each
// reader, what waits for its acknowledgement, and what is redelivered,
// expired or dead-lettered.
//
// A reader (Reader) is a bot's mailbox, a bot's durable subscription to a
// channel, or one connection's ephemeral subscription to a channel.
// Operation: per reader, messages are read from the log in seq order (never
// past the newest durable seq the caller passes in). A pushed reader has
// consumers: the connections that take its messages (a bot's replicas),
// each with its own window of unacknowledged messages. Each message is in
// flight to one consumer at a time (its holder): new ones go to the consumer
// with the most free credit, so each consumer sees its messages in seq
// order. A pulled reader's messages are held by the connection that fetched
// them. Each delivery records its count and an ack deadline; an
// acknowledgement (a released ack event) settles it and makes room for the
// next ones. A delivery whose deadline passes is delivered again (to the
// consumer with the most free credit), until it has been delivered
// max_deliveries times: then it is handed back to be dead-lettered. A
// consumer that leaves (its connection closed, a bye) hands what it holds
// to the others at once, counted as the same delivery (a reconnect is no
// failure). A direct message whose expires_at has passed is handed back to
// be recorded as expired instead of being delivered. A reader's first
// consumer (after none) starts it over from its floor: everything unsettled
// goes out again, oldest first. An ephemeral reader has no
// acknowledgements: what is pushed is done, and it only ever moves forward
// from where it started.
// This class decides; the server sends the pushes and appends the
// settlement events it returns.
// Durability: deadlines are in memory. Delivery counts are in memory and,
// through take_attempts() (the server writes them, delivery_attempts.hpp)
// and resume_counts() (read back as a reader first meets a message),
// kept beside the log, so a restart does not reset them. Acks, expiries, dead letters and durable
// subscriptions are in the log; after a restart every unsettled message is
// delivered again.
// Concurrency: single-threaded (the server's loop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bus/protocol/vocabulary.hpp"
#include "store/store.hpp"

namespace botbus::bus {

struct DeliveryOptions {
    std::int64_t ack_timeout_us = k_default_ack_timeout_us;
    std::uint32_t max_deliveries = k_default_max_deliveries;
    std::size_t window = 1000;  // unacknowledged pushes per mailbox
    // Message bytes one pump or pull reads from the log (at least one
    // message): a reader far behind is caught up in bounded steps.
    std::size_t max_read_bytes = 1024 * 1024;
    // Fetches that may wait for messages at once (`fetch` with wait_ms): per
    // connection, per subscription, and in all. Parked fetches take memory
    // until answered; past a bound, a fetch that would wait is refused.
    std::size_t max_waiting_fetches_per_connection = 1000;
    std::size_t max_waiting_fetches_per_subscription = 1000;
    std::size_t max_waiting_fetches = 100'000;
};

// Who reads: `channel` empty for a bot's mailbox; `connection` (a routing
// id) set only for an ephemeral channel subscription.
struct Reader {
    std::string channel;
    std::string bot;
    std::string connection;
    bool is_mailbox() const { return channel.empty(); }
    auto operator<=>(const Reader&) const = default;
};

// The consumer a delivery goes to: a connection's routing id, or (for a
// mailbox's fan-out connections together, and in the unit tests) empty.
using Holder = std::string;
// How replies name a holder: the routing id in hex, "fan_out" for the empty one.
std::string connection_name(const Holder& holder);

struct Delivery {
    store::MessageRow message;
    std::uint32_t deliveries = 0;  // counted towards max_deliveries, this one included
    bool redelivered = false;      // pushed (or fetched) before
    Holder holder;                 // the consumer it is in flight to
};

struct DeadMessage {
    store::Seq seq = 0;
    std::uint32_t deliveries = 0;
};

// What one pass decided for one reader.
struct DeliveryPlan {
    Reader reader;
    std::vector<Delivery> deliveries;  // to push (or return from fetch), in the order decided
    std::vector<store::Seq> expired;   // to log as message.expired
    std::vector<DeadMessage> dead;     // to log as message.dead_lettered
    // Push the caught_up marker (a durable or ephemeral channel reader's
    // first pass to reach the newest durable message, or a durable one's
    // first pass to use up its credit inside the history), with
    // caught_up_seq: where the history ends.
    bool caught_up = false;
    store::Seq caught_up_seq = 0;
    std::vector<Holder> caught_up_holders = {};  // the consumers to push the marker to
    bool at_head = false;              // this pass read up to the newest durable message
    bool gone = false;                 // pull: the durable subscription no longer exists
    bool more = false;                 // stopped at max_read_bytes with room left: pump again once this is sent
    store::Seq position = 0;           // the newest seq read so far
    // Reading the log failed part-way (what the store threw): the plan holds
    // what was decided before it, to carry out as usual; the rest is read by
    // the reader's next pass, which the caller should make happen later.
    std::optional<std::string> read_error = std::nullopt;
    bool empty() const { return deliveries.empty() && expired.empty() && dead.empty(); }  // nothing to send or log
};

struct InFlight {
    store::Seq seq = 0;
    std::uint32_t deliveries = 0;
    std::int64_t deadline_us = 0;  // UTC µs: redelivered after this
    Holder holder;
};

// A delivery attempt to record (Deliveries::take_attempts): the message's
// count after this delivery.
struct DeliveryAttempt {
    Reader reader;
    store::Seq seq = 0;
    std::uint32_t deliveries = 0;
};

struct ReaderSettings {
    std::size_t window = 1000;  // push: per consumer; pull: for the reader
    bool pull = false;       // fetched, not pushed: no timer, due ones go out with the next fetch
    bool ephemeral = false;  // no acks: settled as delivered
    store::Seq start_after = 0;  // ephemeral: where it starts
};

struct ConsumerStatus {
    Holder holder;
    std::size_t window = 0;     // 0: a pulled reader's fetcher
    std::size_t in_flight = 0;  // held by it now
};

struct ReaderStatus {
    store::Seq position = 0;  // newest seq read
    std::size_t in_flight = 0;
    std::int64_t last_ack_us = 0;  // last acknowledgement (or start)
    bool pull = false;
    bool online = false;  // push: a connection takes its pushes
    // Push: every consumer; pull: every connection holding some of its messages.
    std::vector<ConsumerStatus> consumers;
};

class Deliveries {
public:
    Deliveries(store::Store& store, DeliveryOptions options);

    const DeliveryOptions& options() const { return m_options; }

    // A connection consumes the reader: pushed, `holder` takes new messages
    // up to settings.window unacknowledged; pulled, it fetches. The
    // reader's first consumer (or one that changes push to pull or back)
    // starts it over from its floor; a further one joins without taking
    // anything from the others; one that attaches again hands over what it
    // held (pushed again, not counted).
    void attach(const Reader& reader, const Holder& holder, const ReaderSettings& settings, std::int64_t now_us);
    // The consumer stops taking the reader's messages: what it holds goes to
    // the others on the next pump (or fetch), counted as the same delivery;
    // the last consumer's leaving makes a pushed reader offline.
    void detach(const Reader& reader, const Holder& holder, std::int64_t now_us);
    // The connection is gone: detached from every reader, its ephemeral
    // readers forgotten. Returns the readers that have messages to hand over
    // (pump them, or serve their waiting fetches).
    std::vector<Reader> connection_gone(const Holder& holder, std::int64_t now_us);
    bool has_consumers(const Reader& reader) const;
    bool has_consumer(const Reader& reader, const Holder& holder) const;
    // The reader starts over from its floor with one consumer, `holder`
    // (pushed readers; none for pulled ones).
    void restart(const Reader& reader, const ReaderSettings& settings, std::int64_t now_us,
                 const Holder& holder = {});
    // A mailbox reader with the default settings and one consumer.
    void restart_mailbox(const std::string& bot, std::int64_t now_us);
    // No connection can take the reader's pushes any more: nothing is in
    // flight. Ephemeral readers are forgotten.
    void offline(const Reader& reader);
    void forget(const Reader& reader);
    // The channel was deleted: every connection's ephemeral reader of it is
    // forgotten; returns them (durable readers end with their
    // consumer.deleted events).
    std::vector<Reader> end_ephemeral(const std::string& channel);
    bool knows(const Reader& reader) const { return m_readers.contains(reader); }
    // A plan's expiries and dead letters will not be logged after all (the
    // reader is unreachable, or logging failed): they are decided again by
    // the reader's next read, which goes back to them.
    void abandon(const DeliveryPlan& plan);
    // A released settlement event (mailbox.acked, consumer.acked,
    // message.expired, message.dead_lettered); other events are ignored.
    // Returns the reader it settled for, if any.
    std::optional<Reader> on_settled(const store::Event& event, std::int64_t now_us);

    // The passes over the log below never throw: a store read that fails
    // ends the pass with the plan's read_error set, and the reader's state
    // stays consistent (nothing it was not given counts as given).
    // Push readers: handed-over messages, then messages not delivered yet,
    // up to `visible`, as far as the consumers' windows allow; consumers for
    // which `takes` is false (their connection is backed up) get none.
    DeliveryPlan pump(const Reader& reader, store::Seq visible, std::int64_t now_us,
                      const std::function<bool(const Holder&)>& takes = {});
    // Pull readers: up to `max` messages to `holder`, due redeliveries and
    // handed-over messages first, then new ones.
    DeliveryPlan pull(const Reader& reader, std::size_t max, store::Seq visible, std::int64_t now_us,
                      const Holder& holder = {});
    // Push deliveries whose ack deadline passed by now_us: redelivered, or
    // given up. A reader whose read failed has a plan with read_error.
    std::vector<DeliveryPlan> expire(std::int64_t now_us);
    std::optional<std::int64_t> next_deadline() const;
    // The earliest ack deadline of one reader's deliveries.
    std::optional<std::int64_t> next_deadline(const Reader& reader) const;

    // ---- fetches that wait (the server parks them; the fetch op bounds them)
    // How many fetches wait on the reader, and in all.
    std::size_t waiting_fetches(const Reader& reader) const;
    std::size_t waiting_fetches() const { return m_waiting_total; }
    void fetch_waits(const Reader& reader);
    void fetch_stopped_waiting(const Reader& reader);
    // Readers that pull() handed messages to since the last call: their
    // next redelivery may have moved.
    std::set<Reader> take_pulled() { return std::exchange(m_pulled, {}); }

    // Channels `bot` receives over a connection without `durable` (ephemeral
    // readers), each once; the subscription limit counts them.
    std::vector<std::string> live_channels(const std::string& bot) const;
    bool receives_live(const std::string& bot, const std::string& channel) const;

    // Channel readers (durable and ephemeral) of a channel.
    std::vector<Reader> readers_of(const std::string& channel) const;
    // Every channel reader, pushed or pulled (a permission change checks them all).
    std::vector<Reader> channel_readers() const;
    // The reader's deliveries in flight, by seq, at most `limit` of them.
    std::vector<InFlight> in_flight(const Reader& reader, std::size_t limit = SIZE_MAX) const;
    std::optional<ReaderStatus> status(const Reader& reader) const;

    // ---- delivery counts that survive a restart
    // Deliveries made since the last call (first deliveries and
    // redeliveries; hand-overs are not new attempts), for the server to
    // record in its next batch.
    std::vector<DeliveryAttempt> take_attempts() { return std::exchange(m_attempts, {}); }
    bool has_attempts() const { return !m_attempts.empty(); }
    // Taken attempts that were not written after all: taken again next time.
    // (Bounded: past 100,000 waiting, the oldest are forgotten, and a
    // restart counts those messages from their last written attempt.)
    void restore_attempts(std::vector<DeliveryAttempt> attempts) {
        m_attempts.insert(m_attempts.begin(), attempts.begin(), attempts.end());
        constexpr std::size_t k_most = 100'000;
        if (m_attempts.size() > k_most) {
            m_attempts.erase(m_attempts.begin(), m_attempts.end() - static_cast<std::ptrdiff_t>(k_most));
        }
    }
    // Reads a message's count from the record when the reader first meets
    // it after a restart (the store's delivery_count).
    void resume_counts(bool on) { m_resume_counts = on; }

    // ---- several nodes on one log (Store::shared)
    // One node at a time delivers a durable reader (Store::claim_reader):
    // pump and pull claim it first and hand nothing out while another node
    // has it; a claim taken starts the reader over from its floor (the
    // other node may have delivered and settled since). Refused readers
    // that still have consumers or waiting fetches here, to pump or serve
    // again (a refused claim is retried at most every k_claim_retry_us).
    std::vector<Reader> refused_readers();
    // Gives up the claims of readers this node no longer serves: no
    // consumers, nothing in flight or handed over, no fetch waiting.
    // Returns how many. May throw what the store throws.
    std::size_t release_idle();
    static constexpr std::int64_t k_claim_retry_us = 500'000;

private:
    struct Consumer {
        std::size_t window = 0;
        std::size_t holding = 0;  // its deliveries in flight
        bool announced = false;   // sent the caught_up marker
    };
    struct State {
        ReaderSettings settings;
        std::map<Holder, Consumer> consumers;  // push: the connections taking its messages
        store::Seq cursor = 0;  // the newest seq read from the log since the last restart
        bool caught_up = false;
        store::Seq caught_up_seq = 0;  // where the history ended when it caught up
        std::optional<store::Seq> recorded_upto;  // resume_counts: first delivered through here before a restart
        std::int64_t last_ack_us = 0;
        bool online = false;
        std::map<store::Seq, InFlight> in_flight;
        std::set<std::pair<std::int64_t, store::Seq>> by_deadline;  // in_flight, soonest first
        std::unordered_map<store::Seq, std::uint32_t> deliveries;  // of unsettled messages
        std::set<store::Seq> settling;  // expiry or dead letter being logged
        // In flight and not yet due when the reader restarted: pushed again at
        // once, but not counted as another delivery (a reconnect is no failure).
        std::map<store::Seq, std::int64_t> grace;  // seq -> the deadline it had
        // Held by a consumer that left: delivered again first, to another
        // one, as the same delivery.
        std::set<store::Seq> handed_over;
    };
    static void fly(State& state, const InFlight& flight);
    static void land(State& state, store::Seq seq);
    static void clear_flights(State& state);
    // The reader's own message: a seq reused after a rolled-back batch may name another stream's.
    static bool belongs(const Reader& reader, const store::MessageRow& row);
    void settle(State& state, store::Seq seq);
    void settle_upto(State& state, store::Seq upto);
    // Decides one message read from the log: deliver (to `holder`), expire or give up.
    void consider(State& state, store::MessageRow row, std::int64_t now_us, DeliveryPlan& plan, const Holder& holder);
    // The consumer with the most free credit that takes messages; with
    // `over`, one even when every window is full (a redelivery).
    static std::optional<Holder> pick(const State& state, const std::function<bool(const Holder&)>& takes, bool over);
    static std::size_t free_credit(const State& state, const std::function<bool(const Holder&)>& takes);
    // The holder's deliveries become handed over.
    void hand_over(State& state, const Holder& holder);
    // Handed-over messages delivered again, as far as credit allows.
    void deliver_handed_over(const Reader& reader, State& state, std::size_t& room, std::int64_t now_us,
                             DeliveryPlan& plan, const std::function<std::optional<Holder>()>& next_holder);
    // No consumer left: what was in flight keeps its grace; read again from the floor when one comes.
    void go_offline(State& state, std::int64_t now_us);
    // A consumer (or, with none, every one) leaves the reader: detach and offline.
    void leave(std::map<Reader, State>::iterator it, const std::optional<Holder>& holder, std::int64_t now_us);
    void announce(State& state, DeliveryPlan& plan, store::Seq seq);
    std::uint32_t& count_of(const Reader& reader, State& state, store::Seq seq);
    // Reads new messages after the cursor into the plan, at most `room`.
    void read_new(const Reader& reader, State& state, std::size_t room, store::Seq visible, std::int64_t now_us,
                  DeliveryPlan& plan, const std::function<std::optional<Holder>()>& next_holder);
    // pull's work, which may throw a store read's error.
    void pull_into(DeliveryPlan& plan, std::size_t max, store::Seq visible, std::int64_t now_us, const Holder& holder);
    store::Seq floor(const Reader& reader, const State& state);
    // Every reader enters and leaves m_readers through these two, which keep
    // m_live in step.
    void note_added(const Reader& reader);
    void unhold(const Holder& holder, const Reader& reader);
    std::map<Reader, State>::iterator erase_reader(std::map<Reader, State>::iterator it);
    bool is_settled(const Reader& reader, store::Seq seq);
    // Whether this node delivers the reader now, claiming it if it can.
    bool serves(const Reader& reader, State& state, std::int64_t now_us);

    store::Store& m_store;
    DeliveryOptions m_options;
    std::map<Reader, State> m_readers;
    std::map<Reader, std::size_t> m_waiting;  // fetches waiting per reader
    std::size_t m_waiting_total = 0;
    std::set<Reader> m_pulled;
    std::map<std::string, std::map<std::string, std::size_t>> m_live;  // bot -> channel -> ephemeral readers
    std::map<Holder, std::set<Reader>> m_holders;  // connection -> readers it consumes or holds messages of
    std::vector<DeliveryAttempt> m_attempts;
    bool m_resume_counts = false;
    std::set<Reader> m_claimed;                  // readers this node delivers (shared log)
    std::map<Reader, std::int64_t> m_refused;    // claims another node holds -> when to try again
};

}  // namespace botbus::bus
