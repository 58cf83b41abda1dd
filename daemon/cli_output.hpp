// What the botbus CLI prints: message lines, tables, key/value lists for
// people, or one JSON object per line (--json) for scripts.
//
// Everything that came from the bus (bodies, descriptions) is untrusted:
// human output escapes control characters so another bot cannot drive the
// reader's terminal; JSON output replaces invalid UTF-8 instead of failing.
// Single-threaded, like the rest of the CLI.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "bus/protocol/codec.hpp"

namespace botbus::cli {

// Ordered, so JSON keys come out in the order the CLI writes them.
using Json = nlohmann::ordered_json;

// A msgpack value as JSON: nlohmann's from_msgpack, or, for what JSON cannot
// hold (non-string map keys), msgpack-c's text rendering as a JSON string.
Json value_to_json(const bus::PackedValue& value);
Json value_to_json(const msgpack::object& value);

// The fields of a reply map without the envelope (`ok`, `id`).
Json reply_fields(const bus::Reply& reply);

// 2026-11-27T10:00:00.123Z for microseconds since the epoch.
std::string format_timestamp(std::int64_t ts_us);

// Text made safe for a terminal: C0/C1 control characters and DEL escaped
// as \n, \r, \xNN; tabs and everything printable kept.
std::string escape_text(std::string_view text);

// A message as one line: `[seq 12 #3 <ts>] alice (text): hello` (channel)
// or `[seq 12 @bob #3 <ts>] alice (text): hello` (direct). String bodies
// show as text, other bodies as JSON.
std::string message_line(const bus::Message& message);
// The same message as the JSON object --json prints.
Json message_json(const bus::Message& message);

// For people: 1 h 02 min 03 s, 850 ms, 12 us (microseconds in); 1.5 MiB,
// 930 B (bytes in, binary units).
std::string human_duration(std::uint64_t us);
std::string human_size(std::uint64_t bytes);

// Columns padded to their widest cell; the last column is not padded.
std::string table(const std::vector<std::vector<std::string>>& rows);

// Writes to stdout: human lines, or compact JSON lines with --json.
class Printer {
public:
    Printer(std::ostream& out, bool json) : m_out(out), m_json(json) {}

    bool json() const { return m_json; }
    void line(std::string_view text);
    void object(const Json& value);
    void message(const bus::Message& message);
    // Pushes buffered output out now (tail prints as messages arrive).
    void flush();

private:
    std::ostream& m_out;
    bool m_json;
};

}  // namespace botbus::cli
