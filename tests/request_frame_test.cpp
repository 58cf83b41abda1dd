// The request decoder's exact edges: values are kept as the bytes the client
// sent (an integral float stays a float), values nest at most 30 deep, and
// a refused frame still answers with its id whenever one can be read.
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "bus/protocol/codec.hpp"

using namespace botbus::bus;

namespace {

// A request map built key by key; values are packed msgpack bytes.
class RawMap {
public:
    RawMap& raw(const std::string& key, const std::string& packed_value) {
        msgpack::sbuffer buffer;
        msgpack::pack(buffer, key);
        m_body.append(buffer.data(), buffer.size());
        m_body += packed_value;
        ++m_count;
        return *this;
    }
    template <typename T>
    RawMap& with(const std::string& key, const T& value) {
        return raw(key, pack(value));
    }
    std::string str() const {
        msgpack::sbuffer buffer;
        msgpack::packer<msgpack::sbuffer>(buffer).pack_map(m_count);
        return std::string(buffer.data(), buffer.size()) + m_body;
    }
    template <typename T>
    static std::string pack(const T& value) {
        msgpack::sbuffer buffer;
        msgpack::pack(buffer, value);
        return std::string(buffer.data(), buffer.size());
    }

private:
    std::string m_body;
    std::uint32_t m_count = 0;
};

std::string bytes(std::initializer_list<unsigned> values) {
    std::string out;
    for (const auto v : values) out.push_back(static_cast<char>(v));
    return out;
}

// Integral floats exactly as a client packs them; re-packing by msgpack-c
// would turn each into an integer.
const std::string k_one_f64 = bytes({0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0});
const std::string k_minus_zero_f64 = bytes({0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0});
const std::string k_two_f32 = bytes({0xca, 0x40, 0, 0, 0});
const std::string k_five_u32 = bytes({0xce, 0, 0, 0, 5});  // not the shortest form of 5
// {"a": 1.0, "n": {"z": -0.0, "l": [2.0f, 1.0]}}
const std::string k_nested = bytes({0x82, 0xa1, 'a'}) + k_one_f64 + bytes({0xa1, 'n', 0x82, 0xa1, 'z'}) +
                             k_minus_zero_f64 + bytes({0xa1, 'l', 0x92}) + k_two_f32 + k_one_f64;

std::variant<Envelope, DecodeFailure> decode(const std::string& frame, std::size_t max_frame = k_default_max_frame) {
    return decode_request(frame, max_frame);
}

DecodeFailure failure(const std::string& frame, std::size_t max_frame = k_default_max_frame) {
    auto decoded = decode(frame, max_frame);
    if (!std::holds_alternative<DecodeFailure>(decoded)) {
        ADD_FAILURE() << "the frame was accepted";
        return {WireError{}, std::nullopt};
    }
    return std::get<DecodeFailure>(decoded);
}

// `depth` arrays, one inside the next, around a nil.
std::string nested_arrays(std::size_t depth) { return std::string(depth, '\x91') + '\xc0'; }

}  // namespace

TEST(VerbatimValues, PublishAndSendBodiesKeepTheBytesTheClientSent) {
    for (const auto& body : {k_one_f64, k_minus_zero_f64, k_two_f32, k_five_u32, k_nested}) {
        const auto publish =
            decode(RawMap().with("op", "publish").with("channel", "c").raw("body", body).str());
        ASSERT_TRUE(std::holds_alternative<Envelope>(publish));
        EXPECT_EQ(std::get<PublishRequest>(std::get<Envelope>(publish).request).body.bytes, body);
        const auto send = decode(RawMap().raw("body", body).with("op", "send").with("to", "bob").str());
        ASSERT_TRUE(std::holds_alternative<Envelope>(send));
        EXPECT_EQ(std::get<SendRequest>(std::get<Envelope>(send).request).body.bytes, body);
    }
}

TEST(VerbatimValues, TheIdIsEchoedAsSent) {
    const auto decoded = decode(RawMap().with("op", "ping").raw("id", k_five_u32).str());
    ASSERT_TRUE(std::holds_alternative<Envelope>(decoded));
    EXPECT_EQ(std::get<Envelope>(decoded).id, PackedValue{k_five_u32});
}

TEST(ValueDepth, ThirtyLevelsAreAcceptedAndThirtyOneRefused) {
    const auto thirty = decode(RawMap().with("op", "publish").with("channel", "c").raw("body", nested_arrays(30)).str());
    EXPECT_TRUE(std::holds_alternative<Envelope>(thirty));
    const auto refused =
        failure(RawMap().with("op", "publish").with("id", 7).with("channel", "c").raw("body", nested_arrays(31)).str());
    EXPECT_EQ(refused.error.code, Errc::bad_request);
    EXPECT_NE(refused.error.message.find("30"), std::string::npos) << refused.error.message;
    EXPECT_EQ(refused.id, PackedValue{RawMap::pack(7)});
    // Maps count like arrays: 30 maps deep is the most.
    std::string maps;
    for (int i = 0; i < 30; ++i) maps += "\x81\xa1k";
    maps += '\xc0';
    EXPECT_TRUE(std::holds_alternative<Envelope>(
        decode(RawMap().with("op", "publish").with("channel", "c").raw("body", maps).str())));
    EXPECT_EQ(failure(RawMap().with("op", "publish").with("channel", "c").raw("body", "\x81\xa1k" + maps).str())
                  .error.code,
              Errc::bad_request);
}

TEST(RefusedFrameId, TooDeepValueBeforeTheIdStillEchoesIt) {
    const auto refused =
        failure(RawMap().with("op", "publish").raw("body", nested_arrays(5000)).with("id", "late").str());
    EXPECT_EQ(refused.error.code, Errc::bad_request);
    EXPECT_EQ(refused.id, PackedValue{RawMap::pack(std::string("late"))});
}

TEST(RefusedFrameId, FrameTooLargeEchoesItsId) {
    const auto frame = RawMap().with("op", "publish").with("body", std::string(5000, 'x')).with("id", 42).str();
    const auto refused = failure(frame, 4096);
    EXPECT_EQ(refused.error.code, Errc::frame_too_large);
    EXPECT_EQ(refused.id, PackedValue{RawMap::pack(42)});
    const auto negative = failure(RawMap().with("id", -3).with("op", "ping").str(), 4);
    EXPECT_EQ(negative.error.code, Errc::frame_too_large);
    EXPECT_EQ(negative.id, PackedValue{RawMap::pack(-3)});
}

TEST(RefusedFrameId, MalformedAfterTheIdOrTrailingBytesEchoIt) {
    const auto truncated = RawMap().with("id", 9).with("op", "ping").str();
    const auto cut = failure(truncated.substr(0, truncated.size() - 2));
    EXPECT_EQ(cut.error.code, Errc::bad_request);
    EXPECT_EQ(cut.id, PackedValue{RawMap::pack(9)});
    const auto trailing = failure(RawMap().with("op", "ping").with("id", "t").str() + "x");
    EXPECT_EQ(trailing.error.code, Errc::bad_request);
    EXPECT_EQ(trailing.id, PackedValue{RawMap::pack(std::string("t"))});
}

TEST(RefusedFrameId, NoIdWhenNoneCanBeRead) {
    // Not a map; an id nested below the top level; an id of another type.
    EXPECT_FALSE(failure(RawMap::pack(std::vector<int>{1, 2}), 1).id.has_value());
    EXPECT_FALSE(failure(RawMap().with("op", "ping").raw("x", RawMap().with("id", 5).str()).str(), 4).id.has_value());
    EXPECT_FALSE(failure(RawMap().with("op", "ping").with("id", 1.5).str(), 4).id.has_value());
    EXPECT_FALSE(failure(RawMap().with("op", "ping").with("id", std::string(257, 'i')).str(), 4).id.has_value());
    EXPECT_FALSE(failure(RawMap().with("op", "ping").with("id", std::vector<int>{1}).str(), 4).id.has_value());
    // The first id key counts, as when the frame is read whole.
    EXPECT_EQ(failure(RawMap().with("id", 1).with("id", 2).with("op", "ping").str(), 4).id,
              PackedValue{RawMap::pack(1)});
}

TEST(NameFields, StepIdsWithAColonAreInvalidNames) {
    for (const char* op : {"step.start", "step.complete", "step.fail", "step.skip", "step.wait_approval",
                           "step.approve"}) {
        const auto refused =
            failure(RawMap().with("op", op).with("run_id", "r").with("step_id", "a:b").with("error", "e").str());
        EXPECT_EQ(refused.error.code, Errc::invalid_name) << op;
        EXPECT_NE(refused.error.message.find("step_id"), std::string::npos) << refused.error.message;
    }
    // A run id may hold ':' (the attempt id's other parts are split off from the right).
    EXPECT_TRUE(std::holds_alternative<Envelope>(
        decode(RawMap().with("op", "step.start").with("run_id", "r:1").with("step_id", "b").str())));
}

TEST(VerbatimValues, ReadersRepackFloatsAsFloats) {
    // The client library reads bodies out of decoded replies: an integral
    // float must not come out as an integer there either.
    for (const auto& body : {k_one_f64, k_minus_zero_f64, k_two_f32, k_nested}) {
        const auto handle = msgpack::unpack(body.data(), body.size());
        EXPECT_EQ(pack_value(handle.get()).bytes, body);
    }
}
