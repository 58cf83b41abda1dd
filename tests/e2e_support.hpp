// Small helpers shared by the end-to-end tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "client/curve_keys.hpp"
#include "daemon_process.hpp"

namespace botbus::testing {

inline client::ClientOptions options_for(const DaemonProcess& daemon) {
    return {daemon.command_endpoint(), daemon.feed_endpoint(), std::chrono::milliseconds(10000)};
}

// Real CURVE keys for a daemon run with --auth curve: the daemon's pair and
// one pair per bot, written as key files in `dir`, with an allowlist file.
class CurveKeys {
public:
    CurveKeys(const std::filesystem::path& dir, const std::vector<std::string>& bots) : m_dir(dir) {
        m_server = client::make_key_pair();
        client::write_key_pair(server_key_file(), m_server);
        for (const auto& bot : bots) {
            m_bots[bot] = client::make_key_pair();
            client::write_key_pair(key_file(bot), m_bots[bot]);
        }
        write_allowlist(bots);
    }

    std::filesystem::path server_key_file() const { return m_dir / "server.key"; }
    std::filesystem::path key_file(const std::string& bot) const { return m_dir / (bot + ".key"); }
    std::filesystem::path allowlist_file() const { return m_dir / "allowlist"; }
    const client::CurveKeyPair& server() const { return m_server; }
    const client::CurveKeyPair& pair(const std::string& bot) const { return m_bots.at(bot); }

    // Rewrites the allowlist with `bots`' keys (each may be mapped to another
    // bot's name with `as`).
    void write_allowlist(const std::vector<std::string>& bots, const std::map<std::string, std::string>& as = {}) const {
        std::ofstream out(allowlist_file(), std::ios::trunc);
        out << "# test allowlist\n";
        for (const auto& bot : bots) {
            const auto renamed = as.find(bot);
            out << (renamed == as.end() ? bot : renamed->second) << " = " << m_bots.at(bot).public_key << '\n';
        }
    }

    std::vector<std::string> daemon_args() const {
        return {"--auth", "curve", "--server-key", server_key_file().string(), "--allowlist",
                allowlist_file().string()};
    }

    // Client options that authenticate with `bot`'s pair (or any pair).
    client::ClientOptions options_for(const DaemonProcess& daemon, const client::CurveKeyPair& pair) const {
        return {daemon.command_endpoint(), daemon.feed_endpoint(), std::chrono::milliseconds(10000),
                client::CurveClientKeys{pair, m_server.public_key}};
    }
    client::ClientOptions options_for(const DaemonProcess& daemon, const std::string& bot) const {
        return options_for(daemon, pair(bot));
    }

private:
    std::filesystem::path m_dir;
    client::CurveKeyPair m_server;
    std::map<std::string, client::CurveKeyPair> m_bots;
};

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
