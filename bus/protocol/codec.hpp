// The msgpack codec: one decode and one encode path for every request, reply
// and event, shared by botbusd and the client library. The shapes themselves
// are declared once each: requests (requests.hpp), replies (replies.hpp,
// workflow_replies.hpp), pushes and fetched messages (pushes.hpp), messages
// (messages.hpp) and feed events (feed_events.hpp); this header brings them
// all in, with the request framing (ok, id, op, v) and error replies.
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

#include "bus/protocol/feed_events.hpp"
#include "bus/protocol/messages.hpp"
#include "bus/protocol/pushes.hpp"
#include "bus/protocol/replies.hpp"
#include "bus/protocol/requests.hpp"
#include "bus/protocol/shape.hpp"
#include "bus/protocol/values.hpp"
#include "bus/protocol/vocabulary.hpp"
#include "bus/protocol/workflow_replies.hpp"

namespace botbus::bus {

struct Envelope {
    std::optional<PackedValue> id;  // echoed verbatim in the reply
    Request request;
};

struct DecodeFailure {
    DecodeFailure(WireError error_, std::optional<PackedValue> id_, std::optional<Op> op_ = std::nullopt)
        : error(std::move(error_)), id(std::move(id_)), op(op_) {}

    WireError error;
    std::optional<PackedValue> id;  // when the frame got far enough to have one
    std::optional<Op> op;           // when it named a known op (a field of it was refused)
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
    // Adds every field of a declared shape.
    template <Shape R>
    ReplyBuilder& fields(const R& shape) {
        ShapeWriter writer(m_fields);
        const_cast<R&>(shape).fields(writer);  // fields() only reads through a writer
        m_count += count_fields(shape);
        return *this;
    }

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

// {ok: true, id?, <the reply's fields>}
template <Shape R>
std::string encode_reply(const std::optional<PackedValue>& id, const R& reply) {
    ReplyBuilder builder;
    builder.fields(reply);
    return builder.finish_ok(id);
}

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

// A reply's fields read as a declared shape; nullopt when they do not fit.
template <Shape R>
std::optional<R> decode_reply_as(const Reply& reply) {
    return decode_shape<R>(reply.handle.get());
}

}  // namespace botbus::bus
