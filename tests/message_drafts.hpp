// Event drafts of messages for store and delivery tests: a channel message
// or a direct message with a msgpack body, as the handlers would append them.
#pragma once

#include <msgpack.hpp>

#include <optional>
#include <string>

#include "store/event.hpp"
#include "store/payloads.hpp"

namespace botbus::testing {

template <typename T>
std::string packed_value(const T& value) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, value);
    return std::string(buffer.data(), buffer.size());
}

// `payload` names the channel or the recipient; its type and body are set here.
inline store::EventDraft message_draft(store::MessagePayload payload, std::string body, const std::string& from) {
    payload.type = "text";
    payload.body = body;
    const bool published = payload.channel.has_value();
    return {published ? store::stream::channel(*payload.channel) : store::stream::mailbox(*payload.to),
            published ? store::EventType::message_published : store::EventType::message_sent, from, std::nullopt,
            store::encode_message_payload(payload)};
}

template <typename T>
store::EventDraft published_draft(const std::string& channel, const T& body, const std::string& from = "alice") {
    store::MessagePayload payload;
    payload.channel = channel;
    return message_draft(std::move(payload), packed_value(body), from);
}

template <typename T>
store::EventDraft sent_draft(const std::string& to, const T& body, const std::string& from = "alice") {
    store::MessagePayload payload;
    payload.to = to;
    return message_draft(std::move(payload), packed_value(body), from);
}

}  // namespace botbus::testing
