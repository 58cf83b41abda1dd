// What the daemon pushes to a command connection unasked (messages of a
// direct-message mailbox or a delivered subscription, and a subscription's
// caught_up marker), and the delivered messages of a fetch reply, which are
// pushes without their "push" key.
//
// Each is a template over the message form: MessageView when the daemon
// writes it, Message when the client reads it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bus/protocol/messages.hpp"
#include "bus/protocol/shape.hpp"

namespace botbus::bus {

// {push: "message", message, deliveries, redelivered}
template <typename M>
struct BasicMessagePush {
    M message;
    std::uint32_t deliveries = 0;  // this delivery included
    bool redelivered = false;
    template <typename F> void fields(F& f) {
        f.tag("push", "message");
        f.req("message", message);
        f.req("deliveries", deliveries);
        f.req("redelivered", redelivered);
    }
    bool operator==(const BasicMessagePush&) const = default;
};
using MessagePush = BasicMessagePush<MessageView>;
using ReceivedPush = BasicMessagePush<Message>;

// {push: "caught_up", channel, seq}: the history ends at seq. Every message
// up to seq was delivered (or settled) before this, unless the credit ran
// out inside the history: then the rest of it follows as acks make room.
struct CaughtUpPush {
    std::string channel;
    std::uint64_t seq = 0;
    template <typename F> void fields(F& f) {
        f.tag("push", "caught_up");
        f.req("channel", channel);
        f.req("seq", seq);
    }
    bool operator==(const CaughtUpPush&) const = default;
};

// One message of a fetch reply: {message, deliveries, redelivered}.
template <typename M>
struct BasicFetchedMessage {
    M message;
    std::uint32_t deliveries = 0;
    bool redelivered = false;
    template <typename F> void fields(F& f) {
        f.req("message", message);
        f.req("deliveries", deliveries);
        f.req("redelivered", redelivered);
    }
    bool operator==(const BasicFetchedMessage&) const = default;
};

// fetch: {messages, position, caught_up}
template <typename M>
struct BasicFetchReply {
    std::vector<BasicFetchedMessage<M>> messages;
    std::uint64_t position = 0;  // the newest seq the subscription has read
    bool caught_up = false;      // nothing newer was there to fetch
    template <typename F> void fields(F& f) {
        f.req("messages", messages);
        f.req("position", position);
        f.req("caught_up", caught_up);
    }
    bool operator==(const BasicFetchReply&) const = default;
};
using FetchReply = BasicFetchReply<MessageView>;
using ReceivedFetchReply = BasicFetchReply<Message>;

}  // namespace botbus::bus
