// The log's vocabulary: an event as stored, an event about to be appended,
// and the names of streams and event types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace botbus::store {

using Seq = std::uint64_t;

// An event as the log holds it. `payload` is a msgpack map whose shape is
// fixed by `type` (see payloads.hpp).
struct Event {
    Seq seq = 0;
    Seq stream_seq = 0;
    std::int64_t ts_us = 0;  // UTC microseconds since the Unix epoch
    std::string stream;
    std::string type;
    std::string producer;
    std::optional<std::string> idem_key;
    std::string payload;
};

// What a caller hands to Batch::append; the log assigns seq, stream_seq, ts.
struct EventDraft {
    std::string stream;
    std::string type;
    std::string producer;
    std::optional<std::string> idem_key;
    std::string payload;
};

// The position an append got, or (duplicate) the position of the event first
// appended under the same producer and idempotency key.
struct Appended {
    std::string stream;  // lets a caller tell a key reused for another stream
    Seq seq = 0;
    Seq stream_seq = 0;
    std::int64_t ts_us = 0;
    bool duplicate = false;
};

namespace event_type {
inline constexpr std::string_view k_channel_created = "channel.created";
inline constexpr std::string_view k_channel_deleted = "channel.deleted";
inline constexpr std::string_view k_subscribed = "subscription.added";
inline constexpr std::string_view k_unsubscribed = "subscription.removed";
inline constexpr std::string_view k_channel_retention_set = "channel.retention_set";
// Retention (stream sys/retention): the oldest messages of a stream, up to a
// seq, were deleted from the log.
inline constexpr std::string_view k_stream_trimmed = "stream.trimmed";
inline constexpr std::string_view k_message_published = "message.published";
inline constexpr std::string_view k_message_sent = "message.sent";
inline constexpr std::string_view k_mailbox_acked = "mailbox.acked";          // stream sys/mailboxes
inline constexpr std::string_view k_message_expired = "message.expired";      // stream sys/mailboxes
inline constexpr std::string_view k_message_dead_lettered = "message.dead_lettered";  // sys/dead_letters
// Durable channel subscriptions (stream sys/consumers).
inline constexpr std::string_view k_consumer_created = "consumer.created";
inline constexpr std::string_view k_consumer_acked = "consumer.acked";
inline constexpr std::string_view k_consumer_deleted = "consumer.deleted";

// Workflow definitions (stream "wf/<workflow_id>").
inline constexpr std::string_view k_workflow_put = "workflow.put";
inline constexpr std::string_view k_workflow_deleted = "workflow.deleted";
inline constexpr std::string_view k_workflow_archived = "workflow.archived";
// Runs and their steps (stream "run/<run_id>").
inline constexpr std::string_view k_run_started = "run.started";
inline constexpr std::string_view k_run_paused = "run.paused";
inline constexpr std::string_view k_run_resumed = "run.resumed";
inline constexpr std::string_view k_run_completed = "run.completed";
inline constexpr std::string_view k_run_failed = "run.failed";
inline constexpr std::string_view k_run_cancel_requested = "run.cancel_requested";
inline constexpr std::string_view k_run_cancelled = "run.cancelled";
inline constexpr std::string_view k_run_context = "run.context";
inline constexpr std::string_view k_run_crashed = "run.crashed";
inline constexpr std::string_view k_step_started = "step.started";
inline constexpr std::string_view k_step_completed = "step.completed";
inline constexpr std::string_view k_step_failed = "step.failed";
inline constexpr std::string_view k_step_skipped = "step.skipped";
inline constexpr std::string_view k_step_waiting_approval = "step.waiting_approval";
inline constexpr std::string_view k_step_approved = "step.approved";
}  // namespace event_type

// Streams group events; each has its own gap-free stream_seq.
namespace stream {
inline constexpr std::string_view k_channels = "sys/channels";    // channel and subscription lifecycle
inline constexpr std::string_view k_mailboxes = "sys/mailboxes";  // mailbox acknowledgements and expiries
inline constexpr std::string_view k_dead_letters = "sys/dead_letters";  // messages given up on
inline constexpr std::string_view k_consumers = "sys/consumers";  // durable channel subscriptions
inline constexpr std::string_view k_retention = "sys/retention";  // trimming of old messages
std::string channel(std::string_view name);                    // "ch/<name>": a channel's messages
std::string mailbox(std::string_view bot);                     // "dm/<bot>": direct messages to a bot
std::string workflow(std::string_view workflow_id);            // "wf/<id>": a workflow definition's lifecycle
std::string run(std::string_view run_id);                      // "run/<id>": a run and its steps
}  // namespace stream

std::int64_t now_us();

}  // namespace botbus::store
