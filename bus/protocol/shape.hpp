// Declared shapes: replies, pushes, fetched items and feed events list their
// keys once, in wire order, in a `fields(F&)` member; one writer packs them
// (the map size is counted from the declaration) and one reader decodes them.
//
// Field kinds a declaration uses:
//   f.req(key, v)      always written; reading fails without it
//   f.req_or_default(key, v)  always written; reading keeps the default
//                      when it is missing (lenient readers of messages)
//   f.opt(key, v)      std::optional: written when present. A plain value:
//                      written unless it holds its default (0, "", false)
//   f.nil_or(key, v)   std::optional written as nil when absent
//   f.tag(key, text)   a fixed string (push: "message"); reading checks it
//   f.raw(key, v)      an already packed msgpack value, written as is
// Values: integers, bools, strings, vectors of them, PackedValue (a packed
// value, nil when empty), nested shapes and vectors of shapes.
// A shape may have after_read(), called once its fields are read (defaults
// that depend on other fields).
// Limitations: reading is for the client and the tests; it ignores unknown
// keys, and a shape whose strings are views (MessageView) is write-only.
#pragma once

#include <msgpack.hpp>

#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bus/protocol/values.hpp"

namespace botbus::bus {

namespace detail {
template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};
template <typename T>
struct IsOptional : std::false_type {};
template <typename T>
struct IsOptional<std::optional<T>> : std::true_type {};
}  // namespace detail

// Counts the keys a shape writes.
class ShapeCounter {
public:
    template <typename T>
    void req(std::string_view, const T&) { ++m_count; }
    template <typename T>
    void req_or_default(std::string_view, const T&) { ++m_count; }
    template <typename T>
    void opt(std::string_view, const std::optional<T>& v) { m_count += v ? 1U : 0U; }
    template <typename T>
    void opt(std::string_view, const T& v) { m_count += v != T{} ? 1U : 0U; }
    template <typename T>
    void nil_or(std::string_view, const T&) { ++m_count; }
    void tag(std::string_view, std::string_view) { ++m_count; }
    template <typename T>
    void raw(std::string_view, const T&) { ++m_count; }
    std::uint32_t count() const { return m_count; }

private:
    std::uint32_t m_count = 0;
};

template <typename T>
concept Shape = requires(T& value, ShapeCounter& counter) { value.fields(counter); };

template <typename T>
std::uint32_t count_fields(const T& shape) {
    ShapeCounter counter;
    const_cast<T&>(shape).fields(counter);  // fields() only reads through a writer or counter
    return counter.count();
}

template <Shape T>
void pack_shape(msgpack::sbuffer& out, const T& shape);

// Writes a shape's fields (keys and values, no map header) into a buffer.
class ShapeWriter {
public:
    explicit ShapeWriter(msgpack::sbuffer& out) : m_out(out), m_packer(out) {}

    template <typename T>
    void req(std::string_view key, const T& v) {
        m_packer.pack(key);
        put(v);
    }
    template <typename T>
    void req_or_default(std::string_view key, const T& v) {
        req(key, v);
    }
    template <typename T>
    void opt(std::string_view key, const std::optional<T>& v) {
        if (v) req(key, *v);
    }
    template <typename T>
    void opt(std::string_view key, const T& v) {
        if (v != T{}) req(key, v);
    }
    template <typename T>
    void nil_or(std::string_view key, const std::optional<T>& v) {
        m_packer.pack(key);
        if (v) {
            put(*v);
        } else {
            m_packer.pack_nil();
        }
    }
    void tag(std::string_view key, std::string_view text) {
        m_packer.pack(key);
        m_packer.pack(text);
    }
    void raw(std::string_view key, std::string_view packed) {
        m_packer.pack(key);
        m_out.write(packed.data(), packed.size());
    }
    void raw(std::string_view key, const PackedValue& packed) { req(key, packed); }

    template <typename T>
    void put(const T& v) {
        if constexpr (Shape<T>) {
            pack_shape(m_out, v);
        } else if constexpr (std::same_as<T, PackedValue>) {
            // An empty PackedValue holds no value at all; nil keeps the map whole.
            if (v.bytes.empty()) {
                m_packer.pack_nil();
            } else {
                m_out.write(v.bytes.data(), v.bytes.size());
            }
        } else if constexpr (detail::IsVector<T>::value) {
            m_packer.pack_array(static_cast<std::uint32_t>(v.size()));
            for (const auto& item : v) put(item);
        } else {
            m_packer.pack(v);
        }
    }

private:
    msgpack::sbuffer& m_out;
    msgpack::packer<msgpack::sbuffer> m_packer;
};

template <Shape T>
void pack_shape(msgpack::sbuffer& out, const T& shape) {
    msgpack::packer<msgpack::sbuffer>(out).pack_map(count_fields(shape));
    ShapeWriter writer(out);
    const_cast<T&>(shape).fields(writer);
}

// A shape as a frame of its own (pushes, feed events).
template <Shape T>
std::string encode_shape(const T& shape, std::size_t reserve = 128) {
    msgpack::sbuffer out(reserve);
    pack_shape(out, shape);
    return std::string(out.data(), out.size());
}

// Reads a shape's fields out of a map; `ok` turns false at the first
// missing required key or value of the wrong type.
class ShapeReader {
public:
    explicit ShapeReader(const msgpack::object_map& map) : m_map(map) {}

    bool ok = true;

    template <typename T>
    void req(std::string_view key, T& out) {
        const auto* v = find(key);
        if (!v || !get(*v, out)) ok = false;
    }
    template <typename T>
    void req_or_default(std::string_view key, T& out) {
        const auto* v = find(key);
        if (v && !get(*v, out)) ok = false;
    }
    template <typename T>
    void opt(std::string_view key, std::optional<T>& out) {
        const auto* v = find(key);
        if (!v || v->type == msgpack::type::NIL) return;
        if (!get(*v, out.emplace())) ok = false;
    }
    template <typename T>
    void opt(std::string_view key, T& out) {
        const auto* v = find(key);
        if (!v || v->type == msgpack::type::NIL) return;
        if (!get(*v, out)) ok = false;
    }
    template <typename T>
    void nil_or(std::string_view key, std::optional<T>& out) {
        opt(key, out);
    }
    void tag(std::string_view key, std::string_view text) {
        const auto* v = find(key);
        if (!v || v->type != msgpack::type::STR || std::string_view(v->via.str.ptr, v->via.str.size) != text) {
            ok = false;
        }
    }
    void raw(std::string_view key, PackedValue& out) { req(key, out); }

private:
    const msgpack::object* find(std::string_view key) const {
        for (std::uint32_t i = 0; i < m_map.size; ++i) {
            const auto& k = m_map.ptr[i].key;
            if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
                return &m_map.ptr[i].val;
            }
        }
        return nullptr;
    }

    template <typename T>
    static bool get(const msgpack::object& v, T& out) {
        if constexpr (Shape<T>) {
            if (v.type != msgpack::type::MAP) return false;
            ShapeReader reader(v.via.map);
            out.fields(reader);
            if constexpr (requires { out.after_read(); }) out.after_read();
            return reader.ok;
        } else if constexpr (std::same_as<T, PackedValue>) {
            out = pack_value(v);
            return true;
        } else if constexpr (detail::IsVector<T>::value) {
            if (v.type != msgpack::type::ARRAY) return false;
            out.assign(v.via.array.size, typename T::value_type{});
            for (std::uint32_t i = 0; i < v.via.array.size; ++i) {
                if (!get(v.via.array.ptr[i], out[i])) return false;
            }
            return true;
        } else if constexpr (std::same_as<T, std::string>) {
            if (v.type != msgpack::type::STR) return false;
            out.assign(v.via.str.ptr, v.via.str.size);
            return true;
        } else if constexpr (std::same_as<T, bool>) {
            if (v.type != msgpack::type::BOOLEAN) return false;
            out = v.via.boolean;
            return true;
        } else if constexpr (std::unsigned_integral<T>) {
            if (v.type != msgpack::type::POSITIVE_INTEGER || v.via.u64 > std::numeric_limits<T>::max()) return false;
            out = static_cast<T>(v.via.u64);
            return true;
        } else {
            static_assert(std::signed_integral<T>, "a field type the reader does not know");
            if (v.type == msgpack::type::POSITIVE_INTEGER) {
                if (v.via.u64 > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) return false;
                out = static_cast<T>(v.via.u64);
                return true;
            }
            if (v.type != msgpack::type::NEGATIVE_INTEGER || v.via.i64 < std::numeric_limits<T>::min()) return false;
            out = static_cast<T>(v.via.i64);
            return true;
        }
    }

    const msgpack::object_map& m_map;
};

// Reads a shape from a decoded msgpack value; nullopt when it is not one.
template <Shape T>
std::optional<T> decode_shape(const msgpack::object& value) {
    if (value.type != msgpack::type::MAP) return std::nullopt;
    T shape{};
    ShapeReader reader(value.via.map);
    shape.fields(reader);
    if (!reader.ok) return std::nullopt;
    if constexpr (requires { shape.after_read(); }) shape.after_read();
    return shape;
}

}  // namespace botbus::bus
