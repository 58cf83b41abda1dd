#include "bus/core/delivery_codec.hpp"

namespace botbus::bus {

std::vector<MessageView> views_of(const std::vector<store::MessageRow>& rows) {
    std::vector<MessageView> views;
    views.reserve(rows.size());
    for (const auto& row : rows) views.push_back(view_of(row));
    return views;
}

std::string encode_push(const MessageView& message, std::uint32_t deliveries, bool redelivered) {
    return encode_shape(MessagePush{message, deliveries, redelivered}, message.body.size() + 224);
}

std::string encode_caught_up(std::string_view channel, store::Seq position) {
    return encode_shape(CaughtUpPush{std::string(channel), position}, 64 + channel.size());
}

FetchReply fetch_reply_of(const DeliveryPlan& plan, bool caught_up) {
    FetchReply reply;
    reply.messages.reserve(plan.deliveries.size());
    for (const auto& d : plan.deliveries) reply.messages.push_back({view_of(d.message), d.deliveries, d.redelivered});
    reply.position = plan.position;
    reply.caught_up = caught_up;
    return reply;
}

void add_fetched(ReplyBuilder& builder, const DeliveryPlan& plan, bool caught_up) {
    std::size_t bytes = 64;
    for (const auto& d : plan.deliveries) bytes += d.message.body.size() + d.message.from.size() + 160;
    builder.reserve(bytes);
    builder.fields(fetch_reply_of(plan, caught_up));
}

}  // namespace botbus::bus
