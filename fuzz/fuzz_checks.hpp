// What the fuzz targets check beyond "no crash": a failed check prints what
// broke and aborts, which libFuzzer reports as a crash with the input saved.
#pragma once

#include <msgpack.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "bus/protocol/codec.hpp"

namespace botbus::fuzz {

[[noreturn]] inline void fail(std::string_view what) {
    std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
    std::abort();
}

inline void check(bool condition, std::string_view what) {
    if (!condition) fail(what);
}

// The value under `key` in a msgpack map, or nullptr.
inline const msgpack::object* find_key(const msgpack::object& map, std::string_view key) {
    if (map.type != msgpack::type::MAP) return nullptr;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        const auto& entry = map.via.map.ptr[i];
        if (entry.key.type == msgpack::type::STR && std::string_view(entry.key.via.str.ptr, entry.key.via.str.size) == key) {
            return &entry.val;
        }
    }
    return nullptr;
}

// Every reply botbusd sends: one msgpack map with a boolean `ok`, the
// request's id echoed when it had one, and on failure an
// `error` string the client library knows and a non-empty `message`.
inline void check_reply(std::string_view reply, const std::optional<bus::PackedValue>& id) {
    msgpack::object_handle handle;
    try {
        handle = msgpack::unpack(reply.data(), reply.size());
    } catch (const std::exception&) {
        fail("a reply is not one msgpack value");
    }
    const auto& map = handle.get();
    check(map.type == msgpack::type::MAP, "a reply is not a map");
    const auto* ok = find_key(map, "ok");
    check(ok != nullptr && ok->type == msgpack::type::BOOLEAN, "a reply has no boolean `ok`");
    const auto* echoed = find_key(map, "id");
    if (id) {
        check(echoed != nullptr, "a reply does not echo the request's id");
        // Compared as values: the id is echoed as sent, which need not be
        // the shortest encoding pack_value would give it.
        // (Both packed again rather than msgpack's operator==, which
        // memcmps a null pointer for an empty string.)
        const auto sent = msgpack::unpack(id->bytes.data(), id->bytes.size());
        check(bus::pack_value(sent.get()) == bus::pack_value(*echoed), "a reply echoes another id than the request's");
    } else {
        check(echoed == nullptr, "a reply carries an id the request did not have");
    }
    const auto decoded = bus::decode_reply(reply);
    check(decoded.has_value(), "the client library cannot decode a reply");
    check(decoded->ok == ok->via.boolean, "the client library reads `ok` differently");
    if (!decoded->ok) {
        const auto* error = find_key(map, "error");
        check(error != nullptr && error->type == msgpack::type::STR, "an error reply has no `error` string");
        check(!decoded->message.empty(), "an error reply has an empty message");
    }
}

}  // namespace botbus::fuzz
