// How deliveries look on the wire, on top of the protocol's declarations
// (bus/protocol/pushes.hpp, messages.hpp): pushes of messages (direct
// messages and subscriptions), the caught_up marker, and the message lists
// of fetch replies. Shared by the handler (fetch) and the server (pushes,
// parked fetches).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bus/protocol/codec.hpp"
#include "bus/core/deliveries.hpp"
#include "store/message_queries.hpp"

namespace botbus::bus {

// A stored message as the wire shows it, from its position and its fields:
// a store::MessagePayload (views into a released event) or a
// store::MessageRow (a row read from the log). The view points into them.
template <typename Fields>
MessageView message_view(std::uint64_t seq, std::uint64_t stream_seq, std::int64_t ts_us, std::string_view from,
                         const Fields& fields) {
    MessageView v;
    v.seq = seq;
    v.stream_seq = stream_seq;
    v.ts_us = ts_us;
    v.from = from;
    if (fields.channel) v.channel = *fields.channel;
    if (fields.to) v.to = *fields.to;
    v.type = fields.type;
    v.body = fields.body;
    v.reply_to = fields.reply_to;
    v.conversation = fields.conversation;
    v.hop = fields.hop;
    if constexpr (requires { fields.expiry(ts_us); }) {
        v.expires_at = fields.expiry(ts_us);  // a payload: relative to its event's ts
    } else {
        v.expires_at = fields.expires_at;
    }
    v.replay_of = fields.replay_of;
    return v;
}
inline MessageView view_of(const store::MessageRow& row) {
    return message_view(row.seq, row.stream_seq, row.created_at, row.from, row);
}
std::vector<MessageView> views_of(const std::vector<store::MessageRow>& rows);

// {push: "message", message: <message map>, deliveries, redelivered}
std::string encode_push(const MessageView& message, std::uint32_t deliveries, bool redelivered);
// {push: "caught_up", channel, seq}: the history ends at seq. Every message
// up to seq was delivered (or settled) before this, unless the credit ran
// out inside the history: then the rest of it follows as acks make room.
std::string encode_caught_up(std::string_view channel, store::Seq position);

// The fetch reply of a plan; its views point into the plan.
FetchReply fetch_reply_of(const DeliveryPlan& plan, bool caught_up);
// Adds `messages: [{message, deliveries, redelivered}]`, `position` and
// `caught_up` to a fetch reply.
void add_fetched(ReplyBuilder& builder, const DeliveryPlan& plan, bool caught_up);

// A fetch reply that keeps the plan its messages point into (a handler's
// result outlives the handler's locals).
struct FetchedPlan {
    DeliveryPlan plan;
    bool caught_up = false;
    template <typename F> void fields(F& f) {
        auto reply = fetch_reply_of(plan, caught_up);
        reply.fields(f);
    }
    std::size_t size_hint() const {
        std::size_t bytes = 64;
        for (const auto& d : plan.deliveries) bytes += d.message.body.size() + d.message.from.size() + 160;
        return bytes;
    }
};

}  // namespace botbus::bus
