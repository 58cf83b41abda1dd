#include "daemon/cli_command.hpp"

#include <charconv>
#include <string>
#include <vector>
#include <iostream>

#include "daemon/cli_keys.hpp"

namespace botbus::cli {
namespace {

// "a,b,c": the nodes of a cluster, in the order to try them.
std::vector<std::string> endpoint_list(const std::string& text) {
    std::vector<std::string> endpoints;
    std::size_t start = 0;
    for (;;) {
        const auto comma = text.find(',', start);
        endpoints.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return endpoints;
}

client::Client connect(zmq::context_t& context, const GlobalOptions& options) {
    const auto commands = endpoint_list(options.command_endpoint);
    const auto feeds = endpoint_list(options.feed_endpoint);
    if (commands.size() != feeds.size()) {
        throw UsageError("--command-endpoint names " + std::to_string(commands.size()) + " node(s) and --feed-endpoint " +
                         std::to_string(feeds.size()) + ": give each node's feed, in the same order");
    }
    client::ClientOptions client_options{commands[0], feeds[0], options.timeout, curve_keys_of(options)};
    for (std::size_t i = 1; i < commands.size(); ++i) client_options.other_nodes.push_back({commands[i], feeds[i]});
    try {
        return client::Client(context, std::move(client_options));
    } catch (const zmq::error_t& e) {
        throw UsageError("cannot connect to --command-endpoint '" + options.command_endpoint + "': " + e.what());
    }
}

}  // namespace

std::uint64_t parse_u64(std::string_view text, std::string_view what, std::uint64_t max) {
    std::uint64_t value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end || value > max) {
        throw UsageError(std::string(what) + " must be a whole number from 0 to " + std::to_string(max) + ", not '" +
                         std::string(text) + "'");
    }
    return value;
}

std::optional<std::string> opt_text(const po::variables_map& vm, const char* name) {
    if (!vm.count(name)) return std::nullopt;
    return vm[name].as<std::string>();
}

std::optional<std::uint64_t> opt_u64(const po::variables_map& vm, const char* name, std::uint64_t max) {
    const auto text = opt_text(vm, name);
    if (!text) return std::nullopt;
    return parse_u64(*text, std::string("--") + name, max);
}

std::string cell(const Json& value) {
    if (value.is_null()) return "";
    if (value.is_string()) return escape_text(value.get_ref<const std::string&>());
    return escape_text(value.dump(-1, ' ', false, Json::error_handler_t::replace));
}

Session::Session(GlobalOptions options)
    : m_options(std::move(options)), m_client(connect(m_context, m_options)), m_out(std::cout, m_options.json) {}

client::Client& Session::identified() {
    if (!m_identified) {
        // The CLI acts as the bot but does not consume its mailbox: pushes
        // to this short-lived connection would count as deliveries.
        m_client.hello(m_options.bot, false);
        m_identified = true;
    }
    return m_client;
}

}  // namespace botbus::cli
