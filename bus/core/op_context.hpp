// What an op handler is given and what it gives back.
//
// Operation: CommandHandler::handle decodes nothing; it takes one decoded
// request, refuses it when it needs a hello identity the session lacks
// (requests.hpp: k_needs_identity), and calls the handler overload for its
// request type with an OpContext. The handler returns a Result: its typed
// reply, or a WireError. It records what must happen after commit (bind the
// connection, start a delivery, ...) in the context's Effects. The dispatcher
// alone encodes replies and errors, with the request's id.
// Concurrency: one OpContext per request, on the server's loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "bus/core/deliveries.hpp"
#include "bus/protocol/codec.hpp"
#include "store/store.hpp"

namespace botbus::bus {

// Per-connection state the server keeps.
struct Session {
    std::optional<std::string> bot;  // set by hello
    std::string connection = {};     // the routing id: who holds what it fetches
    // The bot the connection's CURVE key belongs to (ZAP's User-Id); hello
    // may name only this bot. Empty on an unauthenticated daemon.
    std::optional<std::string> key_bot = std::nullopt;
    bool req_style = false;          // the current request came REQ-style: nothing may be pushed to it
    std::size_t waiting_fetches = 0; // its fetches that wait for messages (the fetch op bounds them)
};

// A delivering subscription, started once the batch that made it is released.
struct DeliveryBinding {
    Reader reader;  // the server sets `connection` for an ephemeral one
    ReaderSettings settings;
};

// A fetch that found nothing and waits, once released, for messages.
struct FetchWait {
    Reader reader;
    std::size_t max = 0;
    std::int64_t deadline_us = 0;  // UTC µs: then it is answered with what there is
};

// What a request asks of the server once its batch is committed.
struct Effects {
    std::optional<std::string> hello_bot;       // bind the connection to this bot now
    bool hello_pushes = true;                   // and push its direct messages to it:
    bool hello_fan_out = false;                 // every one of them, not a share
    std::size_t hello_credit = 0;               // up to this many unacknowledged (a share)
    bool bye = false;                           // the connection stops being its bot's
    std::optional<std::string> sync_token;      // publish a feed.sync marker after commit
    std::optional<DeliveryBinding> binding;     // start delivering a subscription
    std::optional<std::string> unbind_channel;  // stop delivering this channel to the connection's bot
    std::optional<FetchWait> fetch_wait;        // answer later: the handler's reply is nullopt
    std::optional<std::string> backup_name;     // write a backup once released; answered when it is written
};

// One request's result as the server takes it: the encoded reply and the
// effects.
struct Outcome : Effects {
    Outcome() = default;
    explicit Outcome(std::string reply_) : reply(std::move(reply_)) {}
    // An error reply, already encoded, with its code (counted by the server).
    static Outcome refused(std::string reply, Errc code) {
        Outcome outcome{std::move(reply)};
        outcome.failed = true;
        outcome.error = code;
        return outcome;
    }

    std::string reply;  // empty when the request waits (fetch_wait)
    bool failed = false;
    std::optional<Errc> error;  // set exactly when failed
};

// A value, or the error that stands in for it.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : m_value(std::in_place_index<0>, std::move(value)) {}
    Result(WireError error) : m_value(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return m_value.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& operator*() { return std::get<0>(m_value); }
    const T& operator*() const { return std::get<0>(m_value); }
    T* operator->() { return &std::get<0>(m_value); }
    const T* operator->() const { return &std::get<0>(m_value); }
    const WireError& error() const { return std::get<1>(m_value); }
    WireError take_error() { return std::move(std::get<1>(m_value)); }

private:
    std::variant<T, WireError> m_value;
};

// A check that passes or says why not.
using Check = std::optional<WireError>;

// What every handler overload gets.
struct OpContext {
    const Envelope& envelope;
    const Session& session;
    store::Batch& batch;
    store::Store& store;
    // The hello identity; checked by the dispatcher for ops that need one,
    // empty for an anonymous session.
    const std::string& me;
    Effects effects;

    // The hello identity, when the session has one (ops where it is optional).
    const std::string* identity() const { return session.bot ? &*session.bot : nullptr; }
    // The newest seq this request sees: the batch's last event, or the log's.
    store::Seq last_seq() const { return batch.events().empty() ? store.last_seq() : batch.events().back().seq; }
};

}  // namespace botbus::bus
