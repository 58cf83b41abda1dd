// The log's vocabulary: an event as stored, an event about to be appended,
// the event types and the names of streams.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace botbus::store {

using Seq = std::uint64_t;

enum class EventType : std::uint8_t;

// An event as the log holds it. `payload` is a msgpack map whose shape is
// fixed by `type` (see payloads.hpp).
struct Event {
    Seq seq = 0;
    Seq stream_seq = 0;
    std::int64_t ts_us = 0;  // UTC microseconds since the Unix epoch
    std::string stream;
    EventType type{};
    std::string producer;
    std::optional<std::string> idem_key;
    std::string payload;
};

// What a caller hands to Batch::append; the log assigns seq, stream_seq, ts.
struct EventDraft {
    std::string stream;
    EventType type{};
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

// Every kind of event the log holds. The log and the feed carry the names
// (event_type_name); inside the code an event's type is this enum, mapped
// from its name once, where the store reads or writes it. Dispatch on it with
// a switch without `default` where every type must be decided (the
// projector's and fan-out's top level), so that a new type breaks the
// -Werror build (scripts/build.sh) at each of them.
enum class EventType : std::uint8_t {
    // Channels and memberships (stream sys/channels).
    channel_created,
    channel_deleted,
    subscription_added,
    subscription_removed,
    channel_retention_set,
    // Retention (stream sys/retention): the oldest messages of a stream, up
    // to a seq, were deleted from the log.
    stream_trimmed,
    // Messages (streams ch/<name> and dm/<bot>).
    message_published,
    message_sent,
    mailbox_acked,          // stream sys/mailboxes
    message_expired,        // stream sys/mailboxes
    message_dead_lettered,  // stream sys/dead_letters
    // Durable channel subscriptions (stream sys/consumers).
    consumer_created,
    consumer_acked,
    consumer_deleted,
    // Workflow definitions (stream wf/<workflow_id>).
    workflow_put,
    workflow_deleted,
    workflow_archived,
    // Runs and their steps (stream run/<run_id>).
    run_started,
    run_paused,
    run_resumed,
    run_completed,
    run_failed,
    run_cancel_requested,
    run_cancelled,
    run_context,
    run_crashed,
    step_started,
    step_completed,
    step_failed,
    step_skipped,
    step_waiting_approval,
    step_approved,
    // Permissions (stream sys/acl): a rule granted or revoked.
    acl_granted,
    acl_revoked,
};

// The name the log and the feed use, e.g. "message.published" (a
// NUL-terminated literal); empty for a value that is no EventType.
constexpr std::string_view event_type_name(EventType type) {
    switch (type) {
    case EventType::channel_created: return "channel.created";
    case EventType::channel_deleted: return "channel.deleted";
    case EventType::subscription_added: return "subscription.added";
    case EventType::subscription_removed: return "subscription.removed";
    case EventType::channel_retention_set: return "channel.retention_set";
    case EventType::stream_trimmed: return "stream.trimmed";
    case EventType::message_published: return "message.published";
    case EventType::message_sent: return "message.sent";
    case EventType::mailbox_acked: return "mailbox.acked";
    case EventType::message_expired: return "message.expired";
    case EventType::message_dead_lettered: return "message.dead_lettered";
    case EventType::consumer_created: return "consumer.created";
    case EventType::consumer_acked: return "consumer.acked";
    case EventType::consumer_deleted: return "consumer.deleted";
    case EventType::workflow_put: return "workflow.put";
    case EventType::workflow_deleted: return "workflow.deleted";
    case EventType::workflow_archived: return "workflow.archived";
    case EventType::run_started: return "run.started";
    case EventType::run_paused: return "run.paused";
    case EventType::run_resumed: return "run.resumed";
    case EventType::run_completed: return "run.completed";
    case EventType::run_failed: return "run.failed";
    case EventType::run_cancel_requested: return "run.cancel_requested";
    case EventType::run_cancelled: return "run.cancelled";
    case EventType::run_context: return "run.context";
    case EventType::run_crashed: return "run.crashed";
    case EventType::step_started: return "step.started";
    case EventType::step_completed: return "step.completed";
    case EventType::step_failed: return "step.failed";
    case EventType::step_skipped: return "step.skipped";
    case EventType::step_waiting_approval: return "step.waiting_approval";
    case EventType::step_approved: return "step.approved";
    case EventType::acl_granted: return "acl.granted";
    case EventType::acl_revoked: return "acl.revoked";
    }
    return {};
}
// The type of a name as the log holds it; nullopt for a name this build
// does not know (a log written by a newer botbusd, or damaged).
std::optional<EventType> parse_event_type(std::string_view name);

// Streams group events; each has its own gap-free stream_seq.
namespace stream {
inline constexpr std::string_view k_channels = "sys/channels";    // channel and subscription lifecycle
inline constexpr std::string_view k_mailboxes = "sys/mailboxes";  // mailbox acknowledgements and expiries
inline constexpr std::string_view k_dead_letters = "sys/dead_letters";  // messages given up on
inline constexpr std::string_view k_consumers = "sys/consumers";  // durable channel subscriptions
inline constexpr std::string_view k_retention = "sys/retention";  // trimming of old messages
inline constexpr std::string_view k_acl = "sys/acl";              // permission rules granted and revoked
std::string channel(std::string_view name);                    // "ch/<name>": a channel's messages
std::string mailbox(std::string_view bot);                     // "dm/<bot>": direct messages to a bot
std::string workflow(std::string_view workflow_id);            // "wf/<id>": a workflow definition's lifecycle
std::string run(std::string_view run_id);                      // "run/<id>": a run and its steps
}  // namespace stream

std::int64_t now_us();

}  // namespace botbus::store
