// libFuzzer target: bus::decode_request on arbitrary bytes.
//
// Checks, for every input: decode_request returns (never throws, never
// crashes under ASan/UBSan); a decoded request survives encode_request ->
// decode_request with the same op and id, and encodes to the same bytes
// again (the codec's encoder and decoder agree on every field); a failure
// encodes to an error reply that echoes the id it read and that the client
// library decodes; decode_reply, the client's side, also takes the raw bytes
// without throwing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "bus/protocol/codec.hpp"
#include "fuzz_checks.hpp"

using namespace botbus;
using fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view frame(reinterpret_cast<const char*>(data), size);
    auto decoded = bus::decode_request(frame, bus::k_default_max_frame);
    (void)bus::decode_reply(frame);

    if (auto* failure = std::get_if<bus::DecodeFailure>(&decoded)) {
        check(!failure->error.message.empty(), "a decode failure has no message");
        fuzz::check_reply(bus::encode_error_reply(failure->id, failure->error), failure->id);
        return 0;
    }
    const auto& envelope = std::get<bus::Envelope>(decoded);
    const std::string encoded = bus::encode_request(envelope.request, envelope.id);
    auto again = bus::decode_request(encoded, bus::k_default_max_frame);
    if (auto* failure = std::get_if<bus::DecodeFailure>(&again)) {
        fuzz::fail("a decoded request, re-encoded, no longer decodes: " + failure->error.message);
    }
    const auto& second = std::get<bus::Envelope>(again);
    check(bus::op_of(second.request) == bus::op_of(envelope.request), "re-encoding changed the op");
    check(second.id == envelope.id, "re-encoding changed the id");
    check(bus::encode_request(second.request, second.id) == encoded, "encode(decode(encode(x))) != encode(x)");
    return 0;
}
