// The events the daemon publishes on its feed (PUB socket), besides channel
// messages (messages.hpp: a message with `event`): channel and subscription
// changes (topic sys/channels/), dead letters (sys/dead_letters/), workflow
// and run events (wf/<id>/, run/<id>/) and the feed.sync marker
// (sync/<token>/).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bus/protocol/shape.hpp"
#include "bus/protocol/values.hpp"

namespace botbus::bus {

// {event, seq, ts, by, channel, bot?}: bot for subscribed/unsubscribed.
struct ChannelEvent {
    std::string event;
    std::uint64_t seq = 0;
    std::int64_t ts = 0;
    std::string by;
    std::string channel;
    std::optional<std::string> bot;
    template <typename F> void fields(F& f) {
        f.req("event", event);
        f.req("seq", seq);
        f.req("ts", ts);
        f.req("by", by);
        f.req("channel", channel);
        f.opt("bot", bot);
    }
    bool operator==(const ChannelEvent&) const = default;
};

// {event, seq, ts, bot, channel?, message_seq, reason, deliveries}
struct DeadLetterEvent {
    std::string event;
    std::uint64_t seq = 0;
    std::int64_t ts = 0;
    std::string bot;
    std::optional<std::string> channel;  // a durable subscription's dead letter
    std::uint64_t message_seq = 0;
    std::string reason;
    std::uint32_t deliveries = 0;
    template <typename F> void fields(F& f) {
        f.req("event", event);
        f.req("seq", seq);
        f.req("ts", ts);
        f.req("bot", bot);
        f.opt("channel", channel);
        f.req("message_seq", message_seq);
        f.req("reason", reason);
        f.req("deliveries", deliveries);
    }
    bool operator==(const DeadLetterEvent&) const = default;
};

// {event, seq, stream_seq, ts, by, workflow_id, run_id?, data}: data is the
// event's payload as logged.
struct WorkflowEvent {
    std::string event;
    std::uint64_t seq = 0;
    std::uint64_t stream_seq = 0;
    std::int64_t ts = 0;
    std::string by;
    std::string workflow_id;
    std::optional<std::string> run_id;  // run events
    PackedValue data;
    template <typename F> void fields(F& f) {
        f.req("event", event);
        f.req("seq", seq);
        f.req("stream_seq", stream_seq);
        f.req("ts", ts);
        f.req("by", by);
        f.req("workflow_id", workflow_id);
        f.opt("run_id", run_id);
        f.raw("data", data);
    }
    bool operator==(const WorkflowEvent&) const = default;
};

// {event: "sync", token}: every feed subscription made before the feed.sync
// request is live.
struct SyncMarker {
    std::string token;
    template <typename F> void fields(F& f) {
        f.tag("event", "sync");
        f.req("token", token);
    }
    bool operator==(const SyncMarker&) const = default;
};

std::string encode_feed_event(const ChannelEvent& event);
std::string encode_feed_event(const DeadLetterEvent& event);
std::string encode_feed_event(const WorkflowEvent& event);
std::string encode_feed_event(const SyncMarker& marker);

}  // namespace botbus::bus
