// Delivery of direct messages: what is pushed to a bot, what waits for its
// acknowledgement, and what is redelivered, expired or dead-lettered.
//
// Operation: per bot with a live push connection, messages are read from the
// log in seq order (never past the last durable seq the server passes in),
// up to `window` unacknowledged at a time. Each push records its delivery
// count and an ack deadline; an acknowledgement (a released mailbox.acked
// event) settles it and makes room for the next ones. A push whose deadline
// passes is delivered again, until it has been delivered max_deliveries
// times: then it is handed back to be dead-lettered. A message whose
// expires_at has passed is handed back to be recorded as expired instead of
// being delivered. A new push connection (hello) starts the bot over from its
// acknowledged floor: everything unsettled goes out again, oldest first.
// This class decides; the server sends the pushes and appends the
// settlement events it returns.
// Durability: delivery counts and deadlines are in memory. Acks, expiries
// and dead letters are in the log; after a restart every unsettled message
// is delivered again with its count starting over.
// Concurrency: single-threaded (the server's loop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "bus/protocol.hpp"
#include "store/store.hpp"

namespace botbus::bus {

struct DeliveryOptions {
    std::int64_t ack_timeout_us = k_default_ack_timeout_us;
    std::uint32_t max_deliveries = k_default_max_deliveries;
    std::size_t window = 1000;  // unacknowledged pushes per bot
};

struct Delivery {
    store::MessageRow message;
    std::uint32_t deliveries = 0;  // this one included: 1 is the first delivery
};

struct DeadMessage {
    store::Seq seq = 0;
    std::uint32_t deliveries = 0;
};

// What one pass decided for one bot.
struct DeliveryPlan {
    std::string bot;
    std::vector<Delivery> pushes;          // in seq order, except redeliveries come first
    std::vector<store::Seq> expired;       // to log as message.expired
    std::vector<DeadMessage> dead;         // to log as message.dead_lettered
    bool empty() const { return pushes.empty() && expired.empty() && dead.empty(); }
};

struct InFlight {
    store::Seq seq = 0;
    std::uint32_t deliveries = 0;
    std::int64_t deadline_us = 0;  // UTC µs: redelivered after this
};

class MailboxDelivery {
public:
    MailboxDelivery(store::Store& store, DeliveryOptions options);

    const DeliveryOptions& options() const { return m_options; }

    // The bot has a new push connection: its unsettled messages go out
    // again from the floor on the next pump.
    void restart(const std::string& bot);
    // The bot has no push connection left: nothing of it is in flight.
    void offline(const std::string& bot);
    // A released settlement event (mailbox.acked, message.expired,
    // message.dead_lettered); other events are ignored.
    void on_settled(const store::Event& event);

    // Messages for `bot` not pushed yet, up to `visible` (the newest durable
    // seq), as far as the window allows.
    DeliveryPlan pump(const std::string& bot, store::Seq visible, std::int64_t now_us);
    // Pushes whose ack deadline passed by now_us: redelivered, or given up.
    std::vector<DeliveryPlan> expire(std::int64_t now_us);
    std::optional<std::int64_t> next_deadline() const;

    // For the mailbox op.
    std::vector<InFlight> in_flight(const std::string& bot) const;

private:
    struct BotState {
        store::Seq cursor = 0;  // the newest seq read from the log since the last restart
        std::map<store::Seq, InFlight> in_flight;
        std::unordered_map<store::Seq, std::uint32_t> deliveries;  // of unsettled messages
        std::set<store::Seq> settling;  // expiry or dead letter being logged
    };
    void settle(BotState& state, store::Seq seq);
    // Decides one message read from the log: push, expire or give up.
    void consider(BotState& state, store::MessageRow row, std::int64_t now_us, DeliveryPlan& plan);

    store::Store& m_store;
    DeliveryOptions m_options;
    std::unordered_map<std::string, BotState> m_bots;
};

}  // namespace botbus::bus
