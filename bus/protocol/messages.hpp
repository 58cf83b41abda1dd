// A message as the wire shows it, in history replies, fetch replies, pushes,
// dead-letter listings and feed events. One declaration (message_fields)
// serves both forms: MessageView, whose strings point into a stored row
// (written by the daemon without copying bodies), and Message, which owns
// its values (read by the client).
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bus/protocol/shape.hpp"
#include "bus/protocol/values.hpp"

namespace botbus::bus {

// `{event?, seq, ts, from, type, body, channel + channel_seq | to +
// mailbox_seq, reply_to?, conversation?, hop?, expires_at?, replay_of?}`.
// A reader needs seq, from and body; the rest it takes when given.
template <typename M, typename F>
void message_fields(M& m, F& f) {
    f.opt("event", m.event);
    f.req("seq", m.seq);
    f.req_or_default("ts", m.ts_us);
    f.req("from", m.from);
    f.req_or_default("type", m.type);
    f.raw("body", m.body);
    f.opt("channel", m.channel);
    if (m.channel) {
        f.req_or_default("channel_seq", m.stream_seq);
    } else {
        f.opt("to", m.to);
        f.req_or_default("mailbox_seq", m.stream_seq);
    }
    f.opt("reply_to", m.reply_to);
    f.opt("conversation", m.conversation);
    f.opt("hop", m.hop);
    f.opt("expires_at", m.expires_at);
    f.opt("replay_of", m.replay_of);
}

struct MessageView {
    std::uint64_t seq = 0;
    std::uint64_t stream_seq = 0;  // channel seq, or the recipient's mailbox seq
    std::int64_t ts_us = 0;
    std::string_view from;
    std::optional<std::string_view> channel;
    std::optional<std::string_view> to;
    std::string_view type;
    std::string_view body;  // packed msgpack value
    std::optional<std::uint64_t> reply_to;
    std::optional<std::uint64_t> conversation;  // answers only
    std::optional<std::uint64_t> hop;           // answers only
    std::optional<std::int64_t> expires_at;
    std::optional<std::uint64_t> replay_of;
    std::optional<std::string_view> event = {};  // feed events carry it

    template <typename F> void fields(F& f) { message_fields(*this, f); }
};

// Packs the message map, with `event` first when given (feed events).
void pack_message(msgpack::sbuffer& out, const MessageView& message,
                  std::optional<std::string_view> event = std::nullopt);
std::string encode_message_event(const MessageView& message, std::string_view event);

// A message as the client library holds it.
struct Message {
    std::string event;  // set for feed events and pushes
    std::uint64_t seq = 0;
    std::uint64_t stream_seq = 0;
    std::int64_t ts_us = 0;
    std::string from;
    std::optional<std::string> channel;
    std::optional<std::string> to;
    std::string type;
    PackedValue body;
    std::optional<std::uint64_t> reply_to;
    std::uint64_t conversation = 0;  // the seq of the conversation's first message
    std::uint64_t hop = 0;           // answers deep: 0 for a message that answers nothing
    std::optional<std::int64_t> expires_at;
    std::optional<std::uint64_t> replay_of;
    // Pushes of direct messages: how many times the daemon has delivered it
    // (this time included), and whether this is a repeat. Not part of the
    // message map: the push around it carries them.
    std::uint32_t deliveries = 0;
    bool redelivered = false;

    template <typename F> void fields(F& f) { message_fields(*this, f); }
    // A message that answers nothing is its own conversation.
    void after_read() {
        if (conversation == 0) conversation = seq;
    }
    bool operator==(const Message&) const = default;
};
// Reads a message map.
std::optional<Message> decode_message(const msgpack::object& map);

}  // namespace botbus::bus
