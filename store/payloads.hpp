// Payload shapes of the messaging event types. These are the log's stored
// format: add fields only as optional, never change a field's meaning.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// channel.retention_set: the channel's own limits; an absent one falls back
// to the daemon's default, 0 means no limit of that kind.
struct ChannelRetentionSet {
    std::string name;
    std::optional<std::uint64_t> max_age_ms;
    std::optional<std::uint64_t> max_messages;
    MSGPACK_DEFINE_MAP(name, max_age_ms, max_messages)
};

// acl.granted and acl.revoked: one permission rule (bus/core/acl.hpp).
// `bot` and `channel` are patterns: a name, a prefix ending in '*', or '*';
// `permission` is "publish", "read" or "admin".
struct AclRule {
    std::string bot;
    std::string permission;
    std::string channel;
    MSGPACK_DEFINE_MAP(bot, permission, channel)
    auto operator<=>(const AclRule&) const = default;
};

// stream.trimmed: every message of `stream` with seq <= through_seq is gone
// from the log (`count` of them in this step).
struct StreamTrimmed {
    std::string stream;
    std::uint64_t through_seq = 0;
    std::uint64_t count = 0;
    MSGPACK_DEFINE_MAP(stream, through_seq, count)
};

// message.published (channel set) and message.sent (to set): the one shape
// of a message's payload, as views. Decoded, they point into the stored
// bytes: the hot path (projection, fan-out) reads every message, and copying
// each field into a std::string (as MSGPACK_DEFINE_MAP's conversion does,
// through a std::map of its keys) cost more than the SQLite insert. Encoded
// (encode_message_payload, which leaves absent fields out), they point into
// the caller's strings, which must outlive the call.
struct MessagePayload {
    std::optional<std::string_view> channel;
    std::optional<std::string_view> to;
    std::string_view type;
    std::string_view body;  // packed msgpack value
    std::optional<std::uint64_t> reply_to;
    // Set on answers (reply_to): the seq of the conversation's first message
    // and how many answers deep this one is. A message that answers nothing
    // starts a conversation: its own seq, hop 0.
    std::optional<std::uint64_t> conversation;
    std::optional<std::uint64_t> hop;
    // Not delivered after the event's own ts + ttl_ms (send with ttl_ms):
    // relative, so that the expiry is exactly ts + ttl, which the handler
    // cannot know before the append stamps ts. Logs written before ttl_ms
    // carry the absolute expires_at instead (UTC µs); expiry() reads both.
    std::optional<std::int64_t> expires_at;
    std::optional<std::uint64_t> ttl_ms;
    std::optional<std::uint64_t> replay_of;     // a dead letter's copy: the seq of the original
    std::optional<std::string_view> replayed_by;  // and the bot that replayed it

    // When the message expires (UTC µs), given its event's ts; nothing when it does not.
    std::optional<std::int64_t> expiry(std::int64_t ts_us) const {
        if (ttl_ms) return ts_us + static_cast<std::int64_t>(*ttl_ms) * 1000;
        return expires_at;
    }
};
std::string encode_message_payload(const MessagePayload& payload);

// Decodes message payloads without copying: the views point into the bytes
// given, and stay valid while they do and until the next decode. Reuses one
// msgpack zone, so steady-state decoding allocates nothing.
class MessageDecoder {
public:
    // Throws std::runtime_error naming the event type when the bytes are not
    // a message payload.
    MessagePayload decode(EventType type, std::string_view bytes);

private:
    msgpack::zone m_zone;
};

// mailbox.acked: the producer's mailbox is settled up to and including
// `upto`, and at each of `seqs`.
struct MailboxAcked {
    std::optional<std::uint64_t> upto;
    std::optional<std::vector<std::uint64_t>> seqs;
    MSGPACK_DEFINE_MAP(upto, seqs)
};

// message.expired: direct messages to `bot` whose time to live ran out
// before they were acknowledged.
struct MessagesExpired {
    std::string bot;
    std::vector<std::uint64_t> seqs;
    MSGPACK_DEFINE_MAP(bot, seqs)
};

// message.dead_lettered: a message `bot` was given too often without
// acknowledging it: a direct message, or (channel set) a message of its
// durable subscription to that channel.
struct MessageDeadLettered {
    std::string bot;
    std::uint64_t message_seq = 0;
    std::string reason;
    std::uint32_t deliveries = 0;
    std::optional<std::string> channel;
    MSGPACK_DEFINE_MAP(bot, message_seq, reason, deliveries, channel)
};

// consumer.created: `bot` keeps a cursor on `channel`; messages with seq >
// start_after are its to receive.
struct ConsumerCreated {
    std::string bot;
    std::string channel;
    std::uint64_t start_after = 0;
    MSGPACK_DEFINE_MAP(bot, channel, start_after)
};

// consumer.acked: as mailbox.acked, for a durable subscription.
struct ConsumerAcked {
    std::string bot;
    std::string channel;
    std::optional<std::uint64_t> upto;
    std::optional<std::vector<std::uint64_t>> seqs;
    MSGPACK_DEFINE_MAP(bot, channel, upto, seqs)
};

struct ConsumerDeleted {
    std::string bot;
    std::string channel;
    MSGPACK_DEFINE_MAP(bot, channel)
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
T decode_payload(EventType type, std::string_view bytes, msgpack::object_handle& keep_alive) {
    try {
        keep_alive = msgpack::unpack(bytes.data(), bytes.size());
        return keep_alive.get().as<T>();
    } catch (const std::exception& e) {
        throw std::runtime_error("undecodable payload for event type " + std::string(event_type_name(type)) + ": " +
                                 e.what());
    }
}

}  // namespace botbus::store
