#include "daemon/cli_mailbox.hpp"

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

namespace botbus::cli {
namespace {

const msgpack::object* find(const msgpack::object& map, std::string_view key) {
    if (map.type != msgpack::type::MAP) return nullptr;
    for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
        const auto& kv = map.via.map.ptr[i];
        if (kv.key.type == msgpack::type::STR && std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
            return &kv.val;
        }
    }
    return nullptr;
}

// A member of a JSON object; null when missing.
Json member(const Json& object, std::string_view key) {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(std::string(key));
    return it == object.end() ? Json() : *it;
}

// One durable subscription as a table row:
// `jobs  bob  lag 3  in flight 2  acked up to 17  push  2 replicas  STUCK: no ack since <ts>`.
std::vector<std::string> consumer_row(const Json& consumer) {
    const auto replicas = member(consumer, "replica_count");
    std::vector<std::string> row{cell(member(consumer, "channel")),
                                 cell(member(consumer, "bot")),
                                 "lag " + cell(member(consumer, "lag")),
                                 "in flight " + cell(member(consumer, "in_flight")),
                                 "acked up to " + cell(member(consumer, "acked")),
                                 cell(member(consumer, "mode")),
                                 cell(replicas) + (replicas == 1 ? " replica" : " replicas")};
    if (member(consumer, "stuck") == true) {
        const auto last_ack = member(consumer, "last_ack");
        row.push_back(last_ack.is_number_integer() && last_ack.get<std::int64_t>() > 0
                          ? "STUCK: no ack since " + format_timestamp(last_ack.get<std::int64_t>())
                          : "STUCK");
    }
    return row;
}

}  // namespace

void mailbox_options(po::options_description& d) {
    d.add_options()("bot", po::value<std::string>()->value_name("B"), "whose mailbox (default: --as)");
}

int run_mailbox(Session& s, const Invocation& in) {
    const auto bot = opt_text(in.vm, "bot").value_or(s.options().bot);
    bus::MailboxRequest request;
    request.bot = bot;
    const auto fields = reply_fields(s.client().call_ok(request));
    if (s.out().json()) {
        s.out().object(fields);
        return 0;
    }
    s.out().line(bot + ": acknowledged up to " + cell(fields.value("acked", Json())) + ", " +
                 cell(fields.value("unsettled", Json())) + " unsettled");
    for (const auto& replica : fields.value("replicas", Json::array())) {
        s.out().line("  replica " + cell(replica.value("connection", Json())) + "  holds " +
                     cell(replica.value("in_flight", Json())) + " of credit " + cell(replica.value("credit", Json())));
    }
    for (const auto& flight : fields.value("in_flight", Json::array())) {
        s.out().line("  seq " + cell(flight.value("seq", Json())) + "  delivered " +
                     cell(flight.value("deliveries", Json())) + "x  ack due " +
                     format_timestamp(flight.value("ack_deadline", std::int64_t{0})) + "  held by " +
                     cell(flight.value("connection", Json())));
    }
    return 0;
}

void dlq_options(po::options_description& d) {
    d.add_options()
        ("bot", po::value<std::string>()->value_name("B"), "only dead letters to this bot")
        ("after", po::value<std::string>()->value_name("SEQ"), "only dead letters after this seq")
        ("limit", po::value<std::string>()->value_name("N"), "at most N (1-1000, default 100)");
}

int run_dlq(Session& s, const Invocation& in) {
    bus::DlqListRequest request;
    request.bot = opt_text(in.vm, "bot");
    request.after = opt_u64(in.vm, "after");
    request.limit = opt_u64(in.vm, "limit");
    const auto reply = s.client().call_ok(request);
    std::uint64_t last = 0;
    if (s.out().json()) {
        for (const auto& item : reply_fields(reply).value("dead_letters", Json::array())) {
            s.out().object(item);
            last = item.value("seq", std::uint64_t{0});
        }
    } else {
        const auto* list = reply.find("dead_letters");
        for (std::uint32_t i = 0; list && list->type == msgpack::type::ARRAY && i < list->via.array.size; ++i) {
            const auto& item = list->via.array.ptr[i];
            const auto number = [&](std::string_view key) -> std::string {
                const auto* v = find(item, key);
                return v && v->type == msgpack::type::POSITIVE_INTEGER ? std::to_string(v->via.u64) : "-";
            };
            const auto text = [&](std::string_view key) -> std::string {
                const auto* v = find(item, key);
                return v && v->type == msgpack::type::STR ? std::string(v->via.str.ptr, v->via.str.size) : "-";
            };
            if (const auto* seq = find(item, "seq"); seq && seq->type == msgpack::type::POSITIVE_INTEGER) {
                last = seq->via.u64;
            }
            std::string line = "dead letter " + number("seq") + " to " + text("bot") + " after " +
                               number("deliveries") + " deliveries (" + text("reason") + ")";
            if (find(item, "replayed_seq")) line += ", replayed as seq " + number("replayed_seq");
            s.out().line(line);
            const auto* message = find(item, "message");
            const auto decoded = message ? bus::decode_message(*message) : std::nullopt;
            s.out().line("  " + (decoded ? message_line(*decoded) : std::string("(message trimmed from the log)")));
        }
    }
    const auto* more = reply.find("more");
    if (more && more->type == msgpack::type::BOOLEAN && more->via.boolean && last != 0) {
        s.out().flush();
        std::cerr << "botbus: more dead letters: continue with --after " << last << '\n';
    }
    return 0;
}

int run_dlq_replay(Session& s, const Invocation& in) {
    const auto seq = parse_u64(in.args[0], "SEQ");
    const auto fields = reply_fields(s.identified().call_ok(bus::DlqReplayRequest{seq}));
    if (s.out().json()) {
        s.out().object(fields);
    } else {
        s.out().line("replayed message " + std::to_string(seq) + " as seq " + cell(fields.value("seq", Json())) +
                     " (mailbox seq " + cell(fields.value("mailbox_seq", Json())) + ")");
    }
    return 0;
}

void lag_options(po::options_description& d) {
    d.add_options()
        ("bot", po::value<std::string>()->value_name("B"), "only this bot's subscriptions")
        ("channel", po::value<std::string>()->value_name("C"), "only the subscriptions to this channel");
}

int run_lag(Session& s, const Invocation& in) {
    bus::ConsumersRequest request;
    request.bot = opt_text(in.vm, "bot");
    request.channel = opt_text(in.vm, "channel");
    request.limit = 1000;
    // Every page, each from the last consumer of the one before.
    auto consumers = Json::array();
    for (;;) {
        const auto fields = reply_fields(s.client().call_ok(request));
        const auto page = member(fields, "consumers");
        if (!page.is_array() || page.empty()) break;
        for (const auto& consumer : page) consumers.push_back(consumer);
        if (!member(fields, "more").is_boolean() || !member(fields, "more").get<bool>()) break;
        request.after = page.back().value("channel", std::string());
        request.after_bot = page.back().value("bot", std::string());
    }
    if (s.out().json()) {
        for (const auto& consumer : consumers) s.out().object(consumer);
        return 0;
    }
    // Like dlq: nothing at all when there is nothing to show.
    if (consumers.empty()) return 0;
    std::vector<std::vector<std::string>> rows;
    for (const auto& consumer : consumers) rows.push_back(consumer_row(consumer));
    std::cout << table(rows);
    return 0;
}

}  // namespace botbus::cli
