// The protocol's basic values: an error as the wire reports it, and a msgpack
// value kept in its packed form.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "bus/protocol/vocabulary.hpp"

namespace botbus::bus {

struct WireError {
    WireError() = default;
    WireError(Errc code_, std::string message_, std::optional<std::uint64_t> retry_after_ms_ = std::nullopt)
        : code(code_), message(std::move(message_)), retry_after_ms(retry_after_ms_) {}

    Errc code = Errc::internal;
    std::string message;
    std::optional<std::uint64_t> retry_after_ms;  // rate_limited: when a retry can succeed
};

// A msgpack value kept in its packed form (message bodies, request ids).
struct PackedValue {
    std::string bytes;
    bool operator==(const PackedValue&) const = default;
};
PackedValue pack_value(const msgpack::object& value);
template <typename T>
PackedValue pack_as_value(const T& value) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, value);
    return PackedValue{std::string(buffer.data(), buffer.size())};
}


}  // namespace botbus::bus
