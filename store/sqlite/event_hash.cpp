#include "store/sqlite/event_hash.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace botbus::store {
namespace {

void put_u64(std::string& out, std::uint64_t value) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xff));
}

void put_bytes(std::string& out, std::string_view bytes) {
    put_u64(out, bytes.size());
    out.append(bytes);
}

}  // namespace

EventHash chain_hash(const EventHash& previous, const StoredEventFields& event) {
    // One buffer per thread, reused: appends hash every event on the loop
    // thread, and a fresh allocation each time would cost more than SHA-256.
    thread_local std::string input;
    input.clear();
    input.append(reinterpret_cast<const char*>(previous.data()), previous.size());
    put_u64(input, event.seq);
    put_u64(input, static_cast<std::uint64_t>(event.ts_us));
    put_bytes(input, event.stream);
    put_u64(input, event.stream_seq);
    put_bytes(input, event.type);
    put_bytes(input, event.producer);
    input.push_back(event.idem_key ? '\1' : '\0');
    if (event.idem_key) put_bytes(input, *event.idem_key);
    put_bytes(input, event.payload);

    EventHash hash{};
    unsigned int size = 0;
    if (EVP_Digest(input.data(), input.size(), hash.data(), &size, EVP_sha256(), nullptr) != 1 ||
        size != hash.size()) {
        throw std::runtime_error("SHA-256 of event seq " + std::to_string(event.seq) + " failed (OpenSSL)");
    }
    return hash;
}

EventHash chain_hash(const EventHash& previous, const Event& event) {
    StoredEventFields fields{event.seq,
                             event.ts_us,
                             event.stream,
                             event.stream_seq,
                             event_type_name(event.type),
                             event.producer,
                             std::nullopt,
                             event.payload};
    if (event.idem_key) fields.idem_key = *event.idem_key;
    return chain_hash(previous, fields);
}

std::string to_hex(const EventHash& hash) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(hash.size() * 2);
    for (const auto byte : hash) {
        out.push_back(k_digits[byte >> 4]);
        out.push_back(k_digits[byte & 0xf]);
    }
    return out;
}

}  // namespace botbus::store
