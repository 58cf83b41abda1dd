#include "bus/protocol/codec.hpp"

#include <cstring>
#include <utility>

#include "bus/protocol/request_frame.hpp"

namespace botbus::bus {
namespace {

std::string_view type_name(const msgpack::object& value) {
    switch (value.type) {
        case msgpack::type::NIL: return "nil";
        case msgpack::type::BOOLEAN: return "boolean";
        case msgpack::type::POSITIVE_INTEGER:
        case msgpack::type::NEGATIVE_INTEGER: return "integer";
        case msgpack::type::FLOAT32:
        case msgpack::type::FLOAT64: return "float";
        case msgpack::type::STR: return "string";
        case msgpack::type::BIN: return "binary";
        case msgpack::type::ARRAY: return "array";
        case msgpack::type::MAP: return "map";
        case msgpack::type::EXT: return "ext";
    }
    return "unknown";
}

std::string_view as_text(const msgpack::object& value) { return {value.via.str.ptr, value.via.str.size}; }

const msgpack::object* find_key(const msgpack::object_map& map, std::string_view key) {
    for (std::uint32_t i = 0; i < map.size; ++i) {
        const auto& k = map.ptr[i].key;
        if (k.type == msgpack::type::STR && as_text(k) == key) return &map.ptr[i].val;
    }
    return nullptr;
}

// Reads a request's fields out of its map, stopping at the first problem.
// Values (`any`) are taken as the bytes the client sent, never re-packed.
class FieldDecoder {
public:
    explicit FieldDecoder(const RequestFrame& frame) : m_frame(frame) {}

    std::optional<WireError> error;

    void name(const char* key, std::string& out) {
        if (const auto* e = required(key)) read_name(key, e->value, out, false);
    }
    void opt_name(const char* key, std::optional<std::string>& out) {
        if (const auto* e = optional(key)) read_name(key, e->value, out.emplace(), false);
    }
    void name_part(const char* key, std::string& out) {
        if (const auto* e = required(key)) read_name(key, e->value, out, true);
    }
    void text(const char* key, std::string& out) {
        if (const auto* e = required(key); e && expect(key, e->value, msgpack::type::STR, "a string")) {
            out.assign(as_text(e->value));
        }
    }
    void opt_text(const char* key, std::optional<std::string>& out) {
        if (const auto* e = optional(key); e && expect(key, e->value, msgpack::type::STR, "a string")) {
            out.emplace(as_text(e->value));
        }
    }
    void opt_key(const char* key, std::optional<std::string>& out) {
        const auto* e = optional(key);
        if (!e || !expect(key, e->value, msgpack::type::STR, "a string")) return;
        const auto& v = e->value;
        if (v.via.str.size == 0 || v.via.str.size > k_max_idempotency_key_length) {
            fail(Errc::invalid_field, std::string("field '") + key + "' must be 1 to " +
                                          std::to_string(k_max_idempotency_key_length) + " bytes long");
            return;
        }
        out.emplace(as_text(v));
    }
    void u64(const char* key, std::uint64_t& out) {
        if (const auto* e = required(key)) read_u64(key, e->value, out);
    }
    void opt_u64(const char* key, std::optional<std::uint64_t>& out) {
        if (const auto* e = optional(key)) read_u64(key, e->value, out.emplace());
    }
    void opt_u64_list(const char* key, std::optional<std::vector<std::uint64_t>>& out) {
        const auto* e = optional(key);
        if (!e || !expect(key, e->value, msgpack::type::ARRAY, "an array")) return;
        const auto& v = e->value;
        if (v.via.array.size > k_max_ack_seqs) {
            fail(Errc::invalid_field,
                 std::string("field '") + key + "' may hold at most " + std::to_string(k_max_ack_seqs) + " items");
            return;
        }
        auto& list = out.emplace();
        for (std::uint32_t i = 0; i < v.via.array.size; ++i) {
            const auto& item = v.via.array.ptr[i];
            if (item.type != msgpack::type::POSITIVE_INTEGER) {
                fail(Errc::invalid_field, std::string("field '") + key + "' must hold non-negative integers, got " +
                                              std::string(type_name(item)));
                return;
            }
            list.push_back(item.via.u64);
        }
    }
    void opt_flag(const char* key, std::optional<bool>& out) {
        if (const auto* e = optional(key); e && expect(key, e->value, msgpack::type::BOOLEAN, "a boolean")) {
            out = e->value.via.boolean;
        }
    }
    void value(const char* key, PackedValue& out) {
        if (const auto* e = required(key)) out = PackedValue{std::string(e->bytes)};
    }
    void opt_value(const char* key, std::optional<PackedValue>& out) {
        if (const auto* e = optional(key)) out = PackedValue{std::string(e->bytes)};
    }

private:
    const FrameEntry* required(const char* key) {
        if (error) return nullptr;
        const auto* e = m_frame.find(key);
        if (!e) fail(Errc::missing_field, std::string("field '") + key + "' is required");
        return e;
    }
    // Absent and nil both mean "not given".
    const FrameEntry* optional(const char* key) {
        if (error) return nullptr;
        const auto* e = m_frame.find(key);
        return (e && e->value.type != msgpack::type::NIL) ? e : nullptr;
    }
    bool expect(const char* key, const msgpack::object& v, msgpack::type::object_type type, const char* what) {
        if (v.type == type) return true;
        fail(Errc::invalid_field,
             std::string("field '") + key + "' must be " + what + ", got " + std::string(type_name(v)));
        return false;
    }
    // `part`: the name is part of a composite id ("<run_id>:<step_id>:<attempt>"), so it has no ':'.
    void read_name(const char* key, const msgpack::object& v, std::string& out, bool part) {
        if (!expect(key, v, msgpack::type::STR, "a string")) return;
        const auto text = as_text(v);
        if (!is_valid_name(text) || (part && text.find(':') != std::string_view::npos)) {
            fail(Errc::invalid_name, std::string("field '") + key + "' must be 1 to 128 characters of A-Z a-z 0-9 . _ " +
                                         (part ? "- (no ':')" : ": -"));
            return;
        }
        out.assign(text);
    }
    void read_u64(const char* key, const msgpack::object& v, std::uint64_t& out) {
        if (!expect(key, v, msgpack::type::POSITIVE_INTEGER, "a non-negative integer")) return;
        out = v.via.u64;
    }
    void fail(Errc code, std::string message) {
        if (!error) error = WireError{code, std::move(message)};
    }

    const RequestFrame& m_frame;
};

// Writes a request's fields into a map; absent optionals are left out.
class FieldEncoder {
public:
    void name(const char* key, const std::string& value) { put(key, value); }
    void opt_name(const char* key, const std::optional<std::string>& value) { put_opt(key, value); }
    void name_part(const char* key, const std::string& value) { put(key, value); }
    void text(const char* key, const std::string& value) { put(key, value); }
    void opt_text(const char* key, const std::optional<std::string>& value) { put_opt(key, value); }
    void opt_key(const char* key, const std::optional<std::string>& value) { put_opt(key, value); }
    void u64(const char* key, std::uint64_t value) { put(key, value); }
    void opt_u64(const char* key, const std::optional<std::uint64_t>& value) { put_opt(key, value); }
    void opt_u64_list(const char* key, const std::optional<std::vector<std::uint64_t>>& value) { put_opt(key, value); }
    void opt_flag(const char* key, const std::optional<bool>& value) { put_opt(key, value); }
    void value(const char* key, const PackedValue& value) {
        // An empty PackedValue holds no value at all; nil keeps the map whole.
        if (value.bytes.empty()) {
            builder.field(key, msgpack::type::nil_t());
        } else {
            builder.raw_field(key, value.bytes);
        }
    }
    void opt_value(const char* key, const std::optional<PackedValue>& value) {
        if (value && !value->bytes.empty()) builder.raw_field(key, value->bytes);
    }

    ReplyBuilder builder;  // the same "map of fields" writer replies use

private:
    template <typename T>
    void put(const char* key, const T& value) {
        builder.field(key, value);
    }
    template <typename T>
    void put_opt(const char* key, const std::optional<T>& value) {
        if (value) builder.field(key, *value);
    }
};

template <std::size_t... I>
Request make_request_at(std::size_t index, std::index_sequence<I...>) {
    Request request;
    static_cast<void>(((index == I ? (request.template emplace<I>(), true) : false) || ...));
    return request;
}

// The request's id, exactly as sent.
std::optional<PackedValue> read_id(const RequestFrame& frame, std::optional<WireError>& error) {
    const auto* id = frame.find("id");
    if (!id || id->value.type == msgpack::type::NIL) return std::nullopt;
    if (is_valid_id(id->value)) return PackedValue{std::string(id->bytes)};
    error = WireError{Errc::invalid_field, "field 'id' must be an integer or a string of at most 256 bytes"};
    return std::nullopt;
}

}  // namespace

Request make_request(Op op) {
    return make_request_at(static_cast<std::size_t>(op), std::make_index_sequence<std::variant_size_v<Request>>{});
}

namespace {

// A float32 (0xca) or float64 (0xcb): the marker, then the bits big-endian.
void write_float(msgpack::sbuffer& out, char marker, std::uint64_t bits, int bytes) {
    char buf[9];
    buf[0] = marker;
    for (int i = 0; i < bytes; ++i) buf[1 + i] = static_cast<char>((bits >> (8 * (bytes - 1 - i))) & 0xffU);
    out.write(buf, static_cast<std::size_t>(1 + bytes));
}

// Packs like msgpack-c, except that floats stay floats of their width:
// msgpack-c packs an integral float (1.0, -0.0) as an integer.
void pack_keeping_floats(msgpack::sbuffer& out, msgpack::packer<msgpack::sbuffer>& packer,
                         const msgpack::object& value) {
    switch (value.type) {
    case msgpack::type::FLOAT32: {
        const auto f = static_cast<float>(value.via.f64);
        std::uint32_t bits = 0;
        std::memcpy(&bits, &f, sizeof bits);
        write_float(out, '\xca', bits, 4);
        return;
    }
    case msgpack::type::FLOAT64: {
        std::uint64_t bits = 0;
        std::memcpy(&bits, &value.via.f64, sizeof bits);
        write_float(out, '\xcb', bits, 8);
        return;
    }
    case msgpack::type::ARRAY:
        packer.pack_array(value.via.array.size);
        for (std::uint32_t i = 0; i < value.via.array.size; ++i) pack_keeping_floats(out, packer, value.via.array.ptr[i]);
        return;
    case msgpack::type::MAP:
        packer.pack_map(value.via.map.size);
        for (std::uint32_t i = 0; i < value.via.map.size; ++i) {
            pack_keeping_floats(out, packer, value.via.map.ptr[i].key);
            pack_keeping_floats(out, packer, value.via.map.ptr[i].val);
        }
        return;
    default:
        packer.pack(value);
        return;
    }
}

}  // namespace

PackedValue pack_value(const msgpack::object& value) {
    // sbuffer's default first allocation is 8 KiB; most values are far smaller.
    const bool is_raw = value.type == msgpack::type::STR || value.type == msgpack::type::BIN;
    msgpack::sbuffer buffer(is_raw ? value.via.str.size + 8 : 64);
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    pack_keeping_floats(buffer, packer, value);
    return PackedValue{std::string(buffer.data(), buffer.size())};
}

std::variant<Envelope, DecodeFailure> decode_request(std::string_view frame, std::size_t max_frame) {
    if (frame.empty()) return DecodeFailure{{Errc::bad_request, "empty frame"}, std::nullopt};
    // A frame refused whole still answers with its id when one can be read:
    // a client that matches replies by id would wait forever otherwise.
    if (frame.size() > max_frame) {
        return DecodeFailure{{Errc::frame_too_large, "frame of " + std::to_string(frame.size()) +
                                                         " bytes is over the limit of " + std::to_string(max_frame)},
                             salvage_id(frame)};
    }
    auto read = RequestFrame::read(frame);
    if (auto* refused = std::get_if<WireError>(&read)) return DecodeFailure{std::move(*refused), salvage_id(frame)};
    const auto& map = std::get<RequestFrame>(read);
    std::optional<WireError> error;
    auto id = read_id(map, error);
    if (error) return DecodeFailure{*error, std::nullopt};

    if (const auto* version = map.find("v"); version && version->value.type != msgpack::type::NIL) {
        const auto& v = version->value;
        if (v.type != msgpack::type::POSITIVE_INTEGER || v.via.u64 != k_protocol_version) {
            return DecodeFailure{{Errc::unsupported_version, "this daemon speaks protocol version 1"}, id};
        }
    }
    const auto* op_entry = map.find("op");
    if (!op_entry) return DecodeFailure{{Errc::missing_field, "field 'op' is required"}, id};
    const auto* op = &op_entry->value;
    if (op->type != msgpack::type::STR) {
        return DecodeFailure{{Errc::invalid_field, "field 'op' must be a string, got " + std::string(type_name(*op))},
                             id};
    }
    const auto op_value = op_from_name(as_text(*op));
    if (!op_value) {
        return DecodeFailure{{Errc::unknown_op, "unknown op '" + std::string(as_text(*op)).substr(0, 64) + "'"}, id};
    }
    Envelope envelope{std::move(id), make_request(*op_value)};
    FieldDecoder decoder(map);
    std::visit([&decoder](auto& request) { request.fields(decoder); }, envelope.request);
    if (decoder.error) return DecodeFailure{*decoder.error, std::move(envelope.id), *op_value};
    return envelope;
}

std::string encode_request(const Request& request, const std::optional<PackedValue>& id) {
    FieldEncoder encoder;
    encoder.builder.field("op", op_name(op_of(request)));
    std::visit([&encoder](const auto& r) { const_cast<std::decay_t<decltype(r)>&>(r).fields(encoder); }, request);
    return encoder.builder.finish_request(id);
}

msgpack::packer<msgpack::sbuffer>& ReplyBuilder::key(std::string_view key) {
    m_packer.pack(key);
    ++m_count;
    return m_packer;
}

ReplyBuilder& ReplyBuilder::raw_field(std::string_view key, std::string_view packed_value) {
    m_packer.pack(key);
    m_fields.write(packed_value.data(), packed_value.size());
    ++m_count;
    return *this;
}

namespace {

// The map header and the given leading fields, then the builder's fields:
// one copy of the (possibly large) field bytes into the frame.
std::string finish_map(const msgpack::sbuffer& fields, std::uint32_t field_count, std::optional<bool> ok,
                       const std::optional<PackedValue>& id) {
    msgpack::sbuffer head(64 + (id ? id->bytes.size() : 0));
    msgpack::packer<msgpack::sbuffer> packer(head);
    packer.pack_map(field_count + (id ? 1U : 0U) + (ok ? 1U : 0U));
    if (ok) {
        packer.pack("ok");
        packer.pack(*ok);
    }
    if (id) {
        packer.pack("id");
        head.write(id->bytes.data(), id->bytes.size());
    }
    std::string frame;
    frame.reserve(head.size() + fields.size());
    frame.append(head.data(), head.size());
    frame.append(fields.data(), fields.size());
    return frame;
}

}  // namespace

std::string ReplyBuilder::finish_request(const std::optional<PackedValue>& id) const {
    return finish_map(m_fields, m_count, std::nullopt, id);
}

std::string ReplyBuilder::finish_ok(const std::optional<PackedValue>& id) const {
    return finish_map(m_fields, m_count, true, id);
}

void ReplyBuilder::reserve(std::size_t bytes) {
    if (bytes > m_fields.size()) {
        // sbuffer grows by doubling from where it is: start it big enough.
        msgpack::sbuffer bigger(bytes);
        bigger.write(m_fields.data(), m_fields.size());
        m_fields = std::move(bigger);  // m_packer refers to m_fields itself: still valid
    }
}

std::string encode_error_reply(const std::optional<PackedValue>& id, const WireError& error) {
    msgpack::sbuffer out(error.message.size() + 96);
    msgpack::packer<msgpack::sbuffer> packer(out);
    packer.pack_map((id ? 4U : 3U) + (error.retry_after_ms ? 1U : 0U));
    packer.pack("ok");
    packer.pack(false);
    if (id) {
        packer.pack("id");
        out.write(id->bytes.data(), id->bytes.size());
    }
    packer.pack("error");
    packer.pack(errc_name(error.code));
    packer.pack("message");
    packer.pack(error.message);
    if (error.retry_after_ms) {
        packer.pack("retry_after_ms");
        packer.pack(*error.retry_after_ms);
    }
    return std::string(out.data(), out.size());
}

const msgpack::object* Reply::find(std::string_view key) const {
    const auto& root = handle.get();
    if (root.type != msgpack::type::MAP) return nullptr;
    return find_key(root.via.map, key);
}

std::optional<Reply> decode_reply(std::string_view frame) {
    Reply reply;
    try {
        // No container can hold more elements than the frame has bytes: the
        // limits stop a forged header from allocating gigabytes up front.
        // Depth stays unlimited: replies nest message bodies a few levels deep.
        const msgpack::unpack_limit limit(frame.size(), frame.size(), frame.size(), frame.size(), frame.size());
        reply.handle = msgpack::unpack(frame.data(), frame.size(), nullptr, nullptr, limit);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    const auto* ok = reply.find("ok");
    if (!ok || ok->type != msgpack::type::BOOLEAN) return std::nullopt;
    reply.ok = ok->via.boolean;
    if (const auto* id = reply.find("id"); id && id->type == msgpack::type::POSITIVE_INTEGER) reply.id = id->via.u64;
    if (!reply.ok) {
        if (const auto* e = reply.find("error"); e && e->type == msgpack::type::STR) {
            reply.error_name = std::string(as_text(*e));
            reply.error = errc_from_name(reply.error_name).value_or(Errc::internal);
        }
        if (const auto* m = reply.find("message"); m && m->type == msgpack::type::STR) {
            reply.message = std::string(as_text(*m));
        }
    }
    return reply;
}

void pack_message(msgpack::sbuffer& out, const MessageView& message, std::optional<std::string_view> event) {
    if (!event) return pack_shape(out, message);
    auto with_event = message;
    with_event.event = event;
    pack_shape(out, with_event);
}

std::string encode_message_event(const MessageView& message, std::string_view event) {
    msgpack::sbuffer out(message.body.size() + 160);
    pack_message(out, message, event);
    return std::string(out.data(), out.size());
}

std::optional<Message> decode_message(const msgpack::object& map) { return decode_shape<Message>(map); }

}  // namespace botbus::bus
