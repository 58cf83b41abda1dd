// The msgpack codec: one decode and one encode path for every request, reply
// and event, shared by botbusd and the client library.
//
// Untrusted input never throws past decode_request: every problem comes back
// as a WireError with its stable code and a message naming the field.
#pragma once

#include <msgpack.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "bus/protocol/vocabulary.hpp"

namespace botbus::bus {

struct WireError {
    WireError() = default;
    WireError(Errc code_, std::string message_, std::optional<std::uint64_t> retry_after_ms_ = std::nullopt)
        : code(code_), message(std::move(message_)), retry_after_ms(retry_after_ms_) {}

    Errc code = Errc::internal;
    std::string message;
    std::optional<std::uint64_t> retry_after_ms;  // rate_limited: when a retry can succeed
};

// A msgpack value kept in its packed form (message bodies, request ids).
struct PackedValue {
    std::string bytes;
    bool operator==(const PackedValue&) const = default;
};
PackedValue pack_value(const msgpack::object& value);
template <typename T>
PackedValue pack_as_value(const T& value) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, value);
    return PackedValue{std::string(buffer.data(), buffer.size())};
}

// ---- requests. Each lists its fields once; decode and encode both use it.
// Field kinds: name (required, naming rule), opt_name, text (required
// string), opt_text, opt_key (1..256 bytes), u64, opt_u64, opt_u64_list
// (array of them), opt_flag, value (any msgpack), opt_value.

struct HelloRequest {
    std::string bot;
    std::optional<bool> pushes = {};  // false: act as the bot without taking its direct-message pushes
    template <typename F> void fields(F& f) { f.name("bot", bot); f.opt_flag("pushes", pushes); }
};
struct PingRequest {
    template <typename F> void fields(F&) {}
};
struct ChannelCreateRequest {
    std::string name;
    std::optional<std::string> description;
    template <typename F> void fields(F& f) { f.name("name", name); f.opt_text("description", description); }
};
struct ChannelDeleteRequest {
    std::string name;
    template <typename F> void fields(F& f) { f.name("name", name); }
};
struct ChannelListRequest {
    template <typename F> void fields(F&) {}
};
struct SubscribeRequest {
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
    std::string channel;
    std::optional<std::string> bot;
    template <typename F> void fields(F& f) { f.name("channel", channel); f.opt_name("bot", bot); }
};
struct SubscriptionsRequest {
    std::optional<std::string> bot;
    template <typename F> void fields(F& f) { f.opt_name("bot", bot); }
};
struct SubscribersRequest {
    std::string channel;
    template <typename F> void fields(F& f) { f.name("channel", channel); }
};
struct PublishRequest {
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
    template <typename F> void fields(F&) {}
};
struct FeedSyncRequest {
    std::string token;
    template <typename F> void fields(F& f) { f.name("token", token); }
};
struct MailboxRequest {
    std::optional<std::string> bot;  // default: the connection's hello identity
    std::optional<std::string> channel = {};  // a durable subscription's pending messages instead of the mailbox's
    template <typename F> void fields(F& f) { f.opt_name("bot", bot); f.opt_name("channel", channel); }
};
struct DlqListRequest {
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
    std::uint64_t seq = 0;           // the dead message's seq
    std::optional<std::string> bot = {};  // whose dead letter, when several bots gave up on it
    template <typename F> void fields(F& f) { f.u64("seq", seq); f.opt_name("bot", bot); }
};
struct FetchRequest {
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
    std::optional<std::string> bot;
    std::optional<std::string> channel;
    template <typename F> void fields(F& f) { f.opt_name("bot", bot); f.opt_name("channel", channel); }
};

// ---- workflow requests. JSON documents (definition, context, input,
// output, trigger_payload) travel as msgpack values that must convert to
// JSON: string map keys, no binary or ext, finite floats.

struct WorkflowPutRequest {
    PackedValue definition;                 // a map: {name, id?, steps: [{id, name?, depends_on?}], ...}
    std::optional<std::string> owner_type;  // "global" (default) or "bot"
    std::optional<std::string> owner_bot;   // required iff owner_type is "bot"
    std::optional<bool> replace;            // replace a different definition under the same name and owner
    template <typename F> void fields(F& f) {
        f.value("definition", definition);
        f.opt_text("owner_type", owner_type);
        f.opt_name("owner_bot", owner_bot);
        f.opt_flag("replace", replace);
    }
};
struct WorkflowGetRequest {
    std::optional<std::string> workflow_id;  // by id, or
    std::optional<std::string> name;         // by name and owner
    std::optional<std::string> owner_type;
    std::optional<std::string> owner_bot;
    template <typename F> void fields(F& f) {
        f.opt_name("workflow_id", workflow_id);
        f.opt_name("name", name);
        f.opt_text("owner_type", owner_type);
        f.opt_name("owner_bot", owner_bot);
    }
};
struct WorkflowListRequest {
    std::optional<std::string> owner_type;
    std::optional<std::string> owner_bot;
    std::optional<bool> include_archived;
    template <typename F> void fields(F& f) {
        f.opt_text("owner_type", owner_type);
        f.opt_name("owner_bot", owner_bot);
        f.opt_flag("include_archived", include_archived);
    }
};
struct WorkflowDeleteRequest {
    std::string workflow_id;
    std::optional<bool> archive;
    template <typename F> void fields(F& f) { f.name("workflow_id", workflow_id); f.opt_flag("archive", archive); }
};
struct RunStartRequest {
    std::string workflow_id;
    std::optional<std::string> run_id;        // client-chosen: makes a retried start idempotent
    std::optional<std::string> status;        // "pending" or "running" (default)
    std::optional<std::string> trigger_type;  // default "manual"
    std::optional<PackedValue> trigger_payload;
    std::optional<PackedValue> context;  // default {}
    std::optional<std::string> concurrency_key;
    template <typename F> void fields(F& f) {
        f.name("workflow_id", workflow_id);
        f.opt_name("run_id", run_id);
        f.opt_text("status", status);
        f.opt_name("trigger_type", trigger_type);
        f.opt_value("trigger_payload", trigger_payload);
        f.opt_value("context", context);
        f.opt_key("concurrency_key", concurrency_key);
    }
};
struct RunPauseRequest {
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunResumeRequest {
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunCompleteRequest {
    std::string run_id;
    std::optional<PackedValue> context;  // the final context; default: keep the last checkpoint
    template <typename F> void fields(F& f) { f.name("run_id", run_id); f.opt_value("context", context); }
};
struct RunFailRequest {
    std::string run_id;
    std::string error;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); f.text("error", error); }
};
struct RunCancelRequest {
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunCheckpointRequest {
    std::string run_id;
    PackedValue context;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); f.value("context", context); }
};
struct RunHeartbeatRequest {
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunGetRequest {
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunListRequest {
    std::optional<std::string> workflow_id;
    std::optional<std::string> status;
    std::optional<std::uint64_t> limit;  // 1..1000, default 100
    template <typename F> void fields(F& f) {
        f.opt_name("workflow_id", workflow_id);
        f.opt_text("status", status);
        f.opt_u64("limit", limit);
    }
};
struct RunStepsRequest {
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunCompletedStepsRequest {
    std::string run_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); }
};
struct RunCrashedRequest {
    template <typename F> void fields(F&) {}
};
struct StepStartRequest {
    std::string run_id;
    std::string step_id;
    std::optional<std::string> step_name;  // default: the definition's step name
    std::optional<std::uint64_t> attempt;  // default: previous attempts + 1
    std::optional<PackedValue> input;
    template <typename F> void fields(F& f) {
        f.name("run_id", run_id);
        f.name("step_id", step_id);
        f.opt_text("step_name", step_name);
        f.opt_u64("attempt", attempt);
        f.opt_value("input", input);
    }
};
struct StepCompleteRequest {
    std::string run_id;
    std::string step_id;
    std::optional<PackedValue> output;
    template <typename F> void fields(F& f) {
        f.name("run_id", run_id);
        f.name("step_id", step_id);
        f.opt_value("output", output);
    }
};
struct StepFailRequest {
    std::string run_id;
    std::string step_id;
    std::string error;
    std::optional<bool> will_retry;
    template <typename F> void fields(F& f) {
        f.name("run_id", run_id);
        f.name("step_id", step_id);
        f.text("error", error);
        f.opt_flag("will_retry", will_retry);
    }
};
struct StepSkipRequest {
    std::string run_id;
    std::string step_id;
    std::optional<std::string> reason;
    template <typename F> void fields(F& f) {
        f.name("run_id", run_id);
        f.name("step_id", step_id);
        f.opt_text("reason", reason);
    }
};
struct StepWaitApprovalRequest {
    std::string run_id;
    std::string step_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); f.name("step_id", step_id); }
};
struct StepApproveRequest {
    std::string run_id;
    std::string step_id;
    template <typename F> void fields(F& f) { f.name("run_id", run_id); f.name("step_id", step_id); }
};

// Alternatives in the order of enum class Op.
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
                             StepApproveRequest>;

inline Op op_of(const Request& request) { return static_cast<Op>(request.index()); }

struct Envelope {
    std::optional<PackedValue> id;  // echoed verbatim in the reply
    Request request;
};

struct DecodeFailure {
    WireError error;
    std::optional<PackedValue> id;  // when the frame got far enough to have one
};

// Decodes one request frame. Never throws for any input.
std::variant<Envelope, DecodeFailure> decode_request(std::string_view frame, std::size_t max_frame);

// Encodes a request as a client sends it; `id` may be omitted.
std::string encode_request(const Request& request, const std::optional<PackedValue>& id = std::nullopt);

// ---- replies

// Builds a reply map: ok, id (when the request had one), then op fields.
class ReplyBuilder {
public:
    template <typename T>
    ReplyBuilder& field(std::string_view key, const T& value) {
        m_packer.pack(key);
        m_packer.pack(value);
        ++m_count;
        return *this;
    }
    // Adds a key whose value the caller packs next, exactly one value.
    msgpack::packer<msgpack::sbuffer>& key(std::string_view key);
    ReplyBuilder& raw_field(std::string_view key, std::string_view packed_value);
    // The buffer the fields go to, for values packed by other helpers
    // (pack_message) right after key().
    msgpack::sbuffer& buffer() { return m_fields; }

    // Room for about this many bytes of fields, for large replies.
    void reserve(std::size_t bytes);

    std::string finish_ok(const std::optional<PackedValue>& id) const;
    // The fields (and id) alone, as a request map.
    std::string finish_request(const std::optional<PackedValue>& id) const;

private:
    msgpack::sbuffer m_fields{256};  // not sbuffer's default 8 KiB: most replies are tiny
    msgpack::packer<msgpack::sbuffer> m_packer{m_fields};
    std::uint32_t m_count = 0;
};

std::string encode_error_reply(const std::optional<PackedValue>& id, const WireError& error);

// A decoded reply, as the client library sees it.
struct Reply {
    bool ok = false;
    std::optional<std::uint64_t> id;
    Errc error = Errc::internal;
    std::string error_name;  // as sent, kept for codes newer than this build
    std::string message;
    msgpack::object_handle handle;  // the whole reply map

    const msgpack::object* find(std::string_view key) const;
};
std::optional<Reply> decode_reply(std::string_view frame);

// ---- messages, as they appear in history replies, feed events and pushes.

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
};

// Packs `{seq, ts, from, type, body, channel + channel_seq | to + mailbox_seq,
// reply_to?, conversation?, hop?, expires_at?, replay_of?}`, plus `event`
// when given (feed events carry it).
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
    // (this time included), and whether this is a repeat.
    std::uint32_t deliveries = 0;
    bool redelivered = false;
};
std::optional<Message> decode_message(const msgpack::object& map);

}  // namespace botbus::bus
