// The msgpack codec: one decode and one encode path for every request, reply
// and event, shared by botbusd and the client library.
//
// Untrusted input never throws past decode_request: every problem comes back
// as a WireError with its stable code and a message naming the field.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "bus/protocol/requests.hpp"
#include "bus/protocol/values.hpp"
#include "bus/protocol/vocabulary.hpp"

namespace botbus::bus {

struct Envelope {
    std::optional<PackedValue> id;  // echoed verbatim in the reply
    Request request;
};

struct DecodeFailure {
    WireError error;
    std::optional<PackedValue> id;  // when the frame got far enough to have one
};

// Decodes one request frame. Never throws for any input.
std::variant<Envelope, DecodeFailure> decode_request(std::string_view frame, std::size_t max_frame);

// Encodes a request as a client sends it; `id` may be omitted.
std::string encode_request(const Request& request, const std::optional<PackedValue>& id = std::nullopt);

// ---- replies

// Builds a reply map: ok, id (when the request had one), then op fields.
class ReplyBuilder {
public:
    ReplyBuilder() = default;
    // The packer refers to the buffer: a moved builder packs into its own.
    ReplyBuilder(ReplyBuilder&& other) noexcept : m_fields(std::move(other.m_fields)), m_count(other.m_count) {}
    ReplyBuilder& operator=(ReplyBuilder&&) = delete;

    template <typename T>
    ReplyBuilder& field(std::string_view key, const T& value) {
        m_packer.pack(key);
        m_packer.pack(value);
        ++m_count;
        return *this;
    }
    // Adds a key whose value the caller packs next, exactly one value.
    msgpack::packer<msgpack::sbuffer>& key(std::string_view key);
    ReplyBuilder& raw_field(std::string_view key, std::string_view packed_value);
    // The buffer the fields go to, for values packed by other helpers
    // (pack_message) right after key().
    msgpack::sbuffer& buffer() { return m_fields; }

    // Room for about this many bytes of fields, for large replies.
    void reserve(std::size_t bytes);

    std::string finish_ok(const std::optional<PackedValue>& id) const;
    // The fields (and id) alone, as a request map.
    std::string finish_request(const std::optional<PackedValue>& id) const;

private:
    msgpack::sbuffer m_fields{256};  // not sbuffer's default 8 KiB: most replies are tiny
    msgpack::packer<msgpack::sbuffer> m_packer{m_fields};
    std::uint32_t m_count = 0;
};

std::string encode_error_reply(const std::optional<PackedValue>& id, const WireError& error);

// A decoded reply, as the client library sees it.
struct Reply {
    bool ok = false;
    std::optional<std::uint64_t> id;
    Errc error = Errc::internal;
    std::string error_name;  // as sent, kept for codes newer than this build
    std::string message;
    msgpack::object_handle handle;  // the whole reply map

    const msgpack::object* find(std::string_view key) const;
};
std::optional<Reply> decode_reply(std::string_view frame);

// ---- messages, as they appear in history replies, feed events and pushes.

struct MessageView {
    std::uint64_t seq = 0;
    std::uint64_t stream_seq = 0;  // channel seq, or the recipient's mailbox seq
    std::int64_t ts_us = 0;
    std::string_view from;
    std::optional<std::string_view> channel;
    std::optional<std::string_view> to;
    std::string_view type;
    std::string_view body;  // packed msgpack value
    std::optional<std::uint64_t> reply_to;
    std::optional<std::uint64_t> conversation;  // answers only
    std::optional<std::uint64_t> hop;           // answers only
    std::optional<std::int64_t> expires_at;
    std::optional<std::uint64_t> replay_of;
};

// Packs `{seq, ts, from, type, body, channel + channel_seq | to + mailbox_seq,
// reply_to?, conversation?, hop?, expires_at?, replay_of?}`, plus `event`
// when given (feed events carry it).
void pack_message(msgpack::sbuffer& out, const MessageView& message,
                  std::optional<std::string_view> event = std::nullopt);
std::string encode_message_event(const MessageView& message, std::string_view event);

// A message as the client library holds it.
struct Message {
    std::string event;  // set for feed events and pushes
    std::uint64_t seq = 0;
    std::uint64_t stream_seq = 0;
    std::int64_t ts_us = 0;
    std::string from;
    std::optional<std::string> channel;
    std::optional<std::string> to;
    std::string type;
    PackedValue body;
    std::optional<std::uint64_t> reply_to;
    std::uint64_t conversation = 0;  // the seq of the conversation's first message
    std::uint64_t hop = 0;           // answers deep: 0 for a message that answers nothing
    std::optional<std::int64_t> expires_at;
    std::optional<std::uint64_t> replay_of;
    // Pushes of direct messages: how many times the daemon has delivered it
    // (this time included), and whether this is a repeat.
    std::uint32_t deliveries = 0;
    bool redelivered = false;
};
std::optional<Message> decode_message(const msgpack::object& map);

}  // namespace botbus::bus
