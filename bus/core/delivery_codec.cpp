#include "bus/core/delivery_codec.hpp"

namespace botbus::bus {
namespace {

void pack_delivery(msgpack::sbuffer& out, const Delivery& delivery) {
    msgpack::packer<msgpack::sbuffer> p(out);
    p.pack("message");
    pack_message(out, view_of(delivery.message));
    p.pack("deliveries");
    p.pack(delivery.deliveries);
    p.pack("redelivered");
    p.pack(delivery.redelivered);
}

}  // namespace

MessageView view_of(const store::MessageRow& row) {
    MessageView v;
    v.seq = row.seq;
    v.stream_seq = row.stream_seq;
    v.ts_us = row.created_at;
    v.from = row.from;
    if (row.channel) v.channel = *row.channel;
    if (row.to) v.to = *row.to;
    v.type = row.type;
    v.body = row.body;
    v.reply_to = row.reply_to;
    v.conversation = row.conversation;
    v.hop = row.hop;
    v.expires_at = row.expires_at;
    v.replay_of = row.replay_of;
    return v;
}

std::string encode_push(const MessageView& message, std::uint32_t deliveries, bool redelivered) {
    msgpack::sbuffer out(message.body.size() + 224);
    msgpack::packer<msgpack::sbuffer> p(out);
    p.pack_map(4);
    p.pack("push");
    p.pack("message");
    p.pack("message");
    pack_message(out, message);
    p.pack("deliveries");
    p.pack(deliveries);
    p.pack("redelivered");
    p.pack(redelivered);
    return std::string(out.data(), out.size());
}

std::string encode_caught_up(std::string_view channel, store::Seq position) {
    msgpack::sbuffer out(64 + channel.size());
    msgpack::packer<msgpack::sbuffer> p(out);
    p.pack_map(3);
    p.pack("push");
    p.pack("caught_up");
    p.pack("channel");
    p.pack(channel);
    p.pack("seq");
    p.pack(position);
    return std::string(out.data(), out.size());
}

void add_fetched(ReplyBuilder& builder, const DeliveryPlan& plan, bool caught_up) {
    std::size_t bytes = 64;
    for (const auto& d : plan.deliveries) bytes += d.message.body.size() + d.message.from.size() + 160;
    builder.reserve(bytes);
    auto& p = builder.key("messages");
    p.pack_array(static_cast<std::uint32_t>(plan.deliveries.size()));
    for (const auto& delivery : plan.deliveries) {
        p.pack_map(3);
        pack_delivery(builder.buffer(), delivery);
    }
    builder.field("position", plan.position);
    builder.field("caught_up", caught_up);
}

}  // namespace botbus::bus
