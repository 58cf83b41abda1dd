// Payload shapes of the messaging event types. These are the log's stored
// format: add fields only as optional, never change a field's meaning.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/event.hpp"

namespace botbus::store {

struct ChannelCreated {
    std::string name;
    std::optional<std::string> description;
    MSGPACK_DEFINE_MAP(name, description)
};

struct ChannelDeleted {
    std::string name;
    MSGPACK_DEFINE_MAP(name)
};

struct SubscriptionChanged {  // subscription.added and subscription.removed
    std::string bot;
    std::string channel;
    MSGPACK_DEFINE_MAP(bot, channel)
};

// message.published (channel set) and message.sent (to set).
struct MessagePayload {
    std::optional<std::string> channel;
    std::optional<std::string> to;
    std::string type;
    msgpack::type::raw_ref body;  // packed msgpack value; bytes owned elsewhere
    std::optional<std::uint64_t> reply_to;
    MSGPACK_DEFINE_MAP(channel, to, type, body, reply_to)
};

// A stored message's fields as views into its payload bytes: the hot path
// (projection, fan-out) reads every message, and copying each field into a
// std::string (as MSGPACK_DEFINE_MAP's conversion does, through a std::map of
// its keys) cost more than the SQLite insert.
struct MessageFields {
    std::optional<std::string_view> channel;
    std::optional<std::string_view> to;
    std::string_view type;
    std::string_view body;  // packed msgpack value
    std::optional<std::uint64_t> reply_to;
};

// Decodes message payloads without copying: the views point into the bytes
// given, and stay valid while they do and until the next decode. Reuses one
// msgpack zone, so steady-state decoding allocates nothing.
class MessageDecoder {
public:
    // Throws std::runtime_error naming the event type when the bytes are not
    // a message payload.
    MessageFields decode(std::string_view type, std::string_view bytes);

private:
    msgpack::zone m_zone;
};

struct MailboxAcked {
    std::uint64_t upto = 0;
    MSGPACK_DEFINE_MAP(upto)
};

template <typename T>
std::string encode_payload(const T& payload) {
    msgpack::sbuffer buffer(512);  // sbuffer grows as needed; its default 8 KiB is mostly waste
    msgpack::pack(buffer, payload);
    return std::string(buffer.data(), buffer.size());
}

// Decodes a stored payload; throws std::runtime_error naming the type when
// the bytes do not match (a damaged or foreign log).
template <typename T>
T decode_payload(std::string_view type, std::string_view bytes, msgpack::object_handle& keep_alive) {
    try {
        keep_alive = msgpack::unpack(bytes.data(), bytes.size());
        return keep_alive.get().as<T>();
    } catch (const std::exception& e) {
        throw std::runtime_error("undecodable payload for event type " + std::string(type) + ": " + e.what());
    }
}

}  // namespace botbus::store
