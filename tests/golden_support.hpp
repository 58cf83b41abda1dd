// Golden request frames (tests/golden_frames.hpp, packed by python3-msgpack
// from docs/PROTOCOL.md) and a canonical text form of msgpack values, so
// maps compare regardless of key order and differences read plainly.
#pragma once

#include <msgpack.hpp>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "golden_frames.hpp"

namespace botbus::testing {

// The bytes of the golden frame called `name`; throws for an unknown name.
inline std::string golden(std::string_view name) {
    for (const auto& frame : k_golden_frames) {
        if (frame.name != name) continue;
        std::string bytes;
        bytes.reserve(frame.hex.size() / 2);
        const auto nibble = [](char c) {
            return c <= '9' ? c - '0' : c - 'a' + 10;
        };
        for (std::size_t i = 0; i + 1 < frame.hex.size(); i += 2) {
            bytes.push_back(static_cast<char>(nibble(frame.hex[i]) * 16 + nibble(frame.hex[i + 1])));
        }
        return bytes;
    }
    throw std::invalid_argument("no golden frame '" + std::string(name) + "'");
}

// A msgpack value as canonical text: map entries sorted by key, every
// scalar tagged with its msgpack family (u: non-negative integer, i:
// negative integer, f: float, s: string, b: binary).
inline std::string canonical(const msgpack::object& value) {
    switch (value.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return value.via.boolean ? "true" : "false";
    case msgpack::type::POSITIVE_INTEGER: return "u" + std::to_string(value.via.u64);
    case msgpack::type::NEGATIVE_INTEGER: return "i" + std::to_string(value.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return "f" + std::to_string(value.via.f64);
    case msgpack::type::STR: return "s\"" + std::string(value.via.str.ptr, value.via.str.size) + "\"";
    case msgpack::type::BIN: return "b<" + std::to_string(value.via.bin.size) + " bytes>";
    case msgpack::type::ARRAY: {
        std::string out = "[";
        for (std::uint32_t i = 0; i < value.via.array.size; ++i) {
            if (i > 0) out += ",";
            out += canonical(value.via.array.ptr[i]);
        }
        return out + "]";
    }
    case msgpack::type::MAP: {
        std::vector<std::string> entries;
        for (std::uint32_t i = 0; i < value.via.map.size; ++i) {
            entries.push_back(canonical(value.via.map.ptr[i].key) + ":" + canonical(value.via.map.ptr[i].val));
        }
        std::sort(entries.begin(), entries.end());
        std::string out = "{";
        for (std::size_t i = 0; i < entries.size(); ++i) out += (i > 0 ? "," : "") + entries[i];
        return out + "}";
    }
    case msgpack::type::EXT: return "ext";
    }
    return "?";
}

inline std::string canonical_bytes(std::string_view packed) {
    const auto handle = msgpack::unpack(packed.data(), packed.size());
    return canonical(handle.get());
}

// The value under a string key of a map, or nullptr.
inline const msgpack::object* find_key(const msgpack::object& map, std::string_view key) {
    if (map.type != msgpack::type::MAP) return nullptr;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        const auto& k = map.via.map.ptr[i].key;
        if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
            return &map.via.map.ptr[i].val;
        }
    }
    return nullptr;
}

// The string keys of a map, sorted.
inline std::vector<std::string> keys_of(const msgpack::object& map) {
    std::vector<std::string> keys;
    if (map.type != msgpack::type::MAP) return keys;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        const auto& k = map.via.map.ptr[i].key;
        keys.emplace_back(k.type == msgpack::type::STR ? std::string(k.via.str.ptr, k.via.str.size) : "<not a string>");
    }
    std::sort(keys.begin(), keys.end());
    return keys;
}

}  // namespace botbus::testing
