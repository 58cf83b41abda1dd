// Shared by the CommandHandler unit tests: run one request the way the
// server does, in its own batch, and check what every request must satisfy.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>

#include "bus/protocol/codec.hpp"
#include "bus/core/handler.hpp"
#include "store/store.hpp"

namespace botbus::testing {

inline bus::Session as(const std::string& bot) { return bus::Session{bot}; }
inline const bus::Session k_anonymous{};

// Runs one request in its own batch, commits, and decodes the reply. Fails
// the test when a failed request appended events, when the reply does not
// decode, or when Outcome::failed disagrees with it.
inline bus::Reply call_in_batch(bus::CommandHandler& handler, store::Store& store, const bus::Session& session,
                                bus::Request request, std::optional<bus::PackedValue> id = std::nullopt) {
    auto batch = store.begin();
    const bus::Envelope envelope{std::move(id), std::move(request)};
    const auto outcome = handler.handle(envelope, session, batch);
    if (outcome.failed) {
        EXPECT_TRUE(batch.events().empty()) << "a failed request appended events";
    }
    batch.commit();
    if (outcome.reply.empty() && (outcome.fetch_wait || outcome.backup_name)) {
        bus::Reply deferred;  // the server answers it later
        deferred.ok = true;
        return deferred;
    }
    auto reply = bus::decode_reply(outcome.reply);
    if (!reply) {
        ADD_FAILURE() << "the handler's reply does not decode";
        return bus::Reply{};
    }
    EXPECT_EQ(outcome.failed, !reply->ok) << "Outcome::failed disagrees with the reply";
    if (!reply->ok) {
        EXPECT_EQ(outcome.error, reply->error) << "Outcome::error is not the reply's code";
    }
    return std::move(*reply);
}

}  // namespace botbus::testing
