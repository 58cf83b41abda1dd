// How handler_fuzz reads one fuzz input: a script of requests from a few
// connections, cut into batches.
//
// Operation: records are separated by the byte 0xc1, which msgpack never
// uses, so a mutated frame rarely swallows its neighbour. A record's first
// byte says how to run it (bits 0-1: which of four sessions sends it; bit 2:
// the batch commits after it; bit 3: the clock jumps past every lease before
// it), and the rest is the request frame, decoded as botbusd decodes it.
// make_corpus writes seeds in this form; empty records are skipped.
// Limitations: a frame that itself holds 0xc1 (inside a string or binary)
// is cut in two, like a frame mangled in transit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace botbus::fuzz {

inline constexpr char k_record_separator = '\xc1';
inline constexpr std::size_t k_sessions = 4;

struct Record {
    std::size_t session = 0;
    bool end_batch = false;
    bool expire_leases = false;
    std::string_view frame;
};

inline std::uint8_t control_byte(std::size_t session, bool end_batch, bool expire_leases = false) {
    return static_cast<std::uint8_t>((session % k_sessions) | (end_batch ? 4u : 0u) | (expire_leases ? 8u : 0u));
}

inline std::vector<Record> split_records(std::string_view input) {
    std::vector<Record> records;
    while (!input.empty()) {
        const auto end = input.find(k_record_separator);
        const auto record = input.substr(0, end);
        input = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
        if (record.empty()) continue;
        const auto control = static_cast<std::uint8_t>(record[0]);
        records.push_back(Record{control % k_sessions, (control & 4u) != 0, (control & 8u) != 0, record.substr(1)});
    }
    return records;
}

// One record as make_corpus writes it, separator included.
inline std::string make_record(std::size_t session, bool end_batch, std::string_view frame) {
    std::string out(1, static_cast<char>(control_byte(session, end_batch)));
    out.append(frame);
    out.push_back(k_record_separator);
    return out;
}

}  // namespace botbus::fuzz
