// Every request of the protocol, declared once: its op name (k_op), whether
// it needs a hello identity (k_needs_identity; the core refuses it with
// not_identified before its handler runs), and its fields. The codec
// (codec.hpp) decodes and encodes requests from these declarations alone.
//
// Adding an op: declare its request type here, add it to `Request`, and give
// a handler an overload for it (bus/core/handler.hpp). Op names and the name
// table are derived from `Request`; nothing else lists the ops.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "bus/protocol/values.hpp"
#include "bus/protocol/workflow_requests.hpp"

namespace botbus::bus {

// ---- requests. Each lists its fields once; decode and encode both use it.
// Field kinds: name (required, naming rule), opt_name, name_part (a name
// without ':', as it is part of a composite id), text (required
// string), opt_text, opt_key (1..256 bytes), u64, opt_u64, opt_u64_list
// (array of them), opt_flag, value (any msgpack), opt_value.
// List ops page (docs/PROTOCOL.md, "Paging"): `limit` 1..1000 (default 100)
// and a cursor, the key of the last item the client has, exclusive.

struct HelloRequest {
    static constexpr std::string_view k_op = "hello";
    std::string bot;
    std::optional<bool> pushes = {};  // false: act as the bot without taking its direct-message pushes
    // true: a copy of every direct message of the bot (a mirror, a logger)
    // instead of a share of them with the bot's other connections.
    std::optional<bool> fan_out = {};
    std::optional<std::uint64_t> credit = {};  // this connection's unacknowledged direct messages at a time
    template <typename F> void fields(F& f) {
        f.name("bot", bot);
        f.opt_flag("pushes", pushes);
        f.opt_flag("fan_out", fan_out);
        f.opt_u64("credit", credit);
    }
};
// The connection stops being its bot's: what it holds goes to the bot's
// other connections at once.
struct ByeRequest {
    static constexpr std::string_view k_op = "bye";
    template <typename F> void fields(F&) {}
};
struct PingRequest {
    static constexpr std::string_view k_op = "ping";
    template <typename F> void fields(F&) {}
};
struct ChannelCreateRequest {
    static constexpr std::string_view k_op = "channel.create";
    static constexpr bool k_needs_identity = true;
    std::string name;
    std::optional<std::string> description;
    template <typename F> void fields(F& f) { f.name("name", name); f.opt_text("description", description); }
};
struct ChannelDeleteRequest {
    static constexpr std::string_view k_op = "channel.delete";
    static constexpr bool k_needs_identity = true;
    std::string name;
    template <typename F> void fields(F& f) { f.name("name", name); }
};
struct ChannelListRequest {
    static constexpr std::string_view k_op = "channel.list";
    std::optional<std::string> after = {};  // a channel name
    std::optional<std::uint64_t> limit = {};
    template <typename F> void fields(F& f) { f.opt_name("after", after); f.opt_u64("limit", limit); }
};
struct SubscribeRequest {
    static constexpr std::string_view k_op = "subscribe";
    static constexpr bool k_needs_identity = true;
    std::string channel;
    std::optional<std::string> bot;  // default: the connection's hello identity
    // Delivery over the command connection (any of these makes one):
    std::optional<bool> durable = {};            // keep a cursor in the log (survives reconnects and restarts)
    std::optional<std::string> deliver = {};     // "push" (default) or "pull" (fetch; durable only)
    std::optional<std::uint64_t> from_seq = {};  // start at this seq, or
    std::optional<std::uint64_t> from_time = {}; // at the first message at or after this time (µs), or
    std::optional<std::uint64_t> last = {};      // with the last N messages; default: from now
    std::optional<std::uint64_t> credit = {};    // push: unacknowledged messages at a time
    template <typename F> void fields(F& f) {
        f.name("channel", channel);
        f.opt_name("bot", bot);
        f.opt_flag("durable", durable);
        f.opt_text("deliver", deliver);
        f.opt_u64("from_seq", from_seq);
        f.opt_u64("from_time", from_time);
        f.opt_u64("last", last);
        f.opt_u64("credit", credit);
    }
    bool delivers() const { return durable || deliver || from_seq || from_time || last || credit; }
};
struct UnsubscribeRequest {
    static constexpr std::string_view k_op = "unsubscribe";
    static constexpr bool k_needs_identity = true;
    std::string channel;
    std::optional<std::string> bot;
    template <typename F> void fields(F& f) { f.name("channel", channel); f.opt_name("bot", bot); }
};
struct SubscriptionsRequest {
    static constexpr std::string_view k_op = "subscriptions";
    std::optional<std::string> bot;
    std::optional<std::string> after = {};  // a channel name
    std::optional<std::uint64_t> limit = {};
    template <typename F> void fields(F& f) {
        f.opt_name("bot", bot); f.opt_name("after", after); f.opt_u64("limit", limit);
    }
};
struct SubscribersRequest {
    static constexpr std::string_view k_op = "subscribers";
    std::string channel;
    std::optional<std::string> after = {};  // a bot id
    std::optional<std::uint64_t> limit = {};
    template <typename F> void fields(F& f) {
        f.name("channel", channel); f.opt_name("after", after); f.opt_u64("limit", limit);
    }
};
struct PublishRequest {
    static constexpr std::string_view k_op = "publish";
    static constexpr bool k_needs_identity = true;
    std::string channel;
    std::optional<std::string> type;  // default "text"
    PackedValue body;
    std::optional<std::string> idempotency_key;
    std::optional<std::uint64_t> reply_to;
    template <typename F> void fields(F& f) {
        f.name("channel", channel);
        f.opt_name("type", type);
        f.value("body", body);
        f.opt_key("idempotency_key", idempotency_key);
        f.opt_u64("reply_to", reply_to);
    }
};
struct SendRequest {
    static constexpr std::string_view k_op = "send";
    static constexpr bool k_needs_identity = true;
    std::string to;
    std::optional<std::string> type;
    PackedValue body;
    std::optional<std::string> idempotency_key;
    std::optional<std::uint64_t> reply_to;
    std::optional<std::uint64_t> ttl_ms = {};  // not delivered after this long
    template <typename F> void fields(F& f) {
        f.name("to", to);
        f.opt_name("type", type);
        f.value("body", body);
        f.opt_key("idempotency_key", idempotency_key);
        f.opt_u64("reply_to", reply_to);
        f.opt_u64("ttl_ms", ttl_ms);
    }
};
struct HistoryRequest {
    static constexpr std::string_view k_op = "history";
    std::optional<std::string> channel;  // a channel's messages, or
    std::optional<std::string> peer;     // the conversation of `bot` (default: hello identity) and peer, or
    std::optional<bool> inbox;           // every direct message to `bot`
    std::optional<std::string> bot;
    std::optional<std::uint64_t> after;   // exclusive
    std::optional<std::uint64_t> before;  // exclusive
    std::optional<std::uint64_t> limit;   // 1..1000, default 100
    std::optional<std::string> order;     // "asc" (default) or "desc"
    template <typename F> void fields(F& f) {
        f.opt_name("channel", channel);
        f.opt_name("peer", peer);
        f.opt_flag("inbox", inbox);
        f.opt_name("bot", bot);
        f.opt_u64("after", after);
        f.opt_u64("before", before);
        f.opt_u64("limit", limit);
        f.opt_text("order", order);
    }
};
struct AckRequest {
    static constexpr std::string_view k_op = "ack";
    static constexpr bool k_needs_identity = true;
    std::optional<std::uint64_t> upto;                // everything up to and including this seq, and/or
    std::optional<std::vector<std::uint64_t>> seqs = {};  // these messages
    std::optional<std::string> channel = {};          // a durable subscription's messages; default: the mailbox
    template <typename F> void fields(F& f) {
        f.opt_u64("upto", upto);
        f.opt_u64_list("seqs", seqs);
        f.opt_name("channel", channel);
    }
};
struct StatsRequest {
    static constexpr std::string_view k_op = "stats";
    template <typename F> void fields(F&) {}
};
struct BackupRequest {
    static constexpr std::string_view k_op = "backup";
    std::string name;  // the copy's file name in the daemon's backup directory
    template <typename F> void fields(F& f) { f.name("name", name); }
};
struct FeedSyncRequest {
    static constexpr std::string_view k_op = "feed.sync";
    std::string token;
    template <typename F> void fields(F& f) { f.name("token", token); }
};
struct MailboxRequest {
    static constexpr std::string_view k_op = "mailbox";
    std::optional<std::string> bot;  // default: the connection's hello identity
    std::optional<std::string> channel = {};  // a durable subscription's pending messages instead of the mailbox's
    template <typename F> void fields(F& f) { f.opt_name("bot", bot); f.opt_name("channel", channel); }
};
struct DlqListRequest {
    static constexpr std::string_view k_op = "dlq.list";
    std::optional<std::string> bot;     // one recipient's dead letters; default all
    std::optional<std::uint64_t> after;  // dead-letter seqs above this
    std::optional<std::uint64_t> limit;  // 1..1000, default 100
    template <typename F> void fields(F& f) {
        f.opt_name("bot", bot);
        f.opt_u64("after", after);
        f.opt_u64("limit", limit);
    }
};
struct DlqReplayRequest {
    static constexpr std::string_view k_op = "dlq.replay";
    static constexpr bool k_needs_identity = true;
    std::uint64_t seq = 0;           // the dead message's seq
    std::optional<std::string> bot = {};  // whose dead letter, when several bots gave up on it
    template <typename F> void fields(F& f) { f.u64("seq", seq); f.opt_name("bot", bot); }
};
struct FetchRequest {
    static constexpr std::string_view k_op = "fetch";
    static constexpr bool k_needs_identity = true;
    std::string channel;                  // a durable subscription of this connection's bot
    std::optional<std::uint64_t> max;     // 1..1000, default 100
    std::optional<std::uint64_t> wait_ms; // wait this long for a first message; default 0
    template <typename F> void fields(F& f) {
        f.name("channel", channel);
        f.opt_u64("max", max);
        f.opt_u64("wait_ms", wait_ms);
    }
};
struct ChannelRetentionRequest {
    static constexpr std::string_view k_op = "channel.retention";
    static constexpr bool k_needs_identity = true;
    std::string name;
    std::optional<std::uint64_t> max_age_ms = {};    // absent: the daemon's default; 0: no age limit
    std::optional<std::uint64_t> max_messages = {};  // absent: the daemon's default; 0: no count limit
    template <typename F> void fields(F& f) {
        f.name("name", name);
        f.opt_u64("max_age_ms", max_age_ms);
        f.opt_u64("max_messages", max_messages);
    }
};
struct ConsumersRequest {
    static constexpr std::string_view k_op = "consumers";
    std::optional<std::string> bot;
    std::optional<std::string> channel;
    std::optional<std::string> after = {};      // the last listed subscription's channel, and
    std::optional<std::string> after_bot = {};  // its bot: list from the one after it
    std::optional<std::uint64_t> limit = {};    // 1..1000, default 100
    template <typename F> void fields(F& f) {
        f.opt_name("bot", bot);
        f.opt_name("channel", channel);
        f.opt_name("after", after);
        f.opt_name("after_bot", after_bot);
        f.opt_u64("limit", limit);
    }
};

// Permissions (docs/PROTOCOL.md, "Permissions"): admins only. `bot` and
// `channel` are patterns (a name, a prefix ending in '*', or '*'),
// `permission` is "publish", "read" or "admin"; the core checks them.
struct AclGrantRequest {
    static constexpr std::string_view k_op = "acl.grant";
    static constexpr bool k_needs_identity = true;
    std::string bot;
    std::string permission;
    std::string channel;
    template <typename F> void fields(F& f) {
        f.text("bot", bot);
        f.text("permission", permission);
        f.text("channel", channel);
    }
};
struct AclRevokeRequest {
    static constexpr std::string_view k_op = "acl.revoke";
    static constexpr bool k_needs_identity = true;
    std::string bot;
    std::string permission;
    std::string channel;
    template <typename F> void fields(F& f) {
        f.text("bot", bot);
        f.text("permission", permission);
        f.text("channel", channel);
    }
};
struct AclListRequest {
    static constexpr std::string_view k_op = "acl.list";
    static constexpr bool k_needs_identity = true;
    // The last listed rule, all three or none: list from the one after it
    // (rules are ordered by bot, permission, channel).
    std::optional<std::string> after_bot = {};
    std::optional<std::string> after_permission = {};
    std::optional<std::string> after_channel = {};
    std::optional<std::uint64_t> limit = {};  // 1..1000, default 100
    template <typename F> void fields(F& f) {
        f.opt_text("after_bot", after_bot);
        f.opt_text("after_permission", after_permission);
        f.opt_text("after_channel", after_channel);
        f.opt_u64("limit", limit);
    }
};

using Request = std::variant<HelloRequest, PingRequest, ChannelCreateRequest, ChannelDeleteRequest,
                             ChannelListRequest, SubscribeRequest, UnsubscribeRequest, SubscriptionsRequest,
                             SubscribersRequest, PublishRequest, SendRequest, HistoryRequest, AckRequest,
                             StatsRequest, FeedSyncRequest, MailboxRequest, DlqListRequest, DlqReplayRequest,
                             FetchRequest, ConsumersRequest, ChannelRetentionRequest,
                             WorkflowPutRequest, WorkflowGetRequest,
                             WorkflowListRequest, WorkflowDeleteRequest, RunStartRequest, RunPauseRequest,
                             RunResumeRequest, RunCompleteRequest, RunFailRequest, RunCancelRequest,
                             RunCheckpointRequest, RunHeartbeatRequest, RunGetRequest, RunListRequest,
                             RunStepsRequest, RunCompletedStepsRequest, RunCrashedRequest, StepStartRequest,
                             StepCompleteRequest, StepFailRequest, StepSkipRequest, StepWaitApprovalRequest,
                             StepApproveRequest, AclGrantRequest, AclRevokeRequest, AclListRequest,
                             BackupRequest, ByeRequest>;

// An op is the index of its request type in `Request`: nothing to keep in
// step by hand.
enum class Op : std::size_t {};

inline Op op_of(const Request& request) { return static_cast<Op>(request.index()); }

// Whether requests of type T need a hello identity.
template <typename T>
constexpr bool needs_identity() {
    if constexpr (requires { T::k_needs_identity; }) {
        return T::k_needs_identity;
    } else {
        return false;
    }
}
template <typename T>
inline constexpr bool needs_identity_v = needs_identity<T>();

namespace detail {
template <typename V>
struct OpNames;
template <typename... T>
struct OpNames<std::variant<T...>> {
    static constexpr std::array<std::string_view, sizeof...(T)> names{T::k_op...};
};
}  // namespace detail

// Op names in the order of `Request`.
inline constexpr auto k_op_names = detail::OpNames<Request>::names;

constexpr std::string_view op_name(Op op) {
    const auto index = static_cast<std::size_t>(op);
    return index < k_op_names.size() ? k_op_names[index] : std::string_view("?");
}

constexpr std::optional<Op> op_from_name(std::string_view name) {
    for (std::size_t i = 0; i < k_op_names.size(); ++i) {
        if (k_op_names[i] == name) return static_cast<Op>(i);
    }
    return std::nullopt;
}

// A request of the given op with its fields default-constructed.
Request make_request(Op op);

}  // namespace botbus::bus
