// botbus: the command-line client of botbusd. Parses `botbus [global
// options] COMMAND [args]`, runs one command through the client library and
// prints the result for people or, with --json, one JSON object per line.
// The workflow commands live in cli_workflow.cpp; what commands share
// (Session, CommandSpec, exit statuses) in cli_command.hpp.
//
// Exit status: 0 done, 1 the daemon answered with an error (or another
// failure), 2 usage error, 3 the daemon did not answer in time.
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.hpp"
#include "daemon/cli_acl.hpp"
#include "daemon/cli_command.hpp"
#include "daemon/cli_keys.hpp"
#include "daemon/cli_output.hpp"
#include "daemon/cli_mailbox.hpp"
#include "daemon/cli_workflow.hpp"

namespace botbus::cli {
namespace {

// ---- bodies

void body_options(po::options_description& d) {
    d.add_options()
        ("type", po::value<std::string>()->value_name("T"), "message type (default: text)")
        ("key", po::value<std::string>()->value_name("KEY"),
         "idempotency key: a retry with the same key returns the first seq and stores nothing")
        ("reply-to", po::value<std::string>()->value_name("SEQ"), "the seq of the message this one answers")
        ("json-body", "BODY is JSON; it travels as the msgpack value (map, array, number...) it describes");
}

// BODY from the argument, or all of stdin (less one trailing newline).
bus::PackedValue read_body(const Invocation& in, std::size_t index) {
    std::string text;
    if (in.args.size() > index) {
        text = in.args[index];
    } else {
        if (isatty(STDIN_FILENO)) std::cerr << "botbus: reading the body from stdin (end with Ctrl-D)\n";
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
        if (!text.empty() && text.back() == '\n') text.pop_back();
    }
    if (!in.vm.count("json-body")) return bus::pack_as_value(text);
    const auto json = Json::parse(text, nullptr, false);
    if (json.is_discarded()) throw UsageError("--json-body: BODY is not valid JSON");
    const auto bytes = Json::to_msgpack(json);
    return bus::PackedValue{std::string(bytes.begin(), bytes.end())};
}

void print_ack(Session& s, std::string_view verb, std::string_view stream_key, const client::Ack& ack) {
    if (s.out().json()) {
        Json json = Json::object();
        json["seq"] = ack.seq;
        json[std::string(stream_key)] = ack.stream_seq;
        json["ts"] = ack.ts_us;
        json["duplicate"] = ack.duplicate;
        s.out().object(json);
        return;
    }
    s.out().line(std::string(verb) + " seq=" + std::to_string(ack.seq) + ' ' + std::string(stream_key) + '=' +
                 std::to_string(ack.stream_seq) + (ack.duplicate ? " (duplicate)" : ""));
}

int run_publish(Session& s, const Invocation& in) {
    const auto body = read_body(in, 1);
    const auto ack = s.identified().publish(in.args[0], body, opt_text(in.vm, "type").value_or("text"),
                                            opt_text(in.vm, "key"), opt_u64(in.vm, "reply-to"));
    print_ack(s, "published", "channel_seq", ack);
    return 0;
}

int run_send(Session& s, const Invocation& in) {
    const auto body = read_body(in, 1);
    const auto ack = s.identified().send(in.args[0], body, opt_text(in.vm, "type").value_or("text"),
                                         opt_text(in.vm, "key"), opt_u64(in.vm, "reply-to"));
    print_ack(s, "sent", "mailbox_seq", ack);
    return 0;
}

// ---- reading messages

void tail_options(po::options_description& d) {
    d.add_options()
        ("from", po::value<std::string>()->value_name("SEQ"),
         "first deliver every stored message after this seq (0: from the start), then continue live; "
         "default: only messages published from now on")
        ("count", po::value<std::string>()->value_name("N"), "exit after N messages")
        ("for", po::value<std::string>()->value_name("MS"), "exit once no message arrived for MS milliseconds");
}

int run_tail(Session& s, const Invocation& in) {
    const auto from = opt_u64(in.vm, "from");
    const auto count = opt_u64(in.vm, "count");
    const auto idle = opt_u64(in.vm, "for", k_max_millis);
    if (count && *count == 0) return 0;
    auto& client = s.client();
    // A ping first tells a silent daemon apart from a silent feed.
    client.call_ok(bus::PingRequest{});
    std::optional<client::Subscription> subscription;
    try {
        subscription.emplace(client, in.args[0], from);
    } catch (const zmq::error_t& e) {
        throw UsageError("cannot connect to --feed-endpoint '" + s.options().feed_endpoint + "': " + e.what());
    } catch (const client::TimeoutError&) {
        throw Failure(k_exit_timeout, "the feed at " + s.options().feed_endpoint +
                                          " did not confirm the subscription within " +
                                          std::to_string(s.options().timeout.count()) +
                                          " ms (is --feed-endpoint the daemon's feed?)");
    }
    const Millis wait = idle ? Millis(static_cast<Millis::rep>(*idle)) : Millis(1000);
    for (std::uint64_t delivered = 0; !count || delivered < *count;) {
        const auto message = subscription->next(wait);
        if (!message) {
            if (idle) break;
            continue;
        }
        s.out().message(*message);
        s.out().flush();
        ++delivered;
    }
    return 0;
}

void history_options(po::options_description& d) {
    d.add_options()
        ("peer", po::value<std::string>()->value_name("BOT"), "the direct messages between --as and BOT")
        ("inbox", "every direct message to --as")
        ("after", po::value<std::string>()->value_name("SEQ"), "only messages after this seq")
        ("before", po::value<std::string>()->value_name("SEQ"), "only messages before this seq")
        ("limit", po::value<std::string>()->value_name("N"), "at most N messages (1-1000, default 100)")
        ("desc", "newest first");
}

int run_history(Session& s, const Invocation& in) {
    bus::HistoryRequest request;
    if (!in.args.empty()) request.channel = in.args[0];
    request.peer = opt_text(in.vm, "peer");
    if (in.vm.count("inbox")) request.inbox = true;
    const int scopes = (request.channel ? 1 : 0) + (request.peer ? 1 : 0) + (request.inbox ? 1 : 0);
    if (scopes != 1) throw UsageError("history needs exactly one of CHANNEL, --peer BOT or --inbox");
    if (!request.channel) request.bot = s.options().bot;
    request.after = opt_u64(in.vm, "after");
    request.before = opt_u64(in.vm, "before");
    request.limit = opt_u64(in.vm, "limit");
    const bool desc = in.vm.count("desc") > 0;
    if (desc) request.order = "desc";

    const auto page = s.client().history(request);
    for (const auto& message : page.messages) s.out().message(message);
    if (page.more && !page.messages.empty()) {
        s.out().flush();
        std::cerr << "botbus: more messages: continue with " << (desc ? "--before " : "--after ")
                  << page.messages.back().seq << '\n';
    }
    return 0;
}

// ---- channels and subscriptions

int run_channels(Session& s, const Invocation&) {
    const auto channels = read_all_pages(s.client(), bus::ChannelListRequest{}, "channels",
                                         [](bus::ChannelListRequest& request, const Json& last, const Json&) {
                                             request.after = last.value("name", std::string());
                                         })["channels"];
    if (s.out().json()) {
        for (const auto& channel : channels) s.out().object(channel);
        return 0;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "SUBSCRIBERS", "LAST_SEQ", "DESCRIPTION"}};
    for (const auto& channel : channels) {
        auto field = [&channel](const char* key) { return channel.contains(key) ? cell(channel[key]) : ""; };
        rows.push_back({field("name"), field("subscribers"), field("last_channel_seq"), field("description")});
    }
    std::cout << table(rows);
    return 0;
}

void channel_create_options(po::options_description& d) {
    d.add_options()("description", po::value<std::string>()->value_name("D"), "what the channel is for");
}

int run_channel_create(Session& s, const Invocation& in) {
    const auto reply =
        s.identified().call_ok(bus::ChannelCreateRequest{in.args[0], opt_text(in.vm, "description")});
    const auto fields = reply_fields(reply);
    if (s.out().json()) {
        s.out().object(fields);
    } else {
        s.out().line("created channel " + in.args[0] + " seq=" + cell(fields.value("seq", Json())));
    }
    return 0;
}

int run_channel_delete(Session& s, const Invocation& in) {
    const auto reply = s.identified().call_ok(bus::ChannelDeleteRequest{in.args[0]});
    auto json = Json{{"channel", in.args[0]}};
    json.update(reply_fields(reply));
    if (s.out().json()) {
        s.out().object(json);
    } else {
        s.out().line("deleted channel " + in.args[0] + " seq=" + cell(json.value("seq", Json())));
    }
    return 0;
}

void bot_option(po::options_description& d) {
    d.add_options()("bot", po::value<std::string>()->value_name("B"), "the bot (default: --as)");
}

// subscribe (true) or unsubscribe (false); the reply's "subscribed" /
// "unsubscribed" says whether anything changed.
int change_subscription(Session& s, const Invocation& in, bool subscribe) {
    const auto bot = opt_text(in.vm, "bot");
    auto& client = s.identified();
    const auto reply = subscribe ? client.call_ok(bus::SubscribeRequest{in.args[0], bot})
                                 : client.call_ok(bus::UnsubscribeRequest{in.args[0], bot});
    const auto& who = bot ? *bot : s.options().bot;
    auto json = Json{{"channel", in.args[0]}, {"bot", who}};
    json.update(reply_fields(reply));
    if (s.out().json()) {
        s.out().object(json);
        return 0;
    }
    const bool changed = json.value(subscribe ? "subscribed" : "unsubscribed", false);
    const auto seq = " seq=" + cell(json.value("seq", Json()));
    if (subscribe) {
        s.out().line(changed ? "subscribed " + who + " to " + in.args[0] + seq
                             : who + " is already subscribed to " + in.args[0]);
    } else {
        s.out().line(changed ? "unsubscribed " + who + " from " + in.args[0] + seq
                             : who + " is not subscribed to " + in.args[0]);
    }
    return 0;
}

int run_subscribe(Session& s, const Invocation& in) { return change_subscription(s, in, true); }
int run_unsubscribe(Session& s, const Invocation& in) { return change_subscription(s, in, false); }

// Prints fields holding one list: one item per line, or the fields as JSON.
int print_list(Session& s, const Json& fields, const char* list_key) {
    if (s.out().json()) {
        s.out().object(fields);
        return 0;
    }
    if (fields.contains(list_key)) {
        for (const auto& item : fields[list_key]) s.out().line(cell(item));
    }
    return 0;
}

// Cursor of the name lists: the last name.
template <typename Request>
void after_last_name(Request& request, const Json& last, const Json&) {
    request.after = last.get<std::string>();
}

int run_subscriptions(Session& s, const Invocation& in) {
    const auto bot = opt_text(in.vm, "bot").value_or(s.options().bot);
    return print_list(s, read_all_pages(s.client(), bus::SubscriptionsRequest{bot}, "channels",
                                        after_last_name<bus::SubscriptionsRequest>),
                      "channels");
}

int run_subscribers(Session& s, const Invocation& in) {
    return print_list(s, read_all_pages(s.client(), bus::SubscribersRequest{in.args[0]}, "bots",
                                        after_last_name<bus::SubscribersRequest>),
                      "bots");
}

// ---- the rest

void ack_options(po::options_description& d) {
    d.add_options()("only", "acknowledge the messages SEQ... one by one, not everything up to SEQ");
}

int run_ack(Session& s, const Invocation& in) {
    bus::AckRequest request;
    if (in.vm.count("only")) {
        std::vector<std::uint64_t> seqs;
        for (const auto& arg : in.args) seqs.push_back(parse_u64(arg, "SEQ"));
        request.seqs = std::move(seqs);
    } else {
        if (in.args.size() != 1) throw UsageError("ack takes one SEQ (or several with --only)");
        request.upto = parse_u64(in.args[0], "SEQ");
    }
    const auto fields = reply_fields(s.identified().call_ok(request));
    if (s.out().json()) {
        s.out().object(fields);
    } else {
        s.out().line("acked up to " + cell(fields.value("acked", Json())) + " for " + s.options().bot);
    }
    return 0;
}

int run_stats(Session& s, const Invocation&) {
    const auto fields = reply_fields(s.client().call_ok(bus::StatsRequest{}));
    if (s.out().json()) {
        s.out().object(fields);
        return 0;
    }
    // Durations (_us) and sizes (_bytes) in units people read; --json keeps the raw figures.
    auto ends_with = [](const std::string& key, std::string_view suffix) {
        return key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    for (const auto& [key, value] : fields.items()) {
        if (value.is_number_unsigned() && ends_with(key, "_us")) {
            s.out().line(key.substr(0, key.size() - 3) + ": " + human_duration(value.get<std::uint64_t>()));
        } else if (value.is_number_unsigned() && ends_with(key, "_bytes")) {
            s.out().line(key + ": " + human_size(value.get<std::uint64_t>()));
        } else {
            s.out().line(key + ": " + cell(value));
        }
    }
    return 0;
}

void backup_options(po::options_description& d) {
    d.add_options()("wait", po::value<std::string>()->value_name("MS")->default_value("3600000"),
                    "how long the copy may take, in milliseconds (a large database takes minutes)");
}

int run_backup(Session& s, const Invocation& in) {
    const auto wait = Millis(static_cast<Millis::rep>(parse_u64(in.vm["wait"].as<std::string>(), "--wait", k_max_millis)));
    const auto id = s.client().send_request(bus::BackupRequest{in.args[0]});
    const auto reply = s.client().wait_reply(id, "backup", wait);
    if (!reply.ok) throw client::ReplyError(reply.error, reply.error_name, reply.message);
    const auto fields = reply_fields(reply);
    if (s.out().json()) {
        s.out().object(fields);
        return 0;
    }
    s.out().line("wrote " + fields["path"].get<std::string>() + ": " + human_size(fields["bytes"].get<std::uint64_t>()) +
                 ", the log up to seq " + std::to_string(fields["last_seq"].get<std::uint64_t>()) + " (" +
                 std::to_string(fields["events"].get<std::uint64_t>()) + " events), in " +
                 human_duration(fields["duration_us"].get<std::uint64_t>()));
    s.out().line("check it with: botbusd verify " + fields["path"].get<std::string>());
    return 0;
}

int run_ping(Session& s, const Invocation&) {
    const auto start = std::chrono::steady_clock::now();
    const auto fields = reply_fields(s.client().call_ok(bus::PingRequest{}));
    const auto rtt_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
    if (s.out().json()) {
        auto json = fields;
        json["rtt_us"] = rtt_us;
        s.out().object(json);
    } else {
        s.out().line("pong from " + s.client().options().command_endpoint + " in " + std::to_string(rtt_us / 1000) + '.' +
                     std::to_string(rtt_us % 1000 / 100) + " ms");
    }
    return 0;
}

constexpr CommandSpec k_commands[] = {
    {"publish", "publish CHANNEL [BODY] [--type T] [--key KEY] [--reply-to SEQ] [--json-body]",
     "publish a message (no BODY: stdin)", 1, 2, body_options, run_publish},
    {"send", "send BOT [BODY] [--type T] [--key KEY] [--reply-to SEQ] [--json-body]",
     "message a bot (no BODY: stdin)", 1, 2, body_options, run_send},
    {"tail", "tail CHANNEL [--from SEQ] [--count N] [--for MS]", "follow a channel's messages", 1, 1,
     tail_options, run_tail},
    {"history", "history (CHANNEL | --peer BOT | --inbox) [--after SEQ] [--before SEQ] [--limit N] [--desc]",
     "list stored messages, oldest first", 0, 1, history_options, run_history},
    {"channels", "channels", "list channels", 0, 0, nullptr,
     run_channels},
    {"channel create", "channel create NAME [--description D]", "create a channel", 1, 1, channel_create_options,
     run_channel_create},
    {"channel delete", "channel delete NAME", "delete a channel", 1, 1, nullptr, run_channel_delete},
    {"subscribe", "subscribe CHANNEL [--bot B]", "subscribe a bot to a channel", 1, 1, bot_option, run_subscribe},
    {"unsubscribe", "unsubscribe CHANNEL [--bot B]", "unsubscribe a bot from a channel", 1, 1, bot_option,
     run_unsubscribe},
    {"subscriptions", "subscriptions [--bot B]", "list a bot's subscriptions", 0, 0, bot_option,
     run_subscriptions},
    {"subscribers", "subscribers CHANNEL", "list a channel's subscribers", 1, 1, nullptr, run_subscribers},
    {"lag", "lag [--bot B] [--channel C]", "show every durable subscription's lag; stuck ones flagged", 0, 0,
     lag_options, run_lag},
    {"ack", "ack SEQ | ack --only SEQ...", "ack direct messages up to SEQ (or just these)", 1, 1000, ack_options,
     run_ack},
    {"mailbox", "mailbox [--bot B]", "show a bot's unacknowledged direct messages and deliveries", 0, 0,
     mailbox_options, run_mailbox},
    {"dlq", "dlq [--bot B] [--after SEQ] [--limit N]", "list dead letters, oldest first", 0, 0, dlq_options,
     run_dlq},
    {"dlq replay", "dlq replay SEQ", "send dead message SEQ back to its mailbox", 1, 1, nullptr, run_dlq_replay},
    {"stats", "stats", "print the daemon's counters", 0, 0, nullptr, run_stats},
    {"ping", "ping", "check that the daemon answers", 0, 0, nullptr, run_ping},
    {"backup", "backup NAME [--wait MS]",
     "write a consistent copy of the live database as NAME in the daemon's backup directory", 1, 1, backup_options,
     run_backup},
    // No connection: run before a session is made (run is null).
    {"keygen", "keygen FILE", "write a CURVE key pair to FILE (mode 0600) and its public key to FILE.pub", 1, 1,
     nullptr, nullptr},
    {"workflow put", "workflow put FILE [--owner-bot B] [--replace]",
     "store a workflow definition from a JSON file (-: stdin)", 1, 1, workflow_put_options, run_workflow_put},
    {"workflow show", "workflow show ID", "show a workflow and its definition", 1, 1, nullptr, run_workflow_show},
    {"workflow delete", "workflow delete ID [--archive]", "delete (or archive) a workflow", 1, 1,
     workflow_delete_options, run_workflow_delete},
    {"workflows", "workflows [--owner-bot B] [--all]", "list workflows", 0, 0, workflows_options, run_workflows},
    {"runs", "runs [--workflow ID] [--status S] [--limit N]", "list workflow runs, newest first", 0, 0, runs_options,
     run_runs},
    {"run", "run RUN_ID", "show a run and its steps as a timeline", 1, 1, nullptr, run_run},
    {"watch", "watch RUN_ID [--for MS]", "follow a run live until it ends", 1, 1, watch_options, run_watch},
    {"acl grant", "acl grant BOT PERMISSION CHANNEL",
     "let BOT (a name, prefix* or *) publish, read or admin CHANNEL (admins only)", 3, 3, nullptr, run_acl_grant},
    {"acl revoke", "acl revoke BOT PERMISSION CHANNEL", "take a granted rule back (admins only)", 3, 3, nullptr,
     run_acl_revoke},
    {"acl list", "acl list", "list the permission rules in force (admins only)", 0, 0, nullptr, run_acl_list},
};

// Commands with actions: "channel create", "workflow put".
// "dlq" is a command of its own too: alone it lists.
constexpr std::string_view k_command_groups[] = {"channel", "workflow", "dlq", "acl"};

const CommandSpec* find_command(std::string_view name) {
    for (const auto& command : k_commands) {
        if (command.name == name) return &command;
    }
    return nullptr;
}

constexpr std::string_view k_general_usage = "usage: botbus [global options] COMMAND [args]";

std::string usage_line(const CommandSpec* command) {
    if (!command) return std::string(k_general_usage) + "   (botbus --help lists the commands)";
    return "usage: botbus [global options] " + std::string(command->synopsis);
}

po::options_description global_options(GlobalOptions& options, std::string& timeout) {
    po::options_description d("global options");
    d.add_options()
        ("command-endpoint",
         po::value(&options.command_endpoint)->value_name("ENDPOINT")->default_value("tcp://127.0.0.1:7440"),
         "botbusd's command socket (env BOTBUS_COMMAND_ENDPOINT); several nodes of one cluster, comma-separated, "
         "are tried in turn when one does not answer")
        ("feed-endpoint",
         po::value(&options.feed_endpoint)->value_name("ENDPOINT")->default_value("tcp://127.0.0.1:7441"),
         "botbusd's feed socket, for tail and watch (env BOTBUS_FEED_ENDPOINT); one per --command-endpoint node")
        ("as", po::value(&options.bot)->value_name("BOT")->default_value("botbus-cli"),
         "the bot to act as: sender of publish/send, owner of the inbox (env BOTBUS_BOT)")
        ("timeout", po::value(&timeout)->value_name("MS")->default_value("5000"),
         "how long to wait for each answer from the daemon")
        ("curve-key", po::value(&options.key_file)->value_name("FILE"),
         "this bot's CURVE key pair file (botbus keygen), for a daemon run with --auth curve (env BOTBUS_KEY)")
        ("server-key", po::value(&options.server_key)->value_name("KEY"),
         "the daemon's CURVE public key: its .pub file or the 40-character key (env BOTBUS_SERVER_KEY)")
        ("json", po::bool_switch(&options.json), "print one JSON object per line")
        ("help,h", "show help (botbus COMMAND --help: a command's options)")
        ("version", "show the version");
    return d;
}

void print_help(const po::options_description& global) {
    std::cout << "botbus: publish, read and manage messages on a botbusd message bus\n\n"
              << k_general_usage << "\n       botbus COMMAND --help\n\ncommands:\n";
    constexpr std::size_t k_column = 43;
    for (const auto& command : k_commands) {
        // The synopsis up to the command's options: "tail CHANNEL".
        const auto head = "  " + std::string(command.synopsis.substr(0, command.synopsis.find(" [--")));
        std::cout << head;
        if (head.size() + 2 > k_column) {
            std::cout << '\n' << std::string(k_column, ' ');
        } else {
            std::cout << std::string(k_column - head.size(), ' ');
        }
        std::cout << command.summary << '\n';
    }
    std::cout << '\n'
              << global
              << "\nTimestamps (ts) are UTC in text output and microseconds since the Unix epoch\nin JSON output.\n"
                 "Put -- before a BODY that starts with '-'.\n"
                 "Exit status: 0 done, 1 the daemon answered with an error, 2 usage error,\n"
                 "3 the daemon did not answer within --timeout.\n";
}

void print_command_help(const CommandSpec& command, const po::options_description& options) {
    std::cout << usage_line(&command) << "\n\n" << command.summary << ".\n";
    if (!options.options().empty()) std::cout << '\n' << options;
    // A command that is also a group ("dlq") names its actions too.
    bool first = true;
    for (const auto& other : k_commands) {
        if (!other.name.starts_with(std::string(command.name) + ' ')) continue;
        if (first) std::cout << "\nalso:\n";
        first = false;
        std::cout << "  botbus " << other.synopsis << "   " << other.summary << '\n';
    }
    std::cout << "\nGlobal options (botbus --help) go before or after the command.\n";
}

// The actions of a command group: "put, show or delete".
std::string group_actions(std::string_view group) {
    std::vector<std::string_view> actions;
    for (const auto& command : k_commands) {
        if (command.name.starts_with(group) && command.name.size() > group.size() && command.name[group.size()] == ' ') {
            actions.push_back(command.name.substr(group.size() + 1));
        }
    }
    std::string text;
    for (std::size_t i = 0; i < actions.size(); ++i) {
        if (i > 0) text += i + 1 == actions.size() ? " or " : ", ";
        text += actions[i];
    }
    return text;
}

// `botbus channel --help`: every action's usage, then their options.
void print_group_help(std::string_view group) {
    std::vector<const CommandSpec*> members;
    for (const auto& command : k_commands) {
        if (command.name.starts_with(group) && command.name.size() > group.size() && command.name[group.size()] == ' ') {
            members.push_back(&command);
        }
    }
    for (const auto* command : members) std::cout << usage_line(command) << '\n';
    for (const auto* command : members) {
        if (!command->options) continue;
        po::options_description options(std::string(command->name) + " options");
        command->options(options);
        std::cout << '\n' << options;
    }
}

std::string environment_option(const std::string& variable) {
    if (variable == "BOTBUS_COMMAND_ENDPOINT") return "command-endpoint";
    if (variable == "BOTBUS_FEED_ENDPOINT") return "feed-endpoint";
    if (variable == "BOTBUS_BOT") return "as";
    if (variable == "BOTBUS_KEY") return "curve-key";
    if (variable == "BOTBUS_SERVER_KEY") return "server-key";
    return "";
}

// What main needs to word an error: the command, once known, and the options.
struct RunState {
    const CommandSpec* command = nullptr;
    GlobalOptions options;
};

int run(int argc, const char* const argv[], RunState& state) {
    // Everything after "--" is positional; boost forgets the "--" in its
    // first pass, so keep that part away from it.
    int parse_argc = argc;
    std::vector<std::string> literal;
    for (int i = 1; i < argc; ++i) {
        if (std::string_view(argv[i]) == "--") {
            parse_argc = i;
            literal.assign(argv + i + 1, argv + argc);
            break;
        }
    }

    std::string timeout = "5000";
    const auto global = global_options(state.options, timeout);
    po::options_description hidden;
    hidden.add_options()("command", po::value<std::string>())("args", po::value<std::vector<std::string>>());
    po::options_description all;
    all.add(global).add(hidden);
    po::positional_options_description positional;
    positional.add("command", 1).add("args", -1);

    po::variables_map vm;
    std::vector<std::string> rest;
    try {
        const auto parsed =
            po::command_line_parser(parse_argc, argv).options(all).positional(positional).allow_unregistered().run();
        po::store(parsed, vm);
        po::store(po::parse_environment(global, environment_option), vm);
        po::notify(vm);
        rest = po::collect_unrecognized(parsed.options, po::include_positional);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }
    state.options.timeout = Millis(static_cast<Millis::rep>(parse_u64(timeout, "--timeout", k_max_millis)));

    if (vm.count("version")) {
        std::cout << "botbus " << BOTBUS_VERSION << " (protocol " << bus::k_protocol_version << ")\n";
        return 0;
    }
    const bool help = vm.count("help") > 0;
    if (!vm.count("command")) {
        if (!help && !literal.empty()) throw UsageError("no command before --");
        if (!help) throw UsageError("no command given");
        print_help(global);
        return 0;
    }
    auto name = vm["command"].as<std::string>();
    if (rest.empty() || rest.front() != name) {
        throw UsageError("unknown option '" + (rest.empty() ? name : rest.front()) +
                         "' (a command's own options go after the command)");
    }
    rest.erase(rest.begin());
    if (std::find(std::begin(k_command_groups), std::end(k_command_groups), name) != std::end(k_command_groups)) {
        if ((rest.empty() || rest.front().starts_with('-')) && find_command(name)) {
            // The group's own command ("dlq").
        } else if (rest.empty() || rest.front().starts_with('-')) {
            if (help) {
                print_group_help(name);
                return 0;
            }
            throw UsageError(name + " needs an action: " + group_actions(name));
        } else {
            name += ' ' + rest.front();
            rest.erase(rest.begin());
        }
    }
    state.command = find_command(name);
    if (!state.command) throw UsageError("unknown command '" + name + "'");
    const auto& command = *state.command;

    po::options_description options("options");
    if (command.options) command.options(options);
    if (help) {
        print_command_help(command, options);
        return 0;
    }
    if (!literal.empty()) {
        rest.emplace_back("--");
        rest.insert(rest.end(), literal.begin(), literal.end());
    }
    Invocation in;
    try {
        po::options_description command_all;
        command_all.add(options).add(hidden);
        po::positional_options_description args;
        args.add("args", -1);
        po::store(po::command_line_parser(rest).options(command_all).positional(args).run(), in.vm);
        po::notify(in.vm);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }
    if (in.vm.count("args")) in.args = in.vm["args"].as<std::vector<std::string>>();
    if (in.args.size() < command.min_args) throw UsageError("too few arguments");
    if (in.args.size() > command.max_args) throw UsageError("too many arguments");

    if (!command.run) return run_keygen(in.args[0], state.options.json);
    Session session(state.options);
    return command.run(session, in);
}

}  // namespace
}  // namespace botbus::cli

int main(int argc, char* argv[]) {
    using namespace botbus;
    cli::RunState state;
    try {
        return cli::run(argc, argv, state);
    } catch (const cli::UsageError& e) {
        std::cerr << "botbus: " << e.what() << '\n' << cli::usage_line(state.command) << '\n';
        return cli::k_exit_usage;
    } catch (const client::ReplyError& e) {
        std::cerr << "botbus: " << e.what() << '\n';  // "<code>: <message>"
        return cli::k_exit_error;
    } catch (const client::TimeoutError&) {
        std::cerr << "botbus: the daemon at " << state.options.command_endpoint << " did not answer within "
                  << state.options.timeout.count() << " ms\n";
        return cli::k_exit_timeout;
    } catch (const cli::Failure& e) {
        std::cerr << "botbus: " << e.what() << '\n';
        return e.exit_code();
    } catch (const std::exception& e) {
        std::cerr << "botbus: " << e.what() << '\n';
        return cli::k_exit_error;
    }
}
