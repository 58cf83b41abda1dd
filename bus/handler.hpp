// Executes decoded requests against the store, inside the daemon's open
// batch, and says what must happen once the batch is committed.
//
// Operation: validates each request against the projected state (which
// includes earlier requests of the same batch), appends its events, and
// encodes its reply. A request that fails validation appends nothing.
// Concurrency: runs on the server's loop thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "bus/codec.hpp"
#include "store/store.hpp"

namespace botbus::bus {

// Per-connection state the server keeps.
struct Session {
    std::optional<std::string> bot;  // set by hello
};

// Server-side counters shown by the stats op.
struct ServerCounters {
    std::uint64_t requests = 0;
    std::uint64_t batches = 0;
    std::uint64_t errors = 0;
    std::uint64_t sessions = 0;
    std::uint64_t dropped_replies = 0;
    std::int64_t started_at_us = 0;
};

struct Outcome {
    std::string reply;
    bool failed = false;
    std::optional<std::string> hello_bot;   // bind the connection to this bot now
    std::optional<std::string> sync_token;  // publish a feed.sync marker after commit
};

class CommandHandler {
public:
    CommandHandler(store::Store& store, const ServerCounters& counters);

    Outcome handle(const Envelope& envelope, const Session& session, store::Batch& batch);

private:
    struct Ctx;
    Outcome hello(Ctx&, const HelloRequest&);
    Outcome ping(Ctx&, const PingRequest&);
    Outcome channel_create(Ctx&, const ChannelCreateRequest&);
    Outcome channel_delete(Ctx&, const ChannelDeleteRequest&);
    Outcome channel_list(Ctx&, const ChannelListRequest&);
    Outcome subscribe(Ctx&, const SubscribeRequest&);
    Outcome unsubscribe(Ctx&, const UnsubscribeRequest&);
    Outcome subscriptions(Ctx&, const SubscriptionsRequest&);
    Outcome subscribers(Ctx&, const SubscribersRequest&);
    Outcome publish(Ctx&, const PublishRequest&);
    Outcome send(Ctx&, const SendRequest&);
    Outcome history(Ctx&, const HistoryRequest&);
    Outcome ack(Ctx&, const AckRequest&);
    Outcome stats(Ctx&, const StatsRequest&);
    Outcome feed_sync(Ctx&, const FeedSyncRequest&);

    store::Seq ensure_channel(Ctx&, const std::string& name, const std::string& producer);

    store::Store& m_store;
    const ServerCounters& m_counters;
};

}  // namespace botbus::bus
