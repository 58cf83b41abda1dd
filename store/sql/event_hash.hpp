// The log's hash chain: each event's hash is SHA-256 over the previous
// event's hash and this event's stored fields, so editing, reordering or
// removing a stored event changes every hash from there on and
// `botbusd verify` (log_check.hpp) finds the first broken link. Only a
// commit's last event stores its hash (chain_follower.hpp).
//
// Operation: the fields are framed unambiguously (fixed-width big-endian
// integers, each text and blob preceded by its length, the idempotency key by
// a presence byte) before hashing, so no two different events hash the same
// input. The first chained event's predecessor is k_chain_genesis (all zero).
// Concurrency: any thread; each thread hashes with a digest context of its own.
// Limitations: a chain in the same file as the log is evidence against damage
// and careless edits, not against someone who rewrites every later hash too;
// botbus.seq (seq_record.hpp) and an external copy of a recent hash are the
// anchors for that.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/event.hpp"

namespace botbus::store {

using EventHash = std::array<unsigned char, 32>;
inline constexpr EventHash k_chain_genesis{};

// An event's stored fields as the events table holds them (the type by its
// stored name, which may be one this build does not know).
struct StoredEventFields {
    Seq seq = 0;
    std::int64_t ts_us = 0;
    std::string_view stream;
    Seq stream_seq = 0;
    std::string_view type;
    std::string_view producer;
    std::optional<std::string_view> idem_key;
    std::string_view payload;
};

EventHash chain_hash(const EventHash& previous, const StoredEventFields& event);
EventHash chain_hash(const EventHash& previous, const Event& event);

// Lower-case hex, for messages.
std::string to_hex(const EventHash& hash);

}  // namespace botbus::store
