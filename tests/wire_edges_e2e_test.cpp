// The wire's exact edges against the real botbusd, seen as bytes: bodies
// come back exactly as published (history, pushes, the feed), error replies
// echo every id that can be read (oversize and too deep frames included),
// values nest at most 30 deep, and frames up to twice --max-frame plus 64 KiB
// are answered.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "daemon_process.hpp"
#include "raw_wire.hpp"

namespace botbus {
namespace {

using namespace testing;

constexpr std::size_t k_max_frame = 4096;

// Integral floats as a client packs them; msgpack-c re-packs each as an integer.
const std::string k_one_f64 = raw_bytes({0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0});
const std::string k_minus_zero_f64 = raw_bytes({0xcb, 0x80, 0, 0, 0, 0, 0, 0, 0});
const std::string k_two_f32 = raw_bytes({0xca, 0x40, 0, 0, 0});
// {"a": 1.0, "n": {"z": -0.0, "l": [2.0f, 1.0]}}
const std::string k_nested = raw_bytes({0x82, 0xa1, 'a'}) + k_one_f64 + raw_bytes({0xa1, 'n', 0x82, 0xa1, 'z'}) +
                             k_minus_zero_f64 + raw_bytes({0xa1, 'l', 0x92}) + k_two_f32 + k_one_f64;
const std::vector<std::string> k_bodies = {k_one_f64, k_minus_zero_f64, k_two_f32, k_nested};

std::string hex(const std::string& bytes) {
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string out;
    for (const auto c : bytes) {
        out += k_digits[static_cast<unsigned char>(c) >> 4];
        out += k_digits[static_cast<unsigned char>(c) & 15];
    }
    return out;
}

// The frame holds the body's bytes exactly (a re-packed body would not).
void expect_carries(const RawFrame& frame, const std::string& body, const char* where) {
    EXPECT_NE(frame.bytes.find(body), std::string::npos) << where << ": body " << hex(body) << " not in "
                                                         << hex(frame.bytes);
}

class WireEdges : public ::testing::Test {
protected:
    void SetUp() override {
        m_daemon = std::make_unique<DaemonProcess>(m_dir.path() / "data",
                                                   std::vector<std::string>{"--max-frame", std::to_string(k_max_frame)});
    }
    std::unique_ptr<RawDealer> connect(const std::string& bot) {
        auto dealer = std::make_unique<RawDealer>(m_context, m_daemon->command_endpoint());
        dealer->call_ok(MapFrame().with("op", "hello").with("bot", bot).str());
        return dealer;
    }
    void expect_refused(RawDealer& dealer, const std::string& frame, const std::string& code,
                        const std::optional<std::string>& id) {
        const auto reply = dealer.call(frame);
        ASSERT_TRUE(reply) << "no reply to a refused frame of " << frame.size() << " bytes";
        EXPECT_EQ(reply->ok(), false);
        EXPECT_EQ(reply->text("error"), code) << reply->text("message");
        EXPECT_EQ(reply->packed_id(), id);
    }

    TempDir m_dir;
    zmq::context_t m_context;
    std::unique_ptr<DaemonProcess> m_daemon;
};

TEST_F(WireEdges, ChannelBodiesComeBackAsPublishedInHistoryPushesAndTheFeed) {
    auto alice = connect("alice");
    auto bob = connect("bob");
    bob->call_ok(MapFrame().with("op", "subscribe").with("channel", "floats").with("from_seq", 1).str());
    RawFeed feed(m_context, m_daemon->feed_endpoint(), *bob, "ch/floats/");
    const auto marker = bob->next_push();
    ASSERT_TRUE(marker);
    EXPECT_EQ(marker->text("push"), "caught_up");
    for (const auto& body : k_bodies) {
        alice->call_ok(MapFrame().with("op", "publish").with("channel", "floats").raw("body", body).str());
    }
    const auto history = alice->call_ok(MapFrame().with("op", "history").with("channel", "floats").str());
    for (const auto& body : k_bodies) {
        expect_carries(history, body, "history");
        const auto push = bob->next_push();
        ASSERT_TRUE(push);
        expect_carries(*push, body, "push");
        const auto event = feed.next();
        ASSERT_TRUE(event);
        EXPECT_EQ(event->first, "ch/floats/");
        expect_carries(event->second, body, "feed");
    }
    // Decoded, the body is still a float.
    const auto* messages = history.find("messages");
    ASSERT_TRUE(messages && messages->type == msgpack::type::ARRAY && messages->via.array.size == 4);
    EXPECT_EQ(RawFrame::find_in(messages->via.array.ptr[0], "body")->type, msgpack::type::FLOAT64);
    EXPECT_EQ(RawFrame::find_in(messages->via.array.ptr[2], "body")->type, msgpack::type::FLOAT32);
}

TEST_F(WireEdges, DirectMessageBodiesComeBackAsSent) {
    auto alice = connect("alice");
    auto bob = connect("bob");
    for (const auto& body : k_bodies) {
        alice->call_ok(MapFrame().with("op", "send").with("to", "bob").raw("body", body).str());
        const auto push = bob->next_push();
        ASSERT_TRUE(push);
        expect_carries(*push, body, "push");
    }
    const auto inbox = bob->call_ok(MapFrame().with("op", "history").with("inbox", true).str());
    for (const auto& body : k_bodies) expect_carries(inbox, body, "history");
}

TEST_F(WireEdges, ErrorRepliesEchoEveryIdThatCanBeRead) {
    auto alice = connect("alice");
    // Over --max-frame, id first or last.
    expect_refused(*alice, MapFrame().with("id", 1).with("op", "publish").with("body", std::string(5000, 'x')).str(),
                   "frame_too_large", packed(1));
    expect_refused(*alice, MapFrame().with("op", "publish").with("body", std::string(5000, 'x')).with("id", "two").str(),
                   "frame_too_large", packed(std::string("two")));
    // Too deep, the id after the deep value.
    expect_refused(*alice,
                   MapFrame().with("op", "publish").with("channel", "c").raw("body", std::string(40, '\x91') + '\xc0')
                       .with("id", 3).str(),
                   "bad_request", packed(3));
    // Cut short after the id.
    const auto whole = MapFrame().with("id", 4).with("op", "ping").str();
    expect_refused(*alice, whole.substr(0, whole.size() - 1), "bad_request", packed(4));
    // Nothing readable: not a map.
    expect_refused(*alice, packed(std::vector<int>{5}), "bad_request", std::nullopt);
}

TEST_F(WireEdges, ValuesNestThirtyLevelsAndNoMore) {
    auto alice = connect("alice");
    const auto nested = [](std::size_t depth) { return std::string(depth, '\x91') + '\xc0'; };
    alice->call_ok(MapFrame().with("op", "publish").with("channel", "deep").raw("body", nested(30)).str());
    expect_refused(*alice, MapFrame().with("op", "publish").with("id", 31).with("channel", "deep")
                               .raw("body", nested(31)).str(),
                   "bad_request", packed(31));
}

TEST_F(WireEdges, FramesUpToTheHardCeilingAreAnsweredWithTheirId) {
    // The transport passes frames up to twice --max-frame plus 64 KiB (above
    // that it closes the connection: bad_input_test.cpp); each is answered.
    auto alice = connect("alice");
    const std::size_t ceiling = 2 * k_max_frame + 64 * 1024;
    const auto frame_of = [](std::size_t body_size) {
        return MapFrame().with("id", 77).with("op", "publish").with("channel", "c")
            .raw("body", packed(std::string(body_size, 'x'))).str();
    };
    // A body as long as the ceiling, trimmed by what the rest takes (its str32 header stays).
    const auto frame = frame_of(ceiling - (frame_of(ceiling).size() - ceiling));
    ASSERT_EQ(frame.size(), ceiling);
    expect_refused(*alice, frame, "frame_too_large", packed(77));
    alice->call_ok(MapFrame().with("op", "ping").str());
}

}  // namespace
}  // namespace botbus
