// A request frame read as its top-level map, one entry at a time, keeping
// each value both decoded and as the exact bytes the client sent: a message
// body is stored and forwarded verbatim (re-packing a decoded value would
// turn a float 1.0 into the integer 1, and -0.0 into 0).
//
// Operation: msgpack's parser reads the map's header (a visitor that stops
// there), then each key and each value is unpacked on its own from its
// offset in the frame, into one zone; the offsets before and after a value
// are its bytes. Strings stay in the frame (referenced, not copied): the
// frame must outlive the RequestFrame.
// Limitations: every key and value may nest maps and arrays at most
// k_max_value_depth deep (the request map itself does not count); a deeper
// one fails the whole frame. salvage_id walks a frame with no depth limit
// and no allocation per value, but its parser's stack grows with the
// nesting (8 bytes a level, bounded by the frame's size).
#pragma once

#include <msgpack.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "bus/protocol/values.hpp"

namespace botbus::bus {

// Maps and arrays a request value may nest: a body of 30 arrays one inside
// the next is accepted, 31 is bad_request.
inline constexpr std::size_t k_max_value_depth = 30;

struct FrameEntry {
    msgpack::object key;
    msgpack::object value;
    std::string_view bytes;  // the value exactly as sent
};

class RequestFrame {
public:
    // Reads a frame that must be one msgpack map and nothing after it; a
    // bad_request WireError says why not.
    static std::variant<RequestFrame, WireError> read(std::string_view frame);

    // The first entry whose key is the string `key`, or nullptr.
    const FrameEntry* find(std::string_view key) const;

private:
    RequestFrame() : m_zone(std::make_unique<msgpack::zone>(1024)) {}

    std::unique_ptr<msgpack::zone> m_zone;  // the decoded keys and values live here
    std::vector<FrameEntry> m_entries;
};

// The top-level `id` of a frame that starts as a map, read as far as the
// frame goes even when the rest is too large, too deep or malformed: an
// integer, or a string of at most 256 bytes. Nothing when the frame is not a
// map, has no such key before the problem, or its id is of another type.
std::optional<PackedValue> salvage_id(std::string_view frame);

// Whether `id` is a value the protocol echoes: an integer, or a string of at
// most 256 bytes.
bool is_valid_id(const msgpack::object& id);

}  // namespace botbus::bus
