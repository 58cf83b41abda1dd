// Shared by the unit tests of bus::Deliveries for channel readers: a
// :memory: store the tests write channel messages and consumer events into,
// one event per batch as the server's releases would leave them, and small
// helpers that turn plans into comparable seqs and counts. Time is a µs
// value the tests pass in; nothing reads the clock.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bus/core/deliveries.hpp"
#include "store/payloads.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"
#include "message_drafts.hpp"

namespace botbus::testing {

inline constexpr std::int64_t k_t0 = 1'700'000'000'000'000;
inline constexpr std::int64_t k_timeout = 1'000'000;  // 1 s
inline constexpr std::size_t k_wide = 100;              // a window that never fills in these tests

using Seqs = std::vector<store::Seq>;
using Counts = std::vector<std::uint32_t>;
using Flags = std::vector<bool>;

// Bob's durable subscription to the channel most tests read.
inline const bus::Reader k_bob_news{"news", "bob", ""};

inline std::vector<store::Seq> seqs_of(const std::vector<bus::Delivery>& pushes) {
    std::vector<store::Seq> seqs;
    for (const auto& d : pushes) seqs.push_back(d.message.seq);
    return seqs;
}

inline std::vector<std::uint32_t> counts_of(const std::vector<bus::Delivery>& pushes) {
    std::vector<std::uint32_t> counts;
    for (const auto& d : pushes) counts.push_back(d.deliveries);
    return counts;
}

inline std::vector<bool> redelivered_of(const std::vector<bus::Delivery>& pushes) {
    std::vector<bool> flags;
    for (const auto& d : pushes) flags.push_back(d.redelivered);
    return flags;
}

inline std::vector<store::Seq> seqs_of(const std::vector<bus::InFlight>& flights) {
    std::vector<store::Seq> seqs;
    for (const auto& f : flights) seqs.push_back(f.seq);
    return seqs;
}

inline std::vector<store::Seq> seqs_of(const std::vector<bus::DeadMessage>& dead) {
    std::vector<store::Seq> seqs;
    for (const auto& d : dead) seqs.push_back(d.seq);
    return seqs;
}

inline bus::DeliveryOptions delivery_options(std::size_t window = k_wide, std::uint32_t max_deliveries = 3) {
    bus::DeliveryOptions o;
    o.ack_timeout_us = k_timeout;
    o.max_deliveries = max_deliveries;
    o.window = window;
    return o;
}

// Settings as the handler's plan_delivery() makes them for each kind of
// channel subscription.
inline bus::ReaderSettings push_settings(std::size_t window = k_wide) { return {window, false, false, 0}; }
inline bus::ReaderSettings pull_settings(std::size_t window = k_wide) { return {window, true, false, 0}; }
inline bus::ReaderSettings ephemeral_settings(store::Seq start_after, std::size_t window = k_wide) {
    return {window, false, true, start_after};
}

class ChannelDeliveryTest : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};

    // Appends one event in a batch of its own; returns it as logged.
    store::Event append(store::EventDraft draft) {
        auto batch = m_store.begin();
        batch.append(std::move(draft));
        auto events = batch.take_events();
        batch.commit();
        return events.back();
    }

    store::Seq publish(const std::string& channel, const std::string& text, const std::string& from = "alice") {
        return append(published_draft(channel, text, from)).seq;
    }

    std::vector<store::Seq> publish_many(const std::string& channel, int count) {
        std::vector<store::Seq> seqs;
        for (int i = 0; i < count; ++i) seqs.push_back(publish(channel, std::to_string(i)));
        return seqs;
    }

    // A durable subscription: its floor starts at start_after.
    void subscribe_durable(const std::string& bot, const std::string& channel, store::Seq start_after = 0) {
        append({std::string(store::stream::k_consumers), store::EventType::consumer_created, bot,
                std::nullopt, store::encode_payload(store::ConsumerCreated{bot, channel, start_after})});
    }

    void unsubscribe_durable(const std::string& bot, const std::string& channel) {
        append({std::string(store::stream::k_consumers), store::EventType::consumer_deleted, bot,
                std::nullopt, store::encode_payload(store::ConsumerDeleted{bot, channel})});
    }

    // Settlement events, filled in field by field as the server does.
    store::Event consumer_ack(const std::string& bot, const std::string& channel, std::optional<std::uint64_t> upto,
                              std::optional<std::vector<std::uint64_t>> seqs = std::nullopt) {
        return append({std::string(store::stream::k_consumers), store::EventType::consumer_acked, bot,
                       std::nullopt, store::encode_payload(store::ConsumerAcked{bot, channel, upto, std::move(seqs)})});
    }
    store::Event ack_one(const std::string& bot, const std::string& channel, store::Seq seq) {
        return consumer_ack(bot, channel, std::nullopt, std::vector<std::uint64_t>{seq});
    }

    store::Event dead_lettered(const std::string& bot, std::optional<std::string> channel, store::Seq seq,
                               std::uint32_t deliveries) {
        store::MessageDeadLettered p;
        p.bot = bot;
        p.message_seq = seq;
        p.reason = "max_deliveries";
        p.deliveries = deliveries;
        p.channel = std::move(channel);
        return append({std::string(store::stream::k_dead_letters),
                       store::EventType::message_dead_lettered, "botbusd", std::nullopt,
                       store::encode_payload(p)});
    }

    store::Seq visible() { return m_store.last_seq(); }
};

}  // namespace botbus::testing
