#include "bus/server/feed_events.hpp"

#include <msgpack.hpp>

namespace botbus::bus {

std::string encode_channel_event(const store::Event& event) {
    msgpack::object_handle keep_alive;
    msgpack::sbuffer out;
    msgpack::packer<msgpack::sbuffer> p(out);
    const bool is_subscription =
        event.type == store::EventType::subscription_added || event.type == store::EventType::subscription_removed;
    p.pack_map(is_subscription ? 6 : 5);
    p.pack("event");
    p.pack(store::event_type_name(event.type));
    p.pack("seq");
    p.pack(event.seq);
    p.pack("ts");
    p.pack(event.ts_us);
    p.pack("by");
    p.pack(event.producer);
    if (is_subscription) {
        const auto payload = store::decode_payload<store::SubscriptionChanged>(event.type, event.payload, keep_alive);
        p.pack("channel");
        p.pack(payload.channel);
        p.pack("bot");
        p.pack(payload.bot);
    } else if (event.type == store::EventType::channel_created) {
        const auto payload = store::decode_payload<store::ChannelCreated>(event.type, event.payload, keep_alive);
        p.pack("channel");
        p.pack(payload.name);
    } else if (event.type == store::EventType::channel_retention_set) {
        const auto payload = store::decode_payload<store::ChannelRetentionSet>(event.type, event.payload, keep_alive);
        p.pack("channel");
        p.pack(payload.name);
    } else {
        const auto payload = store::decode_payload<store::ChannelDeleted>(event.type, event.payload, keep_alive);
        p.pack("channel");
        p.pack(payload.name);
    }
    return std::string(out.data(), out.size());
}

MessageView view_of(const store::Event& event, const store::MessageFields& fields) {
    MessageView v;
    v.seq = event.seq;
    v.stream_seq = event.stream_seq;
    v.ts_us = event.ts_us;
    v.from = event.producer;
    v.channel = fields.channel;
    v.to = fields.to;
    v.type = fields.type;
    v.body = fields.body;
    v.reply_to = fields.reply_to;
    v.conversation = fields.conversation;
    v.hop = fields.hop;
    v.expires_at = fields.expires_at;
    v.replay_of = fields.replay_of;
    return v;
}

std::string encode_dead_letter_event(const store::Event& event, const store::MessageDeadLettered& dead) {
    msgpack::sbuffer out;
    msgpack::packer<msgpack::sbuffer> p(out);
    p.pack_map(dead.channel ? 8 : 7);
    p.pack("event");
    p.pack(store::event_type_name(event.type));
    p.pack("seq");
    p.pack(event.seq);
    p.pack("ts");
    p.pack(event.ts_us);
    p.pack("bot");
    p.pack(dead.bot);
    if (dead.channel) {
        p.pack("channel");
        p.pack(*dead.channel);
    }
    p.pack("message_seq");
    p.pack(dead.message_seq);
    p.pack("reason");
    p.pack(dead.reason);
    p.pack("deliveries");
    p.pack(dead.deliveries);
    return std::string(out.data(), out.size());
}

std::string encode_workflow_event(const store::Event& event, std::string_view workflow_id,
                                  std::optional<std::string_view> run_id) {
    const bool is_run = run_id.has_value();
    msgpack::sbuffer out(event.payload.size() + 160);
    msgpack::packer<msgpack::sbuffer> p(out);
    p.pack_map(is_run ? 8 : 7);
    p.pack("event");
    p.pack(store::event_type_name(event.type));
    p.pack("seq");
    p.pack(event.seq);
    p.pack("stream_seq");
    p.pack(event.stream_seq);
    p.pack("ts");
    p.pack(event.ts_us);
    p.pack("by");
    p.pack(event.producer);
    p.pack("workflow_id");
    p.pack(workflow_id);
    if (is_run) {
        p.pack("run_id");
        p.pack(*run_id);
    }
    p.pack("data");
    // The payload is msgpack already: written as it is, not decoded again.
    out.write(event.payload.data(), event.payload.size());
    return std::string(out.data(), out.size());
}

std::string encode_sync_event(std::string_view token) {
    msgpack::sbuffer out;
    msgpack::packer<msgpack::sbuffer> p(out);
    p.pack_map(2);
    p.pack("event");
    p.pack("sync");
    p.pack("token");
    p.pack(token);
    return std::string(out.data(), out.size());
}

}  // namespace botbus::bus
