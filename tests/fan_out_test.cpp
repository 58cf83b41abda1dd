// Unit tests of bus::FanOut on a :memory: store: requests run through the
// CommandHandler in a batch, and the events that batch committed are fanned
// out into a recording sink instead of a PUB socket.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bus/core/handler.hpp"
#include "bus/protocol/codec.hpp"
#include "bus/server/fan_out.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/store.hpp"
#include "handler_support.hpp"

using namespace botbus::bus;
namespace store = botbus::store;
using json = nlohmann::json;

namespace {

using botbus::testing::as;

constexpr std::int64_t k_now = 1'700'000'000'000'000;

PackedValue packed(const json& value) {
    const auto bytes = json::to_msgpack(value);
    return PackedValue{std::string(bytes.begin(), bytes.end())};
}

struct Published {
    std::string topic;
    json event;
    std::string bytes;
};

class FanOutTest : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};
    ServerCounters m_counters;
    CommandHandler m_handler{m_store, m_counters};
    std::vector<Published> m_published;
    FanOut m_fan_out{m_store, m_handler,
                     [this](const std::string& topic, const std::string& event) {
                         m_published.push_back({topic, json::from_msgpack(event), event});
                     },
                     [] { return k_now; }};

    // Runs the requests in one batch, as the server does, and commits it;
    // returns the events it appended. Each request must succeed. Bindings
    // are started the way the server's release starts them.
    std::vector<store::Event> run(const std::string& bot, std::vector<Request> requests) {
        auto batch = m_store.begin();
        std::vector<DeliveryBinding> bindings;
        for (auto& request : requests) {
            const auto outcome = m_handler.handle(Envelope{std::nullopt, std::move(request)}, as(bot), batch);
            EXPECT_FALSE(outcome.failed) << "a request of " << bot << " failed";
            if (outcome.binding) bindings.push_back(*outcome.binding);
        }
        batch.commit();
        for (const auto& binding : bindings) m_handler.deliveries().restart(binding.reader, binding.settings, k_now);
        return batch.take_events();
    }
    std::vector<store::Event> run(const std::string& bot, Request request) {
        std::vector<Request> requests;
        requests.push_back(std::move(request));
        return run(bot, std::move(requests));
    }

    Touched show(const std::vector<store::Event>& events, Touched touched = {}) {
        m_published.clear();
        for (const auto& event : events) m_fan_out.fan_out(event, touched);
        return touched;
    }

    std::vector<Published> on(const std::string& topic) const {
        std::vector<Published> found;
        for (const auto& p : m_published) {
            if (p.topic == topic) found.push_back(p);
        }
        return found;
    }
    std::set<std::string> topics() const {
        std::set<std::string> found;
        for (const auto& p : m_published) found.insert(p.topic);
        return found;
    }

    static SubscribeRequest durable(const std::string& channel) {
        SubscribeRequest r{channel, std::nullopt};
        r.durable = true;
        return r;
    }
    static PublishRequest publish(const std::string& channel, const std::string& text) {
        return PublishRequest{channel, std::nullopt, pack_as_value(text), std::nullopt, std::nullopt};
    }
};

TEST_F(FanOutTest, APublishedMessageGoesToItsChannelTopicAndTouchesThatChannelsReaders) {
    run("bob", durable("general"));
    run("dave", durable("random"));
    const auto events = run("alice", publish("general", "hello"));

    const auto touched = show(events);
    const auto messages = on("ch/general/");
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0].event.value("event", ""), "message");
    EXPECT_EQ(messages[0].event.value("channel", ""), "general");
    EXPECT_EQ(messages[0].event.value("from", ""), "alice");
    EXPECT_EQ(messages[0].event.value("seq", 0u), events.back().seq);
    EXPECT_TRUE(on("ch/random/").empty());
    EXPECT_EQ(touched.channels, (std::set<std::string>{"general"}));
    EXPECT_EQ(touched.readers, (std::set<Reader>{Reader{"general", "bob", ""}}))
        << "only the published channel's readers have news";
    EXPECT_TRUE(touched.forgotten.empty());
}

TEST_F(FanOutTest, ADirectMessageTouchesTheRecipientsMailboxAndIsNotOnTheFeed) {
    const auto events = run("alice", SendRequest{"bob", std::nullopt, pack_as_value(std::string("psst")),
                                                 std::nullopt, std::nullopt, std::nullopt});
    const auto touched = show(events);
    EXPECT_EQ(touched.readers, (std::set<Reader>{Reader{"", "bob", ""}}));
    EXPECT_TRUE(touched.channels.empty());
    EXPECT_TRUE(m_published.empty()) << "a direct message was published on " << m_published.front().topic;
}

TEST_F(FanOutTest, ChannelEventsGoToTheChannelsTopic) {
    const auto created = run("alice", ChannelCreateRequest{"ops", std::nullopt});
    show(created);
    ASSERT_EQ(on(std::string(k_channels_topic)).size(), 1u);
    const auto event = on(std::string(k_channels_topic))[0].event;
    EXPECT_EQ(event.value("event", ""), "channel.created");
    EXPECT_EQ(event.value("channel", ""), "ops");
    EXPECT_EQ(event.value("by", ""), "alice");
    EXPECT_FALSE(event.contains("bot"));

    show(run("bob", SubscribeRequest{"ops", std::nullopt}));
    const auto subscribed = on(std::string(k_channels_topic));
    ASSERT_EQ(subscribed.size(), 1u);
    EXPECT_EQ(subscribed[0].event.value("event", ""), "subscription.added");
    EXPECT_EQ(subscribed[0].event.value("channel", ""), "ops");
    EXPECT_EQ(subscribed[0].event.value("bot", ""), "bob");
    EXPECT_EQ(topics(), (std::set<std::string>{std::string(k_channels_topic)}));
}

TEST_F(FanOutTest, DeadLettersGoToTheDeadLettersTopic) {
    const auto sent = run("alice", SendRequest{"bob", std::nullopt, pack_as_value(std::string("x")), std::nullopt,
                                               std::nullopt, std::nullopt});
    auto batch = m_store.begin();
    store::MessageDeadLettered dead;
    dead.bot = "bob";
    dead.message_seq = sent.back().seq;
    dead.reason = "max_deliveries: delivered 3 times without an acknowledgement";
    dead.deliveries = 3;
    batch.append({std::string(store::stream::k_dead_letters), store::EventType::message_dead_lettered,
                  std::string(k_daemon_producer), std::nullopt, store::encode_payload(dead)});
    batch.commit();

    show(batch.take_events());
    const auto letters = on(std::string(k_dead_letters_topic));
    ASSERT_EQ(letters.size(), 1u);
    EXPECT_EQ(topics().size(), 1u);
    const auto& event = letters[0].event;
    EXPECT_EQ(event.value("event", ""), "message.dead_lettered");
    EXPECT_EQ(event.value("bot", ""), "bob");
    EXPECT_EQ(event.value("message_seq", 0u), sent.back().seq);
    EXPECT_EQ(event.value("deliveries", 0u), 3u);
    EXPECT_FALSE(event.contains("channel")) << "a mailbox's dead letter names no channel";
}

TEST_F(FanOutTest, ARunEventGoesToItsRunTopicAndItsWorkflowsTopicWithTheSameBytes) {
    const auto put = run("alice", WorkflowPutRequest{packed(json{{"name", "deploy"}, {"steps", {{{"id", "build"}}}}}),
                                                     std::nullopt, std::nullopt, std::nullopt});
    ASSERT_FALSE(put.empty());
    ASSERT_TRUE(put.back().stream.starts_with("wf/"));
    const auto workflow_id = put.back().stream.substr(3);
    show(put);
    EXPECT_EQ(topics(), (std::set<std::string>{workflow_topic(workflow_id)})) << "a workflow's event is not a run's";
    EXPECT_FALSE(m_published.at(0).event.contains("run_id"));
    EXPECT_EQ(m_published.at(0).event.value("workflow_id", ""), workflow_id);

    RunStartRequest start;
    start.workflow_id = workflow_id;
    const auto started = run("exec", start);
    std::optional<std::string> run_id;
    for (const auto& event : started) {
        if (event.stream.starts_with("run/")) run_id = event.stream.substr(4);
    }
    ASSERT_TRUE(run_id);
    show(started);
    const auto on_run = on(run_topic(*run_id));
    const auto on_workflow = on(workflow_topic(workflow_id));
    ASSERT_FALSE(on_run.empty());
    ASSERT_EQ(on_run.size(), on_workflow.size()) << "every run event goes to its workflow's topic too";
    for (std::size_t i = 0; i < on_run.size(); ++i) {
        EXPECT_EQ(on_run[i].bytes, on_workflow[i].bytes);
        EXPECT_EQ(on_run[i].event.value("run_id", ""), *run_id);
        EXPECT_EQ(on_run[i].event.value("workflow_id", ""), workflow_id);
        EXPECT_TRUE(on_run[i].event.contains("data"));
    }
}

TEST_F(FanOutTest, ADeletedDurableSubscriptionIsForgottenAndNoLongerTouched) {
    run("bob", durable("general"));
    const Reader reader{"general", "bob", ""};
    ASSERT_TRUE(m_handler.deliveries().knows(reader));

    Touched before;
    before.readers.insert(reader);  // as a subscribe earlier in the batch would have
    const auto touched = show(run("bob", UnsubscribeRequest{"general", std::nullopt}), before);
    EXPECT_EQ(touched.forgotten, (std::vector<Reader>{reader}));
    EXPECT_FALSE(touched.readers.contains(reader));
    EXPECT_FALSE(m_handler.deliveries().knows(reader));
}

TEST_F(FanOutTest, ASubscriptionDeletedAndMadeAgainInOneBatchIsKept) {
    run("bob", durable("general"));
    const Reader reader{"general", "bob", ""};

    std::vector<Request> requests;
    requests.push_back(UnsubscribeRequest{"general", std::nullopt});
    requests.push_back(durable("general"));
    const auto events = run("bob", std::move(requests));
    bool deleted = false;
    for (const auto& event : events) deleted = deleted || event.type == store::EventType::consumer_deleted;
    ASSERT_TRUE(deleted) << "the batch has no consumer.deleted to fan out";

    Touched before;
    before.readers.insert(reader);
    const auto touched = show(events, before);
    EXPECT_TRUE(touched.forgotten.empty());
    EXPECT_TRUE(touched.readers.contains(reader));
    EXPECT_TRUE(m_handler.deliveries().knows(reader));
}

}  // namespace
