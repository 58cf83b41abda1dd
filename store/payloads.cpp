#include "store/payloads.hpp"

namespace botbus::store {
namespace {

std::string_view text_of(const msgpack::object& value) { return {value.via.str.ptr, value.via.str.size}; }

// Strings stay in the caller's bytes instead of being copied into the zone.
bool reference_strings(msgpack::type::object_type type, std::size_t, void*) {
    return type == msgpack::type::STR || type == msgpack::type::BIN;
}

}  // namespace

MessageFields MessageDecoder::decode(std::string_view type, std::string_view bytes) {
    auto fail = [type](const std::string& why) -> std::runtime_error {
        return std::runtime_error("undecodable payload for event type " + std::string(type) + ": " + why);
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
    MessageFields fields;
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
        if (name == "channel" || name == "to") {
            if (is_nil) continue;
            if (!is_text) throw fail("'" + std::string(name) + "' is not a string");
            (name == "channel" ? fields.channel : fields.to) = text_of(value);
        } else if (name == "type") {
            if (!is_text) throw fail("'type' is not a string");
            fields.type = text_of(value);
            has_type = true;
        } else if (name == "body") {
            if (!is_text) throw fail("'body' is not raw bytes");
            fields.body = text_of(value);
            has_body = true;
        } else if (name == "reply_to") {
            if (is_nil) continue;
            if (value.type != msgpack::type::POSITIVE_INTEGER) throw fail("'reply_to' is not a seq");
            fields.reply_to = value.via.u64;
        }
        // Other keys: fields added by a newer botbusd; this one ignores them.
    }
    if (!has_type || !has_body) throw fail("'type' or 'body' is missing");
    return fields;
}

}  // namespace botbus::store
