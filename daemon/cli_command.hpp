// What every botbus CLI command shares: the connection to botbusd
// (Session), the parsed command line (Invocation), the command table entry
// (CommandSpec), exit statuses and strict argument parsing.
//
// Single-threaded, like the rest of the CLI. Commands throw: UsageError
// (exit 2), Failure (its own status), client::ReplyError (1) and
// client::TimeoutError (3) are turned into exit statuses by main.
#pragma once

#include <boost/program_options.hpp>

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.hpp"
#include "daemon/cli_output.hpp"

namespace botbus::cli {

namespace po = boost::program_options;
using Millis = client::Millis;

inline constexpr int k_exit_error = 1;
inline constexpr int k_exit_usage = 2;
inline constexpr int k_exit_timeout = 3;

// Longest --timeout / --for accepted: about 24 days, far from overflowing a
// steady_clock deadline.
inline constexpr std::uint64_t k_max_millis = std::numeric_limits<std::int32_t>::max();

// Bad command line: exit 2 with a usage line.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A failure with its own exit status and message.
class Failure : public std::runtime_error {
public:
    Failure(int exit_code, const std::string& message) : std::runtime_error(message), m_exit_code(exit_code) {}
    int exit_code() const { return m_exit_code; }

private:
    int m_exit_code;
};

struct GlobalOptions {
    std::string command_endpoint;
    std::string feed_endpoint;
    std::string bot;
    Millis timeout{5000};
    bool json = false;
    std::string key_file;    // --curve-key: this bot's CURVE key pair file
    std::string server_key;  // --server-key: the daemon's public key (a .pub file or 40 Z85 characters)
};

// Strict unsigned parsing: boost's lexical_cast would take "-1" as 2^64-1.
std::uint64_t parse_u64(std::string_view text, std::string_view what,
                        std::uint64_t max = std::numeric_limits<std::uint64_t>::max());

std::optional<std::string> opt_text(const po::variables_map& vm, const char* name);
std::optional<std::uint64_t> opt_u64(const po::variables_map& vm, const char* name,
                                     std::uint64_t max = std::numeric_limits<std::uint64_t>::max());

// A JSON value as one table cell or value: strings as text, the rest as
// compact JSON, null as empty; escaped for the terminal.
std::string cell(const Json& value);

// Reads a list op's pages (docs/PROTOCOL.md, "Paging") until `more` is
// false or `max_items` are in: returns the first page's fields with the
// items of every page under `list_key`, without `more`. `next_page(request,
// last_item, page)` sets the request's cursor for the page after `page`.
template <typename Request, typename NextPage>
Json read_all_pages(client::Client& client, Request request, const char* list_key, NextPage next_page,
                    std::size_t max_items = std::numeric_limits<std::size_t>::max()) {
    Json all;
    for (;;) {
        const auto page = reply_fields(client.call_ok(request));
        const auto items = page.contains(list_key) ? page[list_key] : Json::array();
        if (all.is_null()) {
            all = page;
            all[list_key] = Json::array();
        }
        for (const auto& item : items) {
            if (all[list_key].size() < max_items) all[list_key].push_back(item);
        }
        // A page with more always holds an item; an empty one would loop.
        if (!page.value("more", false) || items.empty() || all[list_key].size() >= max_items) break;
        next_page(request, items.back(), page);
    }
    all.erase("more");
    return all;
}

// One connection to botbusd; says hello only for commands that act as a bot.
class Session {
public:
    explicit Session(GlobalOptions options);

    client::Client& client() { return m_client; }
    // The client after hello as --as; the daemon takes that as the sender.
    client::Client& identified();
    Printer& out() { return m_out; }
    const GlobalOptions& options() const { return m_options; }

private:
    GlobalOptions m_options;
    zmq::context_t m_context;
    client::Client m_client;
    Printer m_out;
    bool m_identified = false;
};

struct Invocation {
    po::variables_map vm;
    std::vector<std::string> args;  // positional arguments after the command
};

struct CommandSpec {
    std::string_view name;      // "tail", or "group action" ("channel create")
    std::string_view synopsis;  // after "botbus [global options] "
    std::string_view summary;
    std::size_t min_args;
    std::size_t max_args;
    void (*options)(po::options_description&);
    int (*run)(Session&, const Invocation&);
};

}  // namespace botbus::cli
