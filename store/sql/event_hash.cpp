#include "store/sql/event_hash.hpp"

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

// SHA-256 fetched once, and one digest context per thread: OpenSSL 3 looks
// the algorithm up again on every EVP_Digest call, which cost more than the
// hashing itself on the loop thread.
class Sha256 {
public:
    Sha256() : m_context(EVP_MD_CTX_new()) {
        if (m_context == nullptr) throw std::runtime_error("OpenSSL: cannot allocate a digest context");
    }
    ~Sha256() { EVP_MD_CTX_free(m_context); }
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    bool digest(const std::string& input, EventHash& out) {
        static EVP_MD* const k_sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        unsigned int size = 0;
        return k_sha256 != nullptr && EVP_DigestInit_ex2(m_context, k_sha256, nullptr) == 1 &&
               EVP_DigestUpdate(m_context, input.data(), input.size()) == 1 &&
               EVP_DigestFinal_ex(m_context, out.data(), &size) == 1 && size == out.size();
    }

private:
    EVP_MD_CTX* m_context;
};

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

    thread_local Sha256 sha256;
    EventHash hash{};
    if (!sha256.digest(input, hash)) {
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
