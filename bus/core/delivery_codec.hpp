// How deliveries look on the wire: pushes of messages (direct messages and
// subscriptions), the caught_up marker, and the message lists of fetch
// replies. Shared by the handler (fetch) and the server (pushes, parked
// fetches).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bus/protocol/codec.hpp"
#include "bus/core/deliveries.hpp"
#include "store/message_queries.hpp"

namespace botbus::bus {

// A stored message as the wire shows it.
MessageView view_of(const store::MessageRow& row);

// {push: "message", message: <message map>, deliveries, redelivered}
std::string encode_push(const MessageView& message, std::uint32_t deliveries, bool redelivered);
// {push: "caught_up", channel, seq}: every message up to seq was delivered
// (or settled) before this; what follows is live.
std::string encode_caught_up(std::string_view channel, store::Seq position);
// Adds `messages: [{message, deliveries, redelivered}]`, `position` and
// `caught_up` to a fetch reply.
void add_fetched(ReplyBuilder& builder, const DeliveryPlan& plan, bool caught_up);

}  // namespace botbus::bus
