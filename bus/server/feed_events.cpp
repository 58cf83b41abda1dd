#include "bus/server/feed_events.hpp"

#include <msgpack.hpp>

#include "bus/protocol/feed_events.hpp"

namespace botbus::bus {

std::string encode_channel_event(const store::Event& event) {
    msgpack::object_handle keep_alive;
    ChannelEvent shown{std::string(store::event_type_name(event.type)), event.seq, event.ts_us, event.producer, {}, {}};
    // FanOut hands over the five channel event types only.
    if (event.type == store::EventType::subscription_added || event.type == store::EventType::subscription_removed) {
        auto payload = store::decode_payload<store::SubscriptionChanged>(event.type, event.payload, keep_alive);
        shown.channel = std::move(payload.channel);
        shown.bot = std::move(payload.bot);
    } else if (event.type == store::EventType::channel_created) {
        shown.channel = store::decode_payload<store::ChannelCreated>(event.type, event.payload, keep_alive).name;
    } else if (event.type == store::EventType::channel_retention_set) {
        shown.channel = store::decode_payload<store::ChannelRetentionSet>(event.type, event.payload, keep_alive).name;
    } else {
        shown.channel = store::decode_payload<store::ChannelDeleted>(event.type, event.payload, keep_alive).name;
    }
    return encode_feed_event(shown);
}

MessageView view_of(const store::Event& event, const store::MessagePayload& fields) {
    return message_view(event.seq, event.stream_seq, event.ts_us, event.producer, fields);
}

std::string encode_dead_letter_event(const store::Event& event, const store::MessageDeadLettered& dead) {
    return encode_feed_event(DeadLetterEvent{std::string(store::event_type_name(event.type)), event.seq, event.ts_us,
                                             dead.bot, dead.channel, dead.message_seq, dead.reason, dead.deliveries});
}

std::string encode_workflow_event(const store::Event& event, std::string_view workflow_id,
                                  std::optional<std::string_view> run_id) {
    // The payload is msgpack already: it goes out as it is, not decoded again.
    return encode_feed_event(WorkflowEvent{std::string(store::event_type_name(event.type)), event.seq,
                                           event.stream_seq, event.ts_us, event.producer, std::string(workflow_id),
                                           run_id ? std::optional<std::string>(*run_id) : std::nullopt,
                                           PackedValue{event.payload}});
}

std::string encode_sync_event(std::string_view token) { return encode_feed_event(SyncMarker{std::string(token)}); }

}  // namespace botbus::bus
