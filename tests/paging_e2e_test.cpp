// Paging of the list ops (docs/PROTOCOL.md, "Paging"), against the real
// botbusd: a history of big messages comes in replies of about 1 MiB that
// page to every message exactly once, forwards and backwards, also past
// messages bigger than the budget; each list pages to its end with a small
// limit, across page boundaries (workflow.list's between workflows of one
// name), with `more` false only on the last page; limits outside 1..1000
// and cursors of the wrong type are refused with their documented codes.
#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "raw_wire.hpp"
#include "temp_dir.hpp"

namespace botbus {
namespace {

using testing::MapFrame;
using testing::options_for;
using testing::RawDealer;

constexpr std::size_t k_budget = 1024 * 1024;  // PROTOCOL.md: a page holds about 1 MiB of items
constexpr std::uint64_t k_limit = 3;            // the small limit the lists page with

bool more_of(const bus::Reply& reply) {
    const auto* more = reply.find("more");
    if (!more || more->type != msgpack::type::BOOLEAN) {
        ADD_FAILURE() << "reply has no bool 'more'";
        return false;
    }
    return more->via.boolean;
}

// The items of the reply's array `list`: each item itself (a string), or
// its `key` (a string or a uint, as text).
std::vector<std::string> items_of(const bus::Reply& reply, std::string_view list, std::string_view key = {}) {
    std::vector<std::string> out;
    const auto* array = reply.find(list);
    if (!array || array->type != msgpack::type::ARRAY) {
        ADD_FAILURE() << "reply has no array '" << list << "'";
        return out;
    }
    for (std::uint32_t i = 0; i < array->via.array.size; ++i) {
        const auto* value = &array->via.array.ptr[i];
        if (!key.empty()) value = testing::RawFrame::find_in(*value, key);
        if (value && value->type == msgpack::type::STR) {
            out.emplace_back(value->via.str.ptr, value->via.str.size);
        } else if (value && value->type == msgpack::type::POSITIVE_INTEGER) {
            out.push_back(std::to_string(value->via.u64));
        } else {
            out.push_back(value && value->type == msgpack::type::NIL ? "<nil>" : "<missing>");
        }
    }
    return out;
}

// Pages a list op to its end with limit k_limit: `next` sets the request's
// cursor from the page just read. Returns each page's item keys; checks
// that every page but the last is full and says more, and the last says no
// more.
template <typename Request>
std::vector<std::vector<std::string>> pages_of(client::Client& client, Request request, std::string_view list,
                                               std::string_view key,
                                               std::function<void(Request&, const bus::Reply&)> next) {
    std::vector<std::vector<std::string>> pages;
    request.limit = k_limit;
    for (int round = 0; round < 100; ++round) {
        const auto reply = client.call_ok(request);
        pages.push_back(items_of(reply, list, key));
        if (!more_of(reply)) return pages;
        EXPECT_EQ(pages.back().size(), k_limit) << "a page with more is full (small items)";
        next(request, reply);
    }
    ADD_FAILURE() << "the list never ended";
    return pages;
}

std::vector<std::string> joined(const std::vector<std::vector<std::string>>& pages) {
    std::vector<std::string> all;
    for (const auto& page : pages) all.insert(all.end(), page.begin(), page.end());
    return all;
}

std::vector<std::size_t> sizes(const std::vector<std::vector<std::string>>& pages) {
    std::vector<std::size_t> out;
    for (const auto& page : pages) out.push_back(page.size());
    return out;
}

const std::vector<std::size_t> k_seven_in_threes{3, 3, 1};

bus::PackedValue json_value(const nlohmann::json& json) {
    const auto bytes = nlohmann::json::to_msgpack(json);
    return bus::PackedValue{std::string(bytes.begin(), bytes.end())};
}

class Paging : public ::testing::Test {
protected:
    void start(std::vector<std::string> args = {}) {
        m_daemon = std::make_unique<testing::DaemonProcess>(m_dir.path() / "data", std::move(args));
        m_alice = std::make_unique<client::Client>(m_context, options_for(*m_daemon));
        m_alice->hello("alice");
    }

    // A workflow of steps s0..s(steps-1); its id.
    std::string put_workflow(const std::string& name, int steps = 1, std::optional<std::string> owner_bot = {}) {
        nlohmann::json definition{{"name", name}, {"steps", nlohmann::json::array()}};
        for (int i = 0; i < steps; ++i) definition["steps"].push_back({{"id", "s" + std::to_string(i)}});
        bus::WorkflowPutRequest put;
        put.definition = json_value(definition);
        if (owner_bot) {
            put.owner_type = "bot";
            put.owner_bot = owner_bot;
        }
        const auto reply = m_alice->call_ok(put);
        const auto* id = reply.find("workflow_id");
        return id && id->type == msgpack::type::STR ? std::string(id->via.str.ptr, id->via.str.size) : "";
    }

    void start_run(const std::string& workflow_id, const std::string& run_id) {
        bus::RunStartRequest start;
        start.workflow_id = workflow_id;
        start.run_id = run_id;
        m_alice->call_ok(start);
    }

    // A raw request frame on a fresh DEALER; the reply.
    testing::RawFrame raw_call(const MapFrame& frame) {
        RawDealer dealer(m_context, m_daemon->command_endpoint());
        auto reply = dealer.call(frame.str());
        if (!reply) throw std::runtime_error("no reply");
        return std::move(*reply);
    }

    testing::TempDir m_dir;
    zmq::context_t m_context;
    std::unique_ptr<testing::DaemonProcess> m_daemon;
    std::unique_ptr<client::Client> m_alice;
};

// ---- history: replies of about 1 MiB

TEST_F(Paging, AHistoryOfBigMessagesComesInRepliesOfAboutOneMebibyteAndPagesToEveryMessageOnce) {
    start({"--max-frame", std::to_string(4 * 1024 * 1024)});
    // 100 kB messages, and two of 1.5 MB (each over the budget alone), one of
    // them the newest.
    std::vector<std::size_t> body_sizes(24, 100'000);
    body_sizes.push_back(1'500'000);
    body_sizes.insert(body_sizes.end(), 6, 100'000);
    body_sizes.push_back(1'500'000);
    std::vector<std::uint64_t> published;
    for (const auto size : body_sizes) {
        published.push_back(m_alice->publish("big", bus::pack_as_value(std::string(size, 'x'))).seq);
    }

    RawDealer reader(m_context, m_daemon->command_endpoint());
    // Reads every page in one direction; returns the seqs in the order read.
    const auto read_all = [&](bool desc) {
        std::vector<std::uint64_t> seqs;
        std::size_t pages = 0;
        for (bool more = true; more && pages < 100; ++pages) {
            MapFrame frame;
            frame.with("op", std::string("history")).with("id", pages).with("channel", std::string("big"));
            frame.with("limit", 1000);
            if (desc) frame.with("order", std::string("desc"));
            if (!seqs.empty()) frame.with(desc ? "before" : "after", seqs.back());
            const auto reply = reader.call(frame.str());
            if (!reply) {
                ADD_FAILURE() << "no reply to history";
                break;
            }
            EXPECT_EQ(reply->ok(), true) << reply->text("message");
            const auto* more_value = reply->find("more");
            more = more_value && more_value->type == msgpack::type::BOOLEAN && more_value->via.boolean;
            const auto* messages = reply->find("messages");
            if (!messages || messages->type != msgpack::type::ARRAY) {
                ADD_FAILURE() << "no messages";
                break;
            }
            const auto count = messages->via.array.size;
            if (more) {
                EXPECT_GE(count, 1U) << "a page with more is never empty";
            }
            if (count > 1) {
                EXPECT_LE(reply->bytes.size(), k_budget + 64 * 1024) << "page " << pages << " of " << count;
            } else {
                EXPECT_LE(reply->bytes.size(), 1'500'000U + 1024) << "one message comes alone, however big";
            }
            for (std::uint32_t i = 0; i < count; ++i) {
                const auto* seq = testing::RawFrame::find_in(messages->via.array.ptr[i], "seq");
                if (seq && seq->type == msgpack::type::POSITIVE_INTEGER) seqs.push_back(seq->via.u64);
            }
        }
        EXPECT_GE(pages, 6U) << "about 6 MB of messages take at least six pages";
        return seqs;
    };
    EXPECT_EQ(read_all(false), published) << "forwards: every message exactly once, in order";
    auto backwards = read_all(true);
    std::reverse(backwards.begin(), backwards.end());
    EXPECT_EQ(backwards, published) << "backwards (desc, before): every message exactly once";
}

// ---- the lists: to completeness with a small limit

TEST_F(Paging, ChannelsSubscriptionsAndSubscribersPageToTheirEnd) {
    start();
    std::vector<std::string> channels;
    for (int i = 0; i < 7; ++i) {
        channels.push_back("ch-" + std::to_string(i));
        m_alice->call_ok(bus::SubscribeRequest{channels.back(), std::nullopt});  // creates the channel too
    }
    std::vector<std::string> bots;
    for (const char* bot : {"b0", "b1", "b2", "b3", "b4", "b5", "b6"}) {
        bots.push_back(bot);
        m_alice->call_ok(bus::SubscribeRequest{"room", std::string(bot)});
    }
    auto all_channels = channels;
    all_channels.push_back("room");  // eight: pages of 3, 3, 2
    std::sort(all_channels.begin(), all_channels.end());

    const auto listed = pages_of<bus::ChannelListRequest>(
        *m_alice, {}, "channels", "name",
        [](bus::ChannelListRequest& request, const bus::Reply& page) { request.after = items_of(page, "channels", "name").back(); });
    EXPECT_EQ(joined(listed), all_channels);
    EXPECT_EQ(sizes(listed), (std::vector<std::size_t>{3, 3, 2}));

    const auto subscriptions = pages_of<bus::SubscriptionsRequest>(
        *m_alice, {std::string("alice")}, "channels", {},
        [](bus::SubscriptionsRequest& request, const bus::Reply& page) { request.after = items_of(page, "channels").back(); });
    EXPECT_EQ(joined(subscriptions), channels);
    EXPECT_EQ(sizes(subscriptions), k_seven_in_threes);

    const auto subscribers = pages_of<bus::SubscribersRequest>(
        *m_alice, {"room"}, "bots", {},
        [](bus::SubscribersRequest& request, const bus::Reply& page) { request.after = items_of(page, "bots").back(); });
    EXPECT_EQ(joined(subscribers), bots);
    EXPECT_EQ(sizes(subscribers), k_seven_in_threes);

    // A channel added behind the cursor is not read on this pass; one ahead is.
    bus::ChannelListRequest rest;
    rest.after = "ch-3";
    rest.limit = k_limit;
    m_alice->call_ok(bus::ChannelCreateRequest{"ch-0a", std::nullopt});
    m_alice->call_ok(bus::ChannelCreateRequest{"ch-4a", std::nullopt});
    EXPECT_EQ(items_of(m_alice->call_ok(rest), "channels", "name"),
              (std::vector<std::string>{"ch-4", "ch-4a", "ch-5"}));
}

TEST_F(Paging, WorkflowsPageByNameThenOwnerAcrossWorkflowsOfOneName) {
    start();
    for (const char* name : {"w0", "w1", "w2", "w3", "w4"}) put_workflow(name);
    put_workflow("w2", 1, "bob");
    put_workflow("w2", 1, "alice");
    // By name, then owner type ("bot" before "global"), then owner bot.
    const std::vector<std::string> expected{"w0/<nil>", "w1/<nil>", "w2/alice", "w2/bob", "w2/<nil>", "w3/<nil>",
                                            "w4/<nil>"};
    std::vector<std::vector<std::string>> pages;
    bus::WorkflowListRequest request;
    request.limit = k_limit;
    for (bool more = true; more && pages.size() < 10;) {
        const auto reply = m_alice->call_ok(request);
        const auto names = items_of(reply, "workflows", "name");
        const auto owners = items_of(reply, "workflows", "owner_bot");
        ASSERT_EQ(names.size(), owners.size());
        pages.emplace_back();
        for (std::size_t i = 0; i < names.size(); ++i) pages.back().push_back(names[i] + "/" + owners[i]);
        more = more_of(reply);
        if (more) {
            request.after = names.back();
            request.after_owner_bot = owners.back() == "<nil>" ? std::nullopt : std::optional(owners.back());
        }
    }
    EXPECT_EQ(joined(pages), expected);
    EXPECT_EQ(sizes(pages), k_seven_in_threes);  // boundaries after w2/alice and after w3
}

TEST_F(Paging, RunsStepsAndCompletedStepsPageToTheirEnd) {
    start();
    const auto workflow_id = put_workflow("deploy", 7);
    std::vector<std::string> runs;
    for (int i = 0; i < 7; ++i) {
        runs.push_back("run-" + std::to_string(i));
        start_run(workflow_id, runs.back());
    }
    const auto before_last = [](bus::RunListRequest& request, const bus::Reply& page) {
        request.before = std::stoull(items_of(page, "runs", "start_seq").back());
    };
    const auto listed = pages_of<bus::RunListRequest>(*m_alice, {}, "runs", "id", before_last);
    EXPECT_EQ(joined(listed), std::vector<std::string>(runs.rbegin(), runs.rend())) << "newest first";
    EXPECT_EQ(sizes(listed), k_seven_in_threes);
    bus::RunListRequest of_workflow;
    of_workflow.workflow_id = workflow_id;
    EXPECT_EQ(joined(pages_of<bus::RunListRequest>(*m_alice, of_workflow, "runs", "id", before_last)),
              std::vector<std::string>(runs.rbegin(), runs.rend()));

    std::vector<std::string> steps;
    for (int i = 0; i < 7; ++i) {
        steps.push_back("s" + std::to_string(i));
        bus::StepStartRequest start;
        start.run_id = "run-0";
        start.step_id = steps.back();
        m_alice->call_ok(start);
    }
    const auto attempts = pages_of<bus::RunStepsRequest>(
        *m_alice, {"run-0"}, "steps", "step_id", [](bus::RunStepsRequest& request, const bus::Reply& page) {
            request.after = std::stoull(items_of(page, "steps", "start_seq").back());
        });
    EXPECT_EQ(joined(attempts), steps);
    EXPECT_EQ(sizes(attempts), k_seven_in_threes);

    // Completed out of start order: the list keeps the start order.
    for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
        bus::StepCompleteRequest complete;
        complete.run_id = "run-0";
        complete.step_id = *it;
        m_alice->call_ok(complete);
    }
    const auto completed = pages_of<bus::RunCompletedStepsRequest>(
        *m_alice, {"run-0"}, "step_ids", {}, [](bus::RunCompletedStepsRequest& request, const bus::Reply& page) {
            request.after = testing::u64_field(page, "last_start_seq");
        });
    EXPECT_EQ(joined(completed), steps);
    EXPECT_EQ(sizes(completed), k_seven_in_threes);
}

TEST_F(Paging, CrashedRunsPageNewestFirst) {
    start({"--lease-ms", "50"});
    const auto workflow_id = put_workflow("deploy");
    std::vector<std::string> runs;
    for (int i = 0; i < 7; ++i) {
        runs.push_back("run-" + std::to_string(i));
        start_run(workflow_id, runs.back());
    }
    // Nobody heartbeats: every lease runs out and each run crashes.
    ASSERT_TRUE(testing::eventually([&] {
        bus::RunListRequest crashed;
        crashed.status = "crashed";
        return items_of(m_alice->call_ok(crashed), "runs", "id").size() == runs.size();
    }));
    const auto listed = pages_of<bus::RunCrashedRequest>(
        *m_alice, {}, "runs", "id", [](bus::RunCrashedRequest& request, const bus::Reply& page) {
            request.before = std::stoull(items_of(page, "runs", "start_seq").back());
        });
    EXPECT_EQ(joined(listed), std::vector<std::string>(runs.rbegin(), runs.rend()));
    EXPECT_EQ(sizes(listed), k_seven_in_threes);
}

TEST_F(Paging, DeadLettersOfBigMessagesComeInRepliesOfAboutOneMebibyte) {
    start({"--ack-timeout-ms", "20", "--max-deliveries", "1"});
    client::Client bob(m_context, options_for(*m_daemon));
    bob.hello("bob");  // takes the pushes and never acknowledges one
    std::vector<std::string> sent;
    for (int i = 0; i < 8; ++i) {
        sent.push_back(std::to_string(m_alice->send("bob", bus::pack_as_value(std::string(300'000, 'd'))).seq));
    }
    RawDealer reader(m_context, m_daemon->command_endpoint());
    std::size_t pages = 0;
    // Every dead letter's message seq, paging with limit 1000.
    const auto read_all = [&] {
        std::vector<std::string> message_seqs;
        std::uint64_t after = 0;
        pages = 0;
        for (bool more = true; more && pages < 100; ++pages) {
            MapFrame frame;
            frame.with("op", std::string("dlq.list")).with("id", pages).with("limit", 1000).with("after", after);
            const auto reply = reader.call(frame.str());
            if (!reply || reply->ok() != true) {
                ADD_FAILURE() << "dlq.list failed";
                break;
            }
            EXPECT_LE(reply->bytes.size(), k_budget + 64 * 1024);
            const auto* more_value = reply->find("more");
            more = more_value && more_value->type == msgpack::type::BOOLEAN && more_value->via.boolean;
            const auto* list = reply->find("dead_letters");
            if (!list || list->type != msgpack::type::ARRAY) break;
            for (std::uint32_t i = 0; i < list->via.array.size; ++i) {
                const auto& dead = list->via.array.ptr[i];
                const auto* seq = testing::RawFrame::find_in(dead, "seq");
                const auto* message_seq = testing::RawFrame::find_in(dead, "message_seq");
                if (seq && seq->type == msgpack::type::POSITIVE_INTEGER) after = seq->via.u64;
                if (message_seq && message_seq->type == msgpack::type::POSITIVE_INTEGER) {
                    message_seqs.push_back(std::to_string(message_seq->via.u64));
                }
            }
        }
        return message_seqs;
    };
    ASSERT_TRUE(testing::eventually([&] { return read_all().size() == sent.size(); }));
    EXPECT_EQ(read_all(), sent) << "every dead letter exactly once";
    EXPECT_GE(pages, 3U) << "2.4 MB of dead messages take at least three pages";
}

TEST_F(Paging, ListsOfBigItemsAreCutToAboutOneMebibyteAPage) {
    start();
    const std::string big(300'000, 'n');  // four of these are over the budget, three are not
    std::vector<std::string> workflow_ids;
    for (int i = 0; i < 5; ++i) {
        bus::WorkflowPutRequest put;
        put.definition = json_value(
            {{"name", "w" + std::to_string(i)}, {"note", big}, {"steps", nlohmann::json::array({{{"id", "s0"}}})}});
        const auto reply = m_alice->call_ok(put);
        workflow_ids.push_back(reply.find("workflow_id")->as<std::string>());
    }
    for (int i = 0; i < 5; ++i) {
        bus::RunStartRequest start;
        start.workflow_id = workflow_ids[0];
        start.run_id = "run-" + std::to_string(i);
        start.context = json_value({{"note", big}});
        m_alice->call_ok(start);
    }
    // Reads a list with limit 1000 page by page; the page sizes.
    const auto page_sizes = [&](auto request, const char* list, auto next) {
        std::vector<std::size_t> out;
        request.limit = 1000;
        for (bool more = true; more && out.size() < 10;) {
            const auto id = m_alice->send_request(request);
            const auto reply = m_alice->wait_reply(id, list);
            EXPECT_TRUE(reply.ok) << reply.message;
            out.push_back(items_of(reply, list, "id").size());
            more = more_of(reply);
            if (more) next(request, reply);
        }
        return out;
    };
    EXPECT_EQ(page_sizes(bus::WorkflowListRequest{}, "workflows",
                         [](bus::WorkflowListRequest& request, const bus::Reply& page) {
                             request.after = items_of(page, "workflows", "name").back();
                         }),
              (std::vector<std::size_t>{3, 2}));
    EXPECT_EQ(page_sizes(bus::RunListRequest{}, "runs",
                         [](bus::RunListRequest& request, const bus::Reply& page) {
                             request.before = std::stoull(items_of(page, "runs", "start_seq").back());
                         }),
              (std::vector<std::size_t>{3, 2}));
}

// ---- the CLI reads every page

// Runs the botbus CLI against `daemon`; its stdout, split into lines.
std::vector<std::string> cli_lines(const testing::DaemonProcess& daemon, const std::string& args) {
    const auto command = std::string(BOTBUS_CLI_PATH) + " --command-endpoint " + daemon.command_endpoint() +
                         " --feed-endpoint " + daemon.feed_endpoint() + " " + args;
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) {
        ADD_FAILURE() << "cannot run " << command;
        return {};
    }
    std::string out;
    std::array<char, 4096> buffer{};
    for (std::size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) out.append(buffer.data(), n);
    EXPECT_EQ(pclose(pipe), 0) << command;
    std::vector<std::string> lines;
    std::istringstream stream(out);
    for (std::string line; std::getline(stream, line);) lines.push_back(line);
    return lines;
}

TEST_F(Paging, TheCliListsChannelsSubscriptionsAndSubscribersPastOnePage) {
    start();
    constexpr int k_many = 130;  // more than a default page of 100
    std::vector<std::uint64_t> pending;
    for (int i = 0; i < k_many; ++i) {
        pending.push_back(m_alice->send_request(bus::SubscribeRequest{"ch-" + std::to_string(i), std::nullopt}));
        pending.push_back(
            m_alice->send_request(bus::SubscribeRequest{"room", "bot-" + std::to_string(i)}));
    }
    for (const auto id : pending) ASSERT_TRUE(m_alice->wait_reply(id, "subscribe").ok);
    EXPECT_EQ(cli_lines(*m_daemon, "--json channels").size(), static_cast<std::size_t>(k_many + 1));
    EXPECT_EQ(cli_lines(*m_daemon, "--as alice subscriptions").size(), static_cast<std::size_t>(k_many));
    EXPECT_EQ(cli_lines(*m_daemon, "subscribers room").size(), static_cast<std::size_t>(k_many));
    const auto json = cli_lines(*m_daemon, "--json subscribers room");
    ASSERT_EQ(json.size(), 1U);
    const auto fields = nlohmann::json::parse(json[0]);
    EXPECT_EQ(fields.at("bots").size(), static_cast<std::size_t>(k_many));
    EXPECT_FALSE(fields.contains("more")) << "the whole list, not a page";
}

// ---- refused limits and cursors

TEST_F(Paging, ALimitOutsideOneToAThousandIsInvalidFieldOnEveryList) {
    start();
    m_alice->call_ok(bus::ChannelCreateRequest{"room", std::nullopt});
    start_run(put_workflow("deploy"), "run-1");
    for (const std::uint64_t limit : {0ULL, 1001ULL}) {
        SCOPED_TRACE("limit " + std::to_string(limit));
        bus::HistoryRequest history;
        history.channel = "room";
        history.limit = limit;
        bus::WorkflowListRequest workflows;
        workflows.limit = limit;
        bus::RunListRequest runs;
        runs.limit = limit;
        bus::DlqListRequest dlq;
        dlq.limit = limit;
        const std::vector<bus::Request> requests{
            bus::ChannelListRequest{std::nullopt, limit},
            bus::SubscriptionsRequest{std::string("alice"), std::nullopt, limit},
            bus::SubscribersRequest{"room", std::nullopt, limit},
            history,
            dlq,
            workflows,
            runs,
            bus::RunCrashedRequest{std::nullopt, limit},
            bus::RunStepsRequest{"run-1", std::nullopt, limit},
            bus::RunCompletedStepsRequest{"run-1", std::nullopt, limit},
        };
        for (const auto& request : requests) {
            const auto reply = m_alice->call(request);
            EXPECT_FALSE(reply.ok) << bus::op_name(bus::op_of(request));
            EXPECT_EQ(reply.error, bus::Errc::invalid_field) << bus::op_name(bus::op_of(request)) << ": " << reply.message;
        }
    }
    // The edges are accepted.
    EXPECT_TRUE(m_alice->call(bus::ChannelListRequest{std::nullopt, 1}).ok);
    EXPECT_TRUE(m_alice->call(bus::ChannelListRequest{std::nullopt, 1000}).ok);
}

TEST_F(Paging, ACursorOfTheWrongTypeIsInvalidFieldAndABadNameIsInvalidName) {
    start();
    m_alice->call_ok(bus::ChannelCreateRequest{"room", std::nullopt});
    const auto frame = [](const std::string& op) {
        MapFrame f;
        f.with("op", op).with("id", 1);
        return f;
    };
    const auto code_of = [&](const MapFrame& f) { return raw_call(f).text("error"); };
    EXPECT_EQ(code_of(frame("channel.list").with("after", 5)), "invalid_field");
    EXPECT_EQ(code_of(frame("subscriptions").with("bot", std::string("alice")).with("after", 5)), "invalid_field");
    EXPECT_EQ(code_of(frame("subscribers").with("channel", std::string("room")).with("after", true)), "invalid_field");
    EXPECT_EQ(code_of(frame("workflow.list").with("after", 1)), "invalid_field");
    EXPECT_EQ(code_of(frame("workflow.list").with("after", std::string("w")).with("after_owner_bot", 1)),
              "invalid_field");
    EXPECT_EQ(code_of(frame("workflow.list").with("after_owner_bot", std::string("bob"))), "invalid_field")
        << "after_owner_bot goes with after";
    EXPECT_EQ(code_of(frame("run.list").with("before", std::string("run-1"))), "invalid_field");
    EXPECT_EQ(code_of(frame("run.crashed").with("before", -1)), "invalid_field");
    EXPECT_EQ(code_of(frame("run.steps").with("run_id", std::string("r")).with("after", std::string("x"))),
              "invalid_field");
    EXPECT_EQ(code_of(frame("run.completed_steps").with("run_id", std::string("r")).with("after", 1.5)),
              "invalid_field");
    EXPECT_EQ(code_of(frame("history").with("channel", std::string("room")).with("after", std::string("1"))),
              "invalid_field");
    EXPECT_EQ(code_of(frame("channel.list").with("after", std::string("no/slash"))), "invalid_name");
    EXPECT_EQ(code_of(frame("channel.list").with("limit", std::string("3"))), "invalid_field");
}

}  // namespace
}  // namespace botbus
