#include "store/payloads.hpp"

namespace botbus::store {
namespace {

std::string_view text_of(const msgpack::object& value) { return {value.via.str.ptr, value.via.str.size}; }

// Strings stay in the caller's bytes instead of being copied into the zone.
bool reference_strings(msgpack::type::object_type type, std::size_t, void*) {
    return type == msgpack::type::STR || type == msgpack::type::BIN;
}

}  // namespace

std::string encode_message_payload(const MessagePayload& m) {
    msgpack::sbuffer out(m.body.size() + 96);
    msgpack::packer<msgpack::sbuffer> p(out);
    const auto count = [](const auto&... field) { return static_cast<std::uint32_t>((0 + ... + (field ? 1 : 0))); };
    p.pack_map(2 + count(m.channel, m.to, m.reply_to, m.conversation, m.hop, m.expires_at, m.ttl_ms, m.replay_of,
                         m.replayed_by));
    auto optional = [&p](std::string_view key, const auto& value) {
        if (!value) return;
        p.pack(key);
        p.pack(*value);
    };
    optional("channel", m.channel);
    optional("to", m.to);
    p.pack("type");
    p.pack(m.type);
    // The body is stored as msgpack bin holding the packed value, so reading
    // it back is a view, never a re-encode.
    p.pack("body");
    p.pack_bin(static_cast<std::uint32_t>(m.body.size()));
    p.pack_bin_body(m.body.data(), static_cast<std::uint32_t>(m.body.size()));
    optional("reply_to", m.reply_to);
    optional("conversation", m.conversation);
    optional("hop", m.hop);
    optional("expires_at", m.expires_at);
    optional("ttl_ms", m.ttl_ms);
    optional("replay_of", m.replay_of);
    optional("replayed_by", m.replayed_by);
    return std::string(out.data(), out.size());
}

MessagePayload MessageDecoder::decode(EventType type, std::string_view bytes) {
    auto fail = [type](const std::string& why) -> std::runtime_error {
        return std::runtime_error("undecodable payload for event type " + std::string(event_type_name(type)) + ": " +
                                  why);
    };
    m_zone.clear();
    msgpack::object root;
    try {
        std::size_t offset = 0;
        root = msgpack::unpack(m_zone, bytes.data(), bytes.size(), offset, reference_strings);
    } catch (const std::exception& e) {
        throw fail(e.what());
    }
    if (root.type != msgpack::type::MAP) throw fail("not a map");
    MessagePayload fields;
    bool has_type = false;
    bool has_body = false;
    const auto& map = root.via.map;
    for (std::uint32_t i = 0; i < map.size; ++i) {
        const auto& key = map.ptr[i].key;
        const auto& value = map.ptr[i].val;
        if (key.type != msgpack::type::STR) throw fail("a key is not a string");
        const auto name = text_of(key);
        const bool is_text = value.type == msgpack::type::STR || value.type == msgpack::type::BIN;
        const bool is_nil = value.type == msgpack::type::NIL;
        if (name == "channel" || name == "to" || name == "replayed_by") {
            if (is_nil) continue;
            if (!is_text) throw fail("'" + std::string(name) + "' is not a string");
            (name == "channel" ? fields.channel : name == "to" ? fields.to : fields.replayed_by) = text_of(value);
        } else if (name == "type") {
            if (!is_text) throw fail("'type' is not a string");
            fields.type = text_of(value);
            has_type = true;
        } else if (name == "body") {
            if (!is_text) throw fail("'body' is not raw bytes");
            fields.body = text_of(value);
            has_body = true;
        } else if (name == "reply_to" || name == "conversation" || name == "hop" || name == "replay_of" ||
                   name == "ttl_ms") {
            if (is_nil) continue;
            if (value.type != msgpack::type::POSITIVE_INTEGER) throw fail("'" + std::string(name) + "' is not a uint");
            (name == "reply_to"       ? fields.reply_to
             : name == "conversation" ? fields.conversation
             : name == "hop"          ? fields.hop
             : name == "ttl_ms"       ? fields.ttl_ms
                                      : fields.replay_of) = value.via.u64;
        } else if (name == "expires_at") {
            if (is_nil) continue;
            if (value.type == msgpack::type::POSITIVE_INTEGER) {
                fields.expires_at = static_cast<std::int64_t>(value.via.u64);
            } else if (value.type == msgpack::type::NEGATIVE_INTEGER) {
                fields.expires_at = value.via.i64;
            } else {
                throw fail("'expires_at' is not a time");
            }
        }
        // Other keys: fields added by a newer botbusd; this one ignores them.
    }
    if (!has_type || !has_body) throw fail("'type' or 'body' is missing");
    return fields;
}

}  // namespace botbus::store
