// Event drafts of messages for store tests: a channel message or a direct
// message with a msgpack body, as the handlers would append them.
#pragma once

#include <msgpack.hpp>

#include <optional>
#include <string>

#include "store/event.hpp"
#include "store/payloads.hpp"

namespace botbus::testing {

template <typename T>
store::EventDraft published_draft(const std::string& channel, const T& body_value) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, body_value);
    const std::string body(buffer.data(), buffer.size());
    store::MessagePayload p;
    p.channel = channel;
    p.type = "text";
    p.body = body;
    return {store::stream::channel(channel), store::EventType::message_published, "alice", std::nullopt,
            store::encode_message_payload(p)};
}

template <typename T>
store::EventDraft sent_draft(const std::string& to, const T& body_value) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, body_value);
    const std::string body(buffer.data(), buffer.size());
    store::MessagePayload p;
    p.to = to;
    p.type = "text";
    p.body = body;
    return {store::stream::mailbox(to), store::EventType::message_sent, "alice", std::nullopt,
            store::encode_message_payload(p)};
}

}  // namespace botbus::testing
