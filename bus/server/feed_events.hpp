// The feed events the daemon publishes on its PUB socket, encoded from the
// released store events they show. Byte for byte what docs/PROTOCOL.md
// describes (the golden tests hold them to it), built from the declarations
// in bus/protocol/feed_events.hpp; message events are encoded by
// encode_message_event (bus/protocol/messages.hpp), shared with pushes.
// Concurrency: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "bus/core/delivery_codec.hpp"
#include "store/payloads.hpp"
#include "store/store.hpp"

namespace botbus::bus {

// A released message event as the feed and pushes show it.
MessageView view_of(const store::Event& event, const store::MessagePayload& fields);

// sys/channels/: {event, seq, ts, by, channel[, bot]}; `bot` for subscription changes.
std::string encode_channel_event(const store::Event& event);
// sys/dead_letters/: {event, seq, ts, bot[, channel], message_seq, reason, deliveries}.
std::string encode_dead_letter_event(const store::Event& event, const store::MessageDeadLettered& dead);
// run/<id>/ and wf/<id>/: {event, seq, stream_seq, ts, by, workflow_id, run_id?, data: <payload>};
// no `run_id` for a workflow's own events.
std::string encode_workflow_event(const store::Event& event, std::string_view workflow_id,
                                  std::optional<std::string_view> run_id);
// sync/<token>/: {event: "sync", token}.
std::string encode_sync_event(std::string_view token);

}  // namespace botbus::bus
