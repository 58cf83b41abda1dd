// The replies of the session, channel, message and delivery ops, declared
// once: each lists its fields in wire order after {ok, id}. Workflow replies
// are in workflow_replies.hpp; the fetch reply in pushes.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bus/protocol/messages.hpp"
#include "bus/protocol/shape.hpp"

namespace botbus::bus {

#define BOTBUS_SHAPE_EQ(T) bool operator==(const T&) const = default

struct HelloReply {
    std::string bot;
    std::uint64_t protocol = 0;
    std::uint64_t mailbox_acked = 0;
    std::uint64_t last_seq = 0;
    std::string connection;  // this connection's name, as mailbox and consumers list it
    template <typename F> void fields(F& f) {
        f.req("bot", bot);
        f.req("protocol", protocol);
        f.req("mailbox_acked", mailbox_acked);
        f.req("last_seq", last_seq);
        f.req("connection", connection);
    }
    BOTBUS_SHAPE_EQ(HelloReply);
};

struct ByeReply {
    std::optional<std::string> bot;  // the bot the connection was, if any
    template <typename F> void fields(F& f) { f.nil_or("bot", bot); }
    BOTBUS_SHAPE_EQ(ByeReply);
};

// One connection consuming a mailbox or durable subscription (a replica).
struct ReplicaInfo {
    std::string connection;  // as its hello reply named it; "fan_out" for a mailbox's fan-out connections together
    std::uint64_t credit = 0;     // its window; 0 for a fetching connection
    std::uint64_t in_flight = 0;  // messages it holds unacknowledged
    template <typename F> void fields(F& f) {
        f.req("connection", connection);
        f.req("credit", credit);
        f.req("in_flight", in_flight);
    }
    BOTBUS_SHAPE_EQ(ReplicaInfo);
};

struct PingReply {
    bool pong = true;
    std::int64_t ts = 0;
    template <typename F> void fields(F& f) { f.req("pong", pong); f.req("ts", ts); }
    BOTBUS_SHAPE_EQ(PingReply);
};

// A channel as channel.create, channel.retention and channel.list show it.
struct ChannelInfo {
    std::string name;
    std::optional<std::string> description;
    std::string created_by;
    std::int64_t created_at = 0;
    std::int64_t subscribers = 0;
    std::uint64_t last_channel_seq = 0;
    std::optional<std::uint64_t> max_age_ms;  // nil: the daemon's default
    std::optional<std::uint64_t> max_messages;
    template <typename F> void fields(F& f) {
        f.req("name", name);
        f.nil_or("description", description);
        f.req("created_by", created_by);
        f.req("created_at", created_at);
        f.req("subscribers", subscribers);
        f.req("last_channel_seq", last_channel_seq);
        f.nil_or("max_age_ms", max_age_ms);
        f.nil_or("max_messages", max_messages);
    }
    BOTBUS_SHAPE_EQ(ChannelInfo);
};

// channel.delete: {seq}
struct SeqReply {
    std::uint64_t seq = 0;
    template <typename F> void fields(F& f) { f.req("seq", seq); }
    BOTBUS_SHAPE_EQ(SeqReply);
};

// channel.create, channel.retention: {seq, channel}
struct ChannelReply {
    std::uint64_t seq = 0;
    ChannelInfo channel;
    template <typename F> void fields(F& f) { f.req("seq", seq); f.req("channel", channel); }
    BOTBUS_SHAPE_EQ(ChannelReply);
};

// The list replies page (docs/PROTOCOL.md, "Paging"): `more` is true when
// items were left out, by the request's limit or the reply byte budget.
struct ChannelListReply {
    std::vector<ChannelInfo> channels;
    bool more = false;
    template <typename F> void fields(F& f) { f.req("channels", channels); f.req("more", more); }
    BOTBUS_SHAPE_EQ(ChannelListReply);
};

struct SubscribeReply {
    bool subscribed = false;  // false: it already was
    // A delivering subscription:
    std::optional<bool> durable;
    std::optional<bool> resumed;  // an existing durable subscription goes on from its floor
    std::optional<std::uint64_t> start_after;
    std::optional<std::string> deliver;  // "push" or "pull"
    std::optional<std::uint64_t> seq;    // when something was appended
    template <typename F> void fields(F& f) {
        f.req("subscribed", subscribed);
        f.opt("durable", durable);
        f.opt("resumed", resumed);
        f.opt("start_after", start_after);
        f.opt("deliver", deliver);
        f.opt("seq", seq);
    }
    BOTBUS_SHAPE_EQ(SubscribeReply);
};

struct UnsubscribeReply {
    bool unsubscribed = false;
    std::optional<std::uint64_t> seq;
    template <typename F> void fields(F& f) { f.req("unsubscribed", unsubscribed); f.opt("seq", seq); }
    BOTBUS_SHAPE_EQ(UnsubscribeReply);
};

struct SubscriptionsReply {
    std::string bot;
    std::vector<std::string> channels;
    bool more = false;
    template <typename F> void fields(F& f) { f.req("bot", bot); f.req("channels", channels); f.req("more", more); }
    BOTBUS_SHAPE_EQ(SubscriptionsReply);
};

struct SubscribersReply {
    std::string channel;
    std::vector<std::string> bots;
    bool more = false;
    template <typename F> void fields(F& f) { f.req("channel", channel); f.req("bots", bots); f.req("more", more); }
    BOTBUS_SHAPE_EQ(SubscribersReply);
};

// publish: {seq, channel_seq, ts, duplicate}
struct PublishReply {
    std::uint64_t seq = 0;
    std::uint64_t channel_seq = 0;
    std::int64_t ts = 0;
    bool duplicate = false;
    template <typename F> void fields(F& f) {
        f.req("seq", seq);
        f.req("channel_seq", channel_seq);
        f.req("ts", ts);
        f.req("duplicate", duplicate);
    }
    BOTBUS_SHAPE_EQ(PublishReply);
};

// send: {seq, mailbox_seq, ts, duplicate}
struct SendReply {
    std::uint64_t seq = 0;
    std::uint64_t mailbox_seq = 0;
    std::int64_t ts = 0;
    bool duplicate = false;
    template <typename F> void fields(F& f) {
        f.req("seq", seq);
        f.req("mailbox_seq", mailbox_seq);
        f.req("ts", ts);
        f.req("duplicate", duplicate);
    }
    BOTBUS_SHAPE_EQ(SendReply);
};

// history: {messages, more}
template <typename M>
struct BasicHistoryReply {
    std::vector<M> messages;
    bool more = false;
    template <typename F> void fields(F& f) { f.req("messages", messages); f.req("more", more); }
    bool operator==(const BasicHistoryReply&) const = default;
};
using HistoryReply = BasicHistoryReply<MessageView>;
using ReceivedHistoryReply = BasicHistoryReply<Message>;

struct AckReply {
    std::uint64_t acked = 0;            // the floor after the ack
    std::optional<std::uint64_t> seq;   // absent: everything was settled already, nothing appended
    template <typename F> void fields(F& f) { f.req("acked", acked); f.opt("seq", seq); }
    BOTBUS_SHAPE_EQ(AckReply);
};

struct StatsReply {
    std::uint64_t last_seq = 0;
    std::int64_t events = 0;
    std::int64_t channels = 0;
    std::int64_t subscriptions = 0;
    std::int64_t messages = 0;
    std::int64_t db_bytes = 0;
    std::uint64_t requests = 0;
    std::uint64_t batches = 0;
    std::uint64_t errors = 0;
    std::uint64_t sessions = 0;
    std::uint64_t connections = 0;
    std::uint64_t refused_connections = 0;
    std::uint64_t backlog_bytes = 0;
    std::uint64_t feed_connections = 0;
    std::uint64_t feed_bytes = 0;
    std::uint64_t feed_disconnects = 0;
    std::uint64_t dropped_replies = 0;
    std::uint64_t paused_deliveries = 0;
    std::uint64_t syncs = 0;
    std::uint64_t checkpoints = 0;
    std::int64_t uptime_us = 0;
    std::uint64_t auth_refusals = 0;
    std::uint64_t auth_disconnects = 0;
    // Limits on one client (limit_reached).
    std::uint64_t refused_bot_connections = 0;
    std::uint64_t refused_subscriptions = 0;
    std::uint64_t refused_in_flight = 0;
    template <typename F> void fields(F& f) {
        f.req("last_seq", last_seq);
        f.req("events", events);
        f.req("channels", channels);
        f.req("subscriptions", subscriptions);
        f.req("messages", messages);
        f.req("db_bytes", db_bytes);
        f.req("requests", requests);
        f.req("batches", batches);
        f.req("errors", errors);
        f.req("sessions", sessions);
        f.req("connections", connections);
        f.req("refused_connections", refused_connections);
        f.req("backlog_bytes", backlog_bytes);
        f.req("feed_connections", feed_connections);
        f.req("feed_bytes", feed_bytes);
        f.req("feed_disconnects", feed_disconnects);
        f.req("dropped_replies", dropped_replies);
        f.req("paused_deliveries", paused_deliveries);
        f.req("syncs", syncs);
        f.req("checkpoints", checkpoints);
        f.req("uptime_us", uptime_us);
        f.req("auth_refusals", auth_refusals);
        f.req("auth_disconnects", auth_disconnects);
        f.req("refused_bot_connections", refused_bot_connections);
        f.req("refused_subscriptions", refused_subscriptions);
        f.req("refused_in_flight", refused_in_flight);
    }
    BOTBUS_SHAPE_EQ(StatsReply);
};

struct FeedSyncReply {
    std::string topic;
    template <typename F> void fields(F& f) { f.req("topic", topic); }
    BOTBUS_SHAPE_EQ(FeedSyncReply);
};

// A pushed message waiting for its acknowledgement.
struct InFlightInfo {
    std::uint64_t seq = 0;
    std::uint32_t deliveries = 0;
    std::int64_t ack_deadline = 0;  // UTC µs: redelivered after this
    std::string connection;         // the replica holding it (ReplicaInfo's name)
    template <typename F> void fields(F& f) {
        f.req("seq", seq);
        f.req("deliveries", deliveries);
        f.req("ack_deadline", ack_deadline);
        f.req("connection", connection);
    }
    BOTBUS_SHAPE_EQ(InFlightInfo);
};

struct MailboxReply {
    std::string bot;
    std::optional<std::string> channel;  // a durable subscription's, instead of the mailbox's
    std::uint64_t acked = 0;
    std::int64_t unsettled = 0;
    std::vector<InFlightInfo> in_flight;  // the first k_max_listed_in_flight, by seq
    std::uint64_t in_flight_count = 0;    // all of them
    std::vector<ReplicaInfo> replicas;    // the connections consuming it now
    template <typename F> void fields(F& f) {
        f.req("bot", bot);
        f.opt("channel", channel);
        f.req("acked", acked);
        f.req("unsettled", unsettled);
        f.req("in_flight", in_flight);
        f.req("in_flight_count", in_flight_count);
        f.req("replicas", replicas);
    }
    BOTBUS_SHAPE_EQ(MailboxReply);
};

template <typename M>
struct BasicDeadLetterInfo {
    std::uint64_t seq = 0;
    std::uint64_t message_seq = 0;  // what dlq.replay takes, also once the message is trimmed
    std::string bot;
    std::string reason;
    std::uint32_t deliveries = 0;
    std::int64_t ts = 0;
    std::optional<M> message;  // nil: trimmed from the log
    std::optional<std::uint64_t> replayed_seq;
    std::optional<std::string> channel;
    template <typename F> void fields(F& f) {
        f.req("seq", seq);
        f.req("message_seq", message_seq);
        f.req("bot", bot);
        f.req("reason", reason);
        f.req("deliveries", deliveries);
        f.req("ts", ts);
        f.nil_or("message", message);
        f.opt("replayed_seq", replayed_seq);
        f.opt("channel", channel);
    }
    bool operator==(const BasicDeadLetterInfo&) const = default;
};

template <typename M>
struct BasicDlqListReply {
    std::vector<BasicDeadLetterInfo<M>> dead_letters;
    bool more = false;
    template <typename F> void fields(F& f) { f.req("dead_letters", dead_letters); f.req("more", more); }
    bool operator==(const BasicDlqListReply&) const = default;
};
using DlqListReply = BasicDlqListReply<MessageView>;
using ReceivedDlqListReply = BasicDlqListReply<Message>;

struct DlqReplayReply {
    std::uint64_t seq = 0;
    std::uint64_t mailbox_seq = 0;
    template <typename F> void fields(F& f) { f.req("seq", seq); f.req("mailbox_seq", mailbox_seq); }
    BOTBUS_SHAPE_EQ(DlqReplayReply);
};

// A durable subscription as consumers shows it.
struct ConsumerInfo {
    std::string bot;
    std::string channel;
    std::uint64_t acked = 0;
    std::uint64_t head = 0;
    std::int64_t lag = 0;  // messages above the floor not settled
    std::uint64_t in_flight = 0;
    std::string mode;  // "push", "pull" or "idle"
    std::int64_t last_ack = 0;
    bool stuck = false;
    std::int64_t created_at = 0;
    std::uint64_t replica_count = 0;    // the connections consuming it now
    std::vector<ReplicaInfo> replicas;  // the first k_max_listed_replicas of them
    template <typename F> void fields(F& f) {
        f.req("bot", bot);
        f.req("channel", channel);
        f.req("acked", acked);
        f.req("head", head);
        f.req("lag", lag);
        f.req("in_flight", in_flight);
        f.req("mode", mode);
        f.req("last_ack", last_ack);
        f.req("stuck", stuck);
        f.req("created_at", created_at);
        f.req("replica_count", replica_count);
        f.req("replicas", replicas);
    }
    BOTBUS_SHAPE_EQ(ConsumerInfo);
};

struct ConsumersReply {
    std::vector<ConsumerInfo> consumers;
    bool more = false;  // more follow: ask again from the last one (after, after_bot)
    template <typename F> void fields(F& f) { f.req("consumers", consumers); f.req("more", more); }
    BOTBUS_SHAPE_EQ(ConsumersReply);
};

// One permission rule, as acl.list shows it.
struct AclRuleInfo {
    std::string bot;
    std::string permission;
    std::string channel;
    template <typename F> void fields(F& f) {
        f.req("bot", bot);
        f.req("permission", permission);
        f.req("channel", channel);
    }
    BOTBUS_SHAPE_EQ(AclRuleInfo);
};

// acl.grant and acl.revoke: the rule, whether it changed anything (false:
// granted already; a revoke of a missing rule is not_found), and the event's seq.
struct BackupReply {
    std::string path;           // where the daemon wrote the copy
    std::uint64_t bytes = 0;
    std::uint64_t last_seq = 0;  // the copy's log ends here
    std::uint64_t events = 0;    // events in the copy's log
    std::uint64_t duration_us = 0;
    template <typename F> void fields(F& f) {
        f.req("path", path);
        f.req("bytes", bytes);
        f.req("last_seq", last_seq);
        f.req("events", events);
        f.req("duration_us", duration_us);
    }
    BOTBUS_SHAPE_EQ(BackupReply);
};

struct AclChangeReply {
    AclRuleInfo rule;
    bool changed = false;
    std::optional<std::uint64_t> seq;
    template <typename F> void fields(F& f) { f.req("rule", rule); f.req("changed", changed); f.opt("seq", seq); }
    BOTBUS_SHAPE_EQ(AclChangeReply);
};

struct AclListReply {
    std::vector<AclRuleInfo> rules;
    bool more = false;  // more follow: ask again from the last one (after_bot, after_permission, after_channel)
    template <typename F> void fields(F& f) { f.req("rules", rules); f.req("more", more); }
    BOTBUS_SHAPE_EQ(AclListReply);
};

#undef BOTBUS_SHAPE_EQ

}  // namespace botbus::bus
