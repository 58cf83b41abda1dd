// Writes the fuzz targets' seed corpus and dictionary from the protocol's
// examples: the golden request frames of tests/golden_frames.hpp, which
// python3-msgpack packed from docs/PROTOCOL.md.
//
//   make_corpus OUT_DIR   writes OUT_DIR/corpus/decoder/NAME (one frame each),
//                         OUT_DIR/corpus/handler/NAME (the frame after a hello,
//                         in handler_input.hpp's format), two handler scripts
//                         that run every frame in the doc's order, and
//                         OUT_DIR/botbus.dict (libFuzzer dictionary).
// The output is checked in under fuzz/; scripts/fuzz.sh regenerates it into
// a temporary directory and fails when the checked-in copy is stale.
#include <msgpack.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "bus/protocol/requests.hpp"
#include "golden_frames.hpp"
#include "handler_input.hpp"

namespace fs = std::filesystem;
using namespace botbus;

namespace {

std::string from_hex(std::string_view hex) {
    const auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        bytes.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
    }
    return bytes;
}

void write_file(const fs::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

// The session a golden hello frame belongs to; 0 for every other frame.
std::size_t session_of(std::string_view name) {
    if (name == "hello.bob") return 1;
    if (name == "hello.carol") return 2;
    return 0;
}

// Every key a request type declares, read through its fields() with a
// visitor that records the keys alone.
struct KeyCollector {
    std::set<std::string>* keys;
    template <typename T> void name(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void name_part(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void opt_name(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void text(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void opt_text(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void opt_key(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void u64(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void opt_u64(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void opt_u64_list(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void opt_flag(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void value(std::string_view key, T&) { keys->emplace(key); }
    template <typename T> void opt_value(std::string_view key, T&) { keys->emplace(key); }
};

// Every string in a msgpack value (map keys and values, at any depth).
void collect_strings(const msgpack::object& value, std::set<std::string>& out) {
    switch (value.type) {
    case msgpack::type::STR: out.emplace(value.via.str.ptr, value.via.str.size); break;
    case msgpack::type::ARRAY:
        for (std::uint32_t i = 0; i < value.via.array.size; ++i) collect_strings(value.via.array.ptr[i], out);
        break;
    case msgpack::type::MAP:
        for (std::uint32_t i = 0; i < value.via.map.size; ++i) {
            collect_strings(value.via.map.ptr[i].key, out);
            collect_strings(value.via.map.ptr[i].val, out);
        }
        break;
    default: break;
    }
}

// A dictionary entry: the string as msgpack packs it (header included), so
// an inserted token is a whole value; non-printable bytes as \xNN.
std::string dict_entry(std::string_view text) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, text);
    std::string line = "\"";
    for (std::size_t i = 0; i < buffer.size(); ++i) {
        const auto byte = static_cast<unsigned char>(buffer.data()[i]);
        if (byte >= 0x20 && byte < 0x7f && byte != '"' && byte != '\\') {
            line.push_back(static_cast<char>(byte));
        } else {
            char escaped[5];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
            line += escaped;
        }
    }
    return line + "\"";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: make_corpus OUT_DIR\n";
        return 2;
    }
    const fs::path out = argv[1];
    const auto decoder_dir = out / "corpus" / "decoder";
    const auto handler_dir = out / "corpus" / "handler";
    fs::create_directories(decoder_dir);
    fs::create_directories(handler_dir);

    const std::string hello_alice = from_hex(testing::k_golden_frames[1].hex);
    std::set<std::string> strings;
    std::vector<std::string> script;  // every frame, in the doc's order, as records
    for (const auto& golden : testing::k_golden_frames) {
        const std::string frame = from_hex(golden.hex);
        const std::string name(golden.name);
        write_file(decoder_dir / name, frame);
        const auto session = session_of(name);
        std::string single = session == 0 ? fuzz::make_record(0, false, hello_alice) : std::string();
        single += fuzz::make_record(session, true, frame);
        write_file(handler_dir / name, single);
        script.push_back(fuzz::make_record(session, script.size() % 4 == 3, frame));
        collect_strings(msgpack::unpack(frame.data(), frame.size()).get(), strings);
    }
    // Two halves, each within handler_fuzz's 64-record limit, the second
    // opening with alice's hello again.
    const std::size_t half = script.size() / 2;
    std::string first, second = fuzz::make_record(0, false, hello_alice);
    for (std::size_t i = 0; i < script.size(); ++i) (i < half ? first : second) += script[i];
    write_file(handler_dir / "script.first_half", first);
    write_file(handler_dir / "script.second_half", second);

    for (const auto op : bus::k_op_names) strings.emplace(op);
    for (std::size_t i = 0; i < std::variant_size_v<bus::Request>; ++i) {
        auto request = bus::make_request(static_cast<bus::Op>(i));
        std::visit([&](auto& typed) {
            KeyCollector collector{&strings};
            typed.fields(collector);
        }, request);
    }
    strings.emplace("ok");
    strings.emplace("id");
    strings.emplace("op");
    strings.emplace("v");
    std::ofstream dict(out / "botbus.dict", std::ios::trunc);
    dict << "# GENERATED by fuzz/make_corpus.cpp: op names, request keys and every string of the\n"
            "# golden frames (docs/PROTOCOL.md), each packed as a msgpack string.\n";
    for (const auto& text : strings) {
        if (text.size() > 64 || text.empty()) continue;
        dict << dict_entry(text) << "\n";
    }
    if (!dict) throw std::runtime_error("cannot write the dictionary");
    return 0;
}
