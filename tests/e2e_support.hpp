// Small helpers shared by the end-to-end tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"

namespace botbus::testing {

inline client::ClientOptions options_for(const DaemonProcess& daemon) {
    return {daemon.command_endpoint(), daemon.feed_endpoint(), std::chrono::milliseconds(10000)};
}

// An unsigned integer field of a reply; a missing one fails the test.
inline std::uint64_t u64_field(const bus::Reply& reply, std::string_view key) {
    const auto* value = reply.find(key);
    if (!value || value->type != msgpack::type::POSITIVE_INTEGER) {
        ADD_FAILURE() << "reply has no unsigned integer '" << key << "'";
        return 0;
    }
    return value->via.u64;
}

// One counter of the daemon's `stats` reply.
inline std::uint64_t stat(client::Client& client, std::string_view key) {
    return u64_field(client.call_ok(bus::StatsRequest{}), key);
}

// Waits until `done` holds, asking again every few milliseconds; false at
// the deadline. For conditions the daemon reaches on its own timers.
template <typename Predicate>
bool eventually(Predicate done, std::chrono::steady_clock::duration limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a poll interval, not a wait for an outcome
    }
    return done();
}

// Every message of a channel, oldest first, paging through history.
inline std::vector<bus::Message> full_history(client::Client& client, const std::string& channel) {
    std::vector<bus::Message> all;
    for (;;) {
        bus::HistoryRequest request;
        request.channel = channel;
        request.after = all.empty() ? 0 : all.back().seq;
        request.limit = bus::k_max_history_limit;
        auto page = client.history(request);
        for (auto& message : page.messages) all.push_back(std::move(message));
        if (!page.more) return all;
    }
}

}  // namespace botbus::testing
