#include "bus/protocol/request_frame.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

namespace botbus::bus {
namespace {

constexpr std::uint32_t k_max_id_length = 256;

bool reference_raw(msgpack::type::object_type type, std::size_t, void*) {
    return type == msgpack::type::STR || type == msgpack::type::BIN;
}

// Stops at the frame's first value: a map's header (its size), or names
// the type of whatever else the frame starts with.
struct RootVisitor : msgpack::null_visitor {
    std::optional<std::uint32_t> map_size;
    std::string_view other;

    bool start_map(std::uint32_t size) {
        map_size = size;
        return false;
    }
    bool start_array(std::uint32_t) { return is("array"); }
    bool visit_nil() { return is("nil"); }
    bool visit_boolean(bool) { return is("boolean"); }
    bool visit_positive_integer(std::uint64_t) { return is("integer"); }
    bool visit_negative_integer(std::int64_t) { return is("integer"); }
    bool visit_float32(float) { return is("float"); }
    bool visit_float64(double) { return is("float"); }
    bool visit_str(const char*, std::uint32_t) { return is("string"); }
    bool visit_bin(const char*, std::uint32_t) { return is("binary"); }
    bool visit_ext(const char*, std::uint32_t) { return is("ext"); }

private:
    bool is(std::string_view type) {
        other = type;
        return false;
    }
};

PackedValue packed_text(const char* text, std::uint32_t size) {
    msgpack::sbuffer buffer(size + 8);
    msgpack::packer<msgpack::sbuffer> packer(buffer);
    packer.pack_str(size);
    packer.pack_str_body(text, size);
    return PackedValue{std::string(buffer.data(), buffer.size())};
}

// Walks a frame until it finds the root map's `id` value, tracking only how
// deep it is and whether it stands at a key or a value of the root map.
class IdSalvager : public msgpack::null_visitor {
public:
    std::optional<PackedValue> id;

    bool visit_nil() { return other_scalar(); }
    bool visit_boolean(bool) { return other_scalar(); }
    bool visit_positive_integer(std::uint64_t v) { return candidate([v] { return pack_as_value(v); }); }
    bool visit_negative_integer(std::int64_t v) { return candidate([v] { return pack_as_value(v); }); }
    bool visit_float32(float) { return other_scalar(); }
    bool visit_float64(double) { return other_scalar(); }
    bool visit_bin(const char*, std::uint32_t) { return other_scalar(); }
    bool visit_ext(const char*, std::uint32_t) { return other_scalar(); }
    bool visit_str(const char* text, std::uint32_t size) {
        if (m_depth == 1 && m_at_key) {
            m_key_is_id = std::string_view(text, size) == "id";
            return true;
        }
        if (size > k_max_id_length) return other_scalar();
        return candidate([text, size] { return packed_text(text, size); });
    }
    bool start_array(std::uint32_t) { return enter(false); }
    bool end_array() { return leave(); }
    bool start_map(std::uint32_t) { return enter(true); }
    bool end_map() { return leave(); }
    bool start_map_key() {
        if (m_depth == 1) {
            m_at_key = true;
            m_key_is_id = false;
        }
        return true;
    }
    bool end_map_key() {
        if (m_depth == 1) m_at_key = false;
        return true;
    }
    bool start_map_value() {
        if (m_depth == 1) m_at_value = true;
        return true;
    }
    bool end_map_value() {
        if (m_depth == 1) m_at_value = false;
        return true;
    }

private:
    bool at_id_value() const { return m_depth == 1 && m_at_value && m_key_is_id; }
    // A value that is not an id: at the id's place, there is no id to read.
    bool other_scalar() const { return !at_id_value() && m_depth > 0; }
    template <typename Make>
    bool candidate(Make make) {
        if (!at_id_value()) return m_depth > 0;
        id = make();
        return false;  // found: stop reading
    }
    bool enter(bool is_map) {
        if (m_depth == 0 && !is_map) return false;  // not a map: no id
        if (at_id_value()) return false;
        ++m_depth;
        return true;
    }
    bool leave() {
        --m_depth;
        return m_depth > 0;
    }

    std::size_t m_depth = 0;
    bool m_at_key = false;
    bool m_at_value = false;
    bool m_key_is_id = false;
};

}  // namespace

bool is_valid_id(const msgpack::object& id) {
    return id.type == msgpack::type::POSITIVE_INTEGER || id.type == msgpack::type::NEGATIVE_INTEGER ||
           (id.type == msgpack::type::STR && id.via.str.size <= k_max_id_length);
}

std::variant<RequestFrame, WireError> RequestFrame::read(std::string_view frame) {
    RootVisitor root;
    std::size_t offset = 0;
    msgpack::parse(frame.data(), frame.size(), offset, root);
    if (!root.map_size) {
        if (root.other.empty()) return WireError{Errc::bad_request, "malformed msgpack"};
        return WireError{Errc::bad_request, "request must be a msgpack map, got " + std::string(root.other)};
    }
    // The parser does not report where a visitor stopped it; a map's header
    // is 1 byte (fixmap), or 3 or 5 (map 16, map 32: 0xde, 0xdf).
    const auto first = static_cast<unsigned char>(frame.front());
    offset = first == 0xde ? 3 : first == 0xdf ? 5 : 1;
    RequestFrame out;
    // No container can hold more elements than the frame has bytes: the
    // limits stop a forged header from allocating gigabytes up front.
    const msgpack::unpack_limit limit(frame.size(), frame.size(), frame.size(), frame.size(), frame.size(),
                                      k_max_value_depth);
    out.m_entries.reserve(std::min<std::size_t>(*root.map_size, frame.size() / 2));  // 2 bytes an entry at least
    try {
        for (std::uint32_t i = 0; i < *root.map_size; ++i) {
            FrameEntry entry;
            entry.key = msgpack::unpack(*out.m_zone, frame.data(), frame.size(), offset, reference_raw, nullptr, limit);
            const auto start = offset;
            entry.value =
                msgpack::unpack(*out.m_zone, frame.data(), frame.size(), offset, reference_raw, nullptr, limit);
            entry.bytes = frame.substr(start, offset - start);
            out.m_entries.push_back(entry);
        }
    } catch (const msgpack::depth_size_overflow&) {
        return WireError{Errc::bad_request, "a value nests maps and arrays more than " +
                                                std::to_string(k_max_value_depth) + " levels deep"};
    } catch (const std::exception& e) {
        return WireError{Errc::bad_request, std::string("malformed msgpack: ") + e.what()};
    }
    if (offset != frame.size()) return WireError{Errc::bad_request, "trailing bytes after the request map"};
    return out;
}

const FrameEntry* RequestFrame::find(std::string_view key) const {
    for (const auto& entry : m_entries) {
        if (entry.key.type == msgpack::type::STR && std::string_view(entry.key.via.str.ptr, entry.key.via.str.size) == key) {
            return &entry;
        }
    }
    return nullptr;
}

std::optional<PackedValue> salvage_id(std::string_view frame) {
    IdSalvager salvager;
    std::size_t offset = 0;
    msgpack::parse(frame.data(), frame.size(), offset, salvager);
    return salvager.id;
}

}  // namespace botbus::bus
