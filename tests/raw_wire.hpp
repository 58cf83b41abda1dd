// Raw ZeroMQ + msgpack access to a running botbusd, for tests that must see
// the exact bytes on the wire (the client library would decode and re-pack
// them): frames built key by key from packed values, a DEALER that keeps
// every frame it reads, and a SUB socket synchronised with feed.sync.
#pragma once

#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace botbus::testing {

using Millis = std::chrono::milliseconds;

template <typename T>
std::string packed(const T& value) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, value);
    return std::string(buffer.data(), buffer.size());
}

inline std::string raw_bytes(std::initializer_list<unsigned> values) {
    std::string out;
    for (const auto v : values) out.push_back(static_cast<char>(v));
    return out;
}

// A request map built key by key, values packed (with) or given as bytes (raw).
class MapFrame {
public:
    MapFrame& raw(const std::string& key, const std::string& packed_value) {
        m_body += packed(key) + packed_value;
        ++m_count;
        return *this;
    }
    template <typename T>
    MapFrame& with(const std::string& key, const T& value) {
        return raw(key, packed(value));
    }
    std::string str() const {
        msgpack::sbuffer buffer;
        msgpack::packer<msgpack::sbuffer>(buffer).pack_map(m_count);
        return std::string(buffer.data(), buffer.size()) + m_body;
    }

private:
    std::string m_body;
    std::uint32_t m_count = 0;
};

// A decoded frame (reply or push), with the bytes it came in.
struct RawFrame {
    std::string bytes;
    msgpack::object_handle handle;

    const msgpack::object& root() const { return handle.get(); }
    const msgpack::object* find(std::string_view key) const { return find_in(root(), key); }
    static const msgpack::object* find_in(const msgpack::object& map, std::string_view key) {
        if (map.type != msgpack::type::MAP) return nullptr;
        for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
            const auto& k = map.via.map.ptr[i].key;
            if (k.type == msgpack::type::STR && std::string_view(k.via.str.ptr, k.via.str.size) == key) {
                return &map.via.map.ptr[i].val;
            }
        }
        return nullptr;
    }
    bool is_push() const { return find("push") != nullptr; }
    std::optional<bool> ok() const {
        const auto* v = find("ok");
        if (!v || v->type != msgpack::type::BOOLEAN) return std::nullopt;
        return v->via.boolean;
    }
    std::string text(std::string_view key) const {
        const auto* v = find(key);
        if (!v || v->type != msgpack::type::STR) return "<missing>";
        return std::string(v->via.str.ptr, v->via.str.size);
    }
    std::optional<std::uint64_t> u64(std::string_view key) const {
        const auto* v = find(key);
        if (!v || v->type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
        return v->via.u64;
    }
    // The id as sent back, packed; nullopt when absent.
    std::optional<std::string> packed_id() const {
        const auto* v = find("id");
        if (!v) return std::nullopt;
        msgpack::sbuffer buffer;
        msgpack::pack(buffer, *v);
        return std::string(buffer.data(), buffer.size());
    }
};

inline std::optional<RawFrame> decode_frame(std::string bytes) {
    try {
        auto handle = msgpack::unpack(bytes.data(), bytes.size());
        return RawFrame{std::move(bytes), std::move(handle)};
    } catch (const std::exception& e) {
        ADD_FAILURE() << "frame is not msgpack: " << e.what();
        return std::nullopt;
    }
}

// A DEALER on the command socket. Pushes read while waiting for a reply are
// kept, in order, for next_push().
class RawDealer {
public:
    RawDealer(zmq::context_t& context, const std::string& endpoint) : m_socket(context, zmq::socket_type::dealer) {
        m_socket.set(zmq::sockopt::linger, 0);
        m_socket.connect(endpoint);
    }

    void send(const std::string& frame) { ASSERT_TRUE(m_socket.send(zmq::buffer(frame), zmq::send_flags::none)); }

    // The next frame of any kind, or nullopt on timeout.
    std::optional<RawFrame> next(Millis timeout = Millis(10000)) {
        zmq::pollitem_t item{m_socket.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(m_socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) return std::nullopt;
        if (parts.size() != 1) {
            ADD_FAILURE() << "a message of " << parts.size() << " frames";
            return std::nullopt;
        }
        return decode_frame(parts[0].to_string());
    }

    // The next reply (pushes read meanwhile are kept), or nullopt on timeout.
    std::optional<RawFrame> reply(Millis timeout = Millis(10000)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
            auto frame = next(std::max(Millis(0), left));
            if (!frame) return std::nullopt;
            if (!frame->is_push()) return frame;
            m_pushes.push_back(std::move(*frame));
        }
    }

    std::optional<RawFrame> call(const std::string& frame, Millis timeout = Millis(10000)) {
        send(frame);
        return reply(timeout);
    }
    // Calls and expects ok: true.
    RawFrame call_ok(const std::string& frame) {
        auto reply = call(frame);
        if (!reply) throw std::runtime_error("no reply");
        EXPECT_EQ(reply->ok(), true) << reply->text("error") << ": " << reply->text("message");
        return std::move(*reply);
    }

    // Whether a push was read while waiting for a reply and not taken yet.
    bool has_push() const { return !m_pushes.empty(); }

    // The next push (kept earlier, or read now), or nullopt on timeout.
    std::optional<RawFrame> next_push(Millis timeout = Millis(10000)) {
        if (!m_pushes.empty()) {
            auto push = std::move(m_pushes.front());
            m_pushes.pop_front();
            return push;
        }
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            const auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
            auto frame = next(std::max(Millis(0), left));
            if (!frame) return std::nullopt;
            if (frame->is_push()) return frame;
            ADD_FAILURE() << "a reply where a push was expected: " << frame->text("error");
        }
    }

private:
    zmq::socket_t m_socket;
    std::deque<RawFrame> m_pushes;
};

// A SUB socket on the feed, subscribed to `topic` and known to be receiving
// (feed.sync, asked through `commands`, came back).
class RawFeed {
public:
    RawFeed(zmq::context_t& context, const std::string& endpoint, RawDealer& commands, const std::string& topic)
        : m_socket(context, zmq::socket_type::sub) {
        m_socket.set(zmq::sockopt::linger, 0);
        m_socket.connect(endpoint);
        m_socket.set(zmq::sockopt::subscribe, topic);
        const std::string token = "raw-feed-sync";
        m_socket.set(zmq::sockopt::subscribe, "sync/" + token + "/");
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            commands.call_ok(MapFrame().with("op", "feed.sync").with("token", token).str());
            if (auto marker = next(Millis(100)); marker && marker->first.starts_with("sync/")) {
                m_socket.set(zmq::sockopt::unsubscribe, "sync/" + token + "/");
                m_syncing = false;
                return;
            }
        }
        ADD_FAILURE() << "the feed never delivered the sync marker";
    }

    // The next [topic, event] (sync markers skipped), or nullopt on timeout.
    std::optional<std::pair<std::string, RawFrame>> next(Millis timeout = Millis(10000)) {
        for (;;) {
            auto event = next_any(timeout);
            if (!event || !event->first.starts_with("sync/") || m_syncing) return event;
        }
    }

private:
    std::optional<std::pair<std::string, RawFrame>> next_any(Millis timeout) {
        zmq::pollitem_t item{m_socket.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(m_socket, std::back_inserter(parts), zmq::recv_flags::dontwait) || parts.size() != 2) {
            return std::nullopt;
        }
        auto frame = decode_frame(parts[1].to_string());
        if (!frame) return std::nullopt;
        return std::pair{parts[0].to_string(), std::move(*frame)};
    }

    zmq::socket_t m_socket;
    bool m_syncing = true;
};

}  // namespace botbus::testing
