// The botbus wire vocabulary: error codes, names and topics (ops are
// declared by their request types, requests.hpp). The codec
// (codec.hpp) turns frames into these types and back; docs/PROTOCOL.md is
// the same contract written for people.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace botbus::bus {

inline constexpr std::uint64_t k_protocol_version = 1;
inline constexpr std::size_t k_default_max_frame = 1024 * 1024;
inline constexpr std::size_t k_max_name_length = 128;
inline constexpr std::size_t k_max_idempotency_key_length = 256;
inline constexpr std::size_t k_max_history_limit = 1000;
inline constexpr std::size_t k_default_history_limit = 100;
inline constexpr std::int64_t k_default_lease_us = 30'000'000;  // a run's lease without heartbeats
inline constexpr std::string_view k_daemon_producer = "botbusd";  // producer of events the daemon appends itself
inline constexpr std::uint64_t k_default_max_hops = 5;            // answers deep in one conversation
inline constexpr std::int64_t k_default_ack_timeout_us = 30'000'000;  // a pushed message waits this long for its ack
inline constexpr std::uint32_t k_default_max_deliveries = 10;     // then it is dead-lettered
inline constexpr std::size_t k_max_ack_seqs = 1000;               // seqs in one ack
inline constexpr std::uint64_t k_max_fetch_wait_ms = 60'000;       // longest a fetch may wait for messages
inline constexpr std::uint64_t k_max_credit = 100'000;             // a connection's unacknowledged pushes

// Stable error codes; their strings are part of the protocol.
enum class Errc {
    bad_request,          // not msgpack, not a map, empty or multi-part body
    frame_too_large,      // body over the configured frame limit
    unsupported_version,  // "v" is not a version this daemon speaks
    unknown_op,
    missing_field,
    invalid_field,        // wrong type or out-of-range value
    invalid_name,         // a channel, bot or type name breaks the naming rule
    not_identified,       // the op needs a bot identity: send hello first
    not_found,
    conflict,
    storage_error,        // the batch could not be committed; nothing was applied
    shutting_down,
    internal,
    invalid_definition,   // workflow.put: the definition document breaks a rule (the message says which)
    has_runs,             // workflow.delete of a workflow that has runs, without archive
    invalid_transition,   // the run or step is not in a state that allows the op (the message names it)
    not_lease_owner,      // run.heartbeat from a bot that does not hold the run's lease
    depth_exceeded,       // an answer deeper in its conversation than the daemon's hop limit
    rate_limited,         // the sender is over its rate for this channel or recipient; retry_after_ms says when
    forbidden,            // the bot may not do this (the message names the missing permission); nothing was applied
    limit_reached,        // a per-bot or per-connection limit is reached (the message names it); nothing was applied
};

std::string_view errc_name(Errc code);
std::optional<Errc> errc_from_name(std::string_view name);

// Channel, bot and message-type names: 1..128 of [A-Za-z0-9._:-]. The
// excluded '/' is what makes feed topics prefix-free.
bool is_valid_name(std::string_view name);

// Feed topics. Each ends in '/', and names cannot contain '/', so no topic is
// a prefix of another: subscribing to channel "a" never delivers "ab".
std::string channel_topic(std::string_view channel);  // "ch/<channel>/"
std::string sync_topic(std::string_view token);       // "sync/<token>/"
inline constexpr std::string_view k_channels_topic = "sys/channels/";
inline constexpr std::string_view k_dead_letters_topic = "sys/dead_letters/";
std::string workflow_topic(std::string_view workflow_id);  // "wf/<workflow_id>/"
std::string run_topic(std::string_view run_id);            // "run/<run_id>/"

}  // namespace botbus::bus
