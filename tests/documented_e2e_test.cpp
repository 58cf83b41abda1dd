// Behaviour docs/PROTOCOL.md promises, against the real botbusd: a channel
// created again continues its numbering and history; channel deletions and
// unsubscriptions on sys/channels/; the history default page; no pushes to
// a DEALER that frames like REQ; workflow.get's selector rule; and dead
// letters whose messages retention has trimmed.
#include <gtest/gtest.h>

#include <msgpack.hpp>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "feed_support.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::eventually;
using testing::options_for;
using testing::u64_field;
using Json = nlohmann::json;

Json json_field(const bus::Reply& reply, std::string_view key) {
    const auto* value = reply.find(key);
    if (!value) {
        ADD_FAILURE() << "reply has no '" << key << "'";
        return Json();
    }
    return Json::from_msgpack(bus::pack_value(*value).bytes);
}

std::vector<std::uint64_t> channel_seqs(const std::vector<bus::Message>& messages) {
    std::vector<std::uint64_t> out;
    for (const auto& m : messages) out.push_back(m.stream_seq);
    return out;
}

std::uint64_t events_of(client::Client& client) { return u64_field(client.call_ok(bus::StatsRequest{}), "events"); }

class Documented : public ::testing::Test {
protected:
    void start(std::vector<std::string> args = {}) {
        m_daemon = std::make_unique<testing::DaemonProcess>(m_dir.path() / "data", std::move(args));
        m_alice = std::make_unique<client::Client>(m_context, options_for(*m_daemon));
        m_alice->hello("alice");
    }

    testing::TempDir m_dir;
    zmq::context_t m_context;
    std::unique_ptr<testing::DaemonProcess> m_daemon;
    std::unique_ptr<client::Client> m_alice;
};

TEST_F(Documented, AChannelCreatedAgainContinuesItsChannelSeqAndKeepsItsHistory) {
    start();
    for (int i = 0; i < 3; ++i) m_alice->publish("again", bus::pack_as_value(i));
    m_alice->call_ok(bus::ChannelDeleteRequest{"again"});
    bus::HistoryRequest gone;
    gone.channel = "again";
    const auto refused = m_alice->call(gone);
    EXPECT_EQ(refused.error_name, "not_found") << "history of a deleted channel";

    // Re-created by a publish.
    EXPECT_EQ(m_alice->publish("again", bus::pack_as_value(3)).stream_seq, 4U);
    EXPECT_EQ(channel_seqs(testing::full_history(*m_alice, "again")), (std::vector<std::uint64_t>{1, 2, 3, 4}));

    // Re-created by channel.create: its map shows where numbering stands.
    m_alice->call_ok(bus::ChannelDeleteRequest{"again"});
    const auto created = m_alice->call_ok(bus::ChannelCreateRequest{"again", std::nullopt});
    EXPECT_EQ(json_field(created, "channel").at("last_channel_seq"), 4);
    EXPECT_EQ(m_alice->publish("again", bus::pack_as_value(4)).stream_seq, 5U);
    EXPECT_EQ(channel_seqs(testing::full_history(*m_alice, "again")),
              (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));

    // Re-created by a subscribe.
    m_alice->call_ok(bus::ChannelDeleteRequest{"again"});
    m_alice->call_ok(bus::SubscribeRequest{"again", std::nullopt});
    EXPECT_EQ(m_alice->publish("again", bus::pack_as_value(5)).stream_seq, 6U);
    EXPECT_EQ(testing::full_history(*m_alice, "again").size(), 6U);
}

TEST_F(Documented, DeletingAChannelDropsItsSubscriptions) {
    start();
    auto bob = std::make_unique<client::Client>(m_context, options_for(*m_daemon));
    bob->hello("bob");
    bob->call_ok(bus::SubscribeRequest{"doomed", std::nullopt});
    m_alice->call_ok(bus::ChannelDeleteRequest{"doomed"});
    bus::SubscriptionsRequest of_bob;
    of_bob.bot = "bob";
    EXPECT_EQ(json_field(m_alice->call_ok(of_bob), "channels"), Json::array());
    m_alice->publish("doomed", bus::pack_as_value(1));  // created again, without members
    const auto members = m_alice->call_ok(bus::SubscribersRequest{"doomed"});
    EXPECT_EQ(json_field(members, "bots"), Json::array());
}

TEST_F(Documented, ChannelDeletionsAndUnsubscriptionsAppearOnTheSystemTopic) {
    start();
    testing::Feed feed(m_context, *m_alice, {std::string(bus::k_channels_topic)});
    const auto subscribed = u64_field(m_alice->call_ok(bus::SubscribeRequest{"watched", std::nullopt}), "seq");
    const auto unsubscribed = u64_field(m_alice->call_ok(bus::UnsubscribeRequest{"watched", std::nullopt}), "seq");
    const auto deleted = u64_field(m_alice->call_ok(bus::ChannelDeleteRequest{"watched"}), "seq");
    const auto seen = feed.sync(*m_alice);

    std::vector<std::string> types;
    for (const auto& e : seen) types.push_back(e.type());
    ASSERT_EQ(types, (std::vector<std::string>{"channel.created", "subscription.added", "subscription.removed",
                                               "channel.deleted"}));
    for (const auto& e : seen) {
        EXPECT_EQ(e.topic, bus::k_channels_topic);
        EXPECT_EQ(e.event.at("channel"), "watched") << e.event.dump();
        EXPECT_EQ(e.event.at("by"), "alice") << e.event.dump();
        EXPECT_TRUE(e.event.at("ts").is_number_integer()) << e.event.dump();
    }
    EXPECT_EQ(seen[1].event.at("seq"), subscribed);
    const auto& removed = seen[2].event;
    EXPECT_EQ(removed.at("seq"), unsubscribed);
    EXPECT_EQ(removed.at("bot"), "alice");
    EXPECT_EQ(removed.size(), 6U) << "{event, seq, ts, by, channel, bot}: " << removed.dump();
    const auto& channel_deleted = seen[3].event;
    EXPECT_EQ(channel_deleted.at("seq"), deleted);
    EXPECT_EQ(channel_deleted.size(), 5U) << "{event, seq, ts, by, channel}: " << channel_deleted.dump();

    // Removing another bot's membership names that bot and who did it.
    m_alice->call_ok(bus::SubscribeRequest{"watched", "bob"});
    m_alice->call_ok(bus::UnsubscribeRequest{"watched", "bob"});
    const auto more = feed.sync(*m_alice);
    ASSERT_EQ(more.size(), 3U);
    EXPECT_EQ(more[2].type(), "subscription.removed");
    EXPECT_EQ(more[2].event.at("bot"), "bob");
    EXPECT_EQ(more[2].event.at("by"), "alice");
}

TEST_F(Documented, HistoryWithoutALimitAnswersTheDefaultHundredAndSaysThereIsMore) {
    start();
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 101; ++i) {
        ids.push_back(m_alice->send_request(
            bus::PublishRequest{"busy", std::nullopt, bus::pack_as_value(i), std::nullopt, std::nullopt}));
    }
    std::vector<std::uint64_t> seqs;
    for (const auto id : ids) seqs.push_back(u64_field(m_alice->wait_reply(id, "publish"), "seq"));

    bus::HistoryRequest request;
    request.channel = "busy";
    auto page = m_alice->history(request);
    ASSERT_EQ(page.messages.size(), 100U);
    EXPECT_TRUE(page.more);
    EXPECT_EQ(page.messages.front().seq, seqs.front());
    EXPECT_EQ(page.messages.back().seq, seqs[99]);

    request.after = page.messages.back().seq;
    page = m_alice->history(request);
    ASSERT_EQ(page.messages.size(), 1U);
    EXPECT_FALSE(page.more);
    EXPECT_EQ(page.messages.front().seq, seqs.back());

    request.after.reset();
    request.order = "desc";
    page = m_alice->history(request);
    ASSERT_EQ(page.messages.size(), 100U);
    EXPECT_TRUE(page.more);
    EXPECT_EQ(page.messages.front().seq, seqs.back());
}

// A DEALER that sends [empty][request] is answered [empty][reply], like a REQ
// socket, and like a REQ socket it is never pushed to: a push would be read
// as the reply.
TEST_F(Documented, ADealerThatSendsAnEmptyDelimiterIsNeverPushedDirectMessages) {
    start();
    zmq::socket_t dealer(m_context, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(m_daemon->command_endpoint());
    std::uint64_t next_id = 0;
    auto call = [&](const bus::Request& request) -> std::optional<bus::Reply> {
        const auto id = ++next_id;
        const auto frame = bus::encode_request(request, bus::pack_as_value(id));
        dealer.send(zmq::message_t(), zmq::send_flags::sndmore);
        dealer.send(zmq::buffer(frame), zmq::send_flags::none);
        zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, 10000ms) == 0) {
            ADD_FAILURE() << "no answer";
            return std::nullopt;
        }
        std::vector<zmq::message_t> parts;
        EXPECT_TRUE(zmq::recv_multipart(dealer, std::back_inserter(parts)));
        if (parts.size() != 2 || parts[0].size() != 0) {
            ADD_FAILURE() << "expected [empty][reply], got " << parts.size() << " frames";
            return std::nullopt;
        }
        auto reply = bus::decode_reply(parts[1].to_string_view());
        EXPECT_TRUE(reply) << "not a reply: a push?";
        if (reply) {
            EXPECT_EQ(reply->id, id) << "not the answer to this request";
        }
        return reply;
    };

    const auto hello = call(bus::HelloRequest{"carol"});  // pushes: default true
    ASSERT_TRUE(hello && hello->ok);
    const auto direct = m_alice->send("carol", bus::pack_as_value(std::string("for carol")));
    // A push would be sent as soon as the send is committed, so before the
    // answer to a request made after it.
    const auto pong = call(bus::PingRequest{});
    ASSERT_TRUE(pong);
    EXPECT_TRUE(pong->ok);
    bus::MailboxRequest mailbox;
    mailbox.bot = "carol";
    EXPECT_EQ(json_field(m_alice->call_ok(mailbox), "in_flight"), Json::array()) << "counted as delivered";

    // The message was deliverable: a plain DEALER for carol gets it.
    client::Client carol(m_context, options_for(*m_daemon));
    carol.hello("carol");
    const auto push = carol.next_push(10000ms);
    ASSERT_TRUE(push);
    EXPECT_EQ(push->seq, direct.seq);
    EXPECT_EQ(push->deliveries, 1U) << "the delimiter connection took a delivery";
    const auto after = call(bus::PingRequest{});
    EXPECT_TRUE(after && after->ok);
}

TEST_F(Documented, WorkflowGetWithNeitherSelectorIsMissingFieldAndWithBothInvalidField) {
    start();
    bus::WorkflowPutRequest put;
    const auto definition = Json::to_msgpack(Json{{"name", "deploy"}, {"steps", Json::array({{{"id", "build"}}})}});
    put.definition = bus::PackedValue{std::string(definition.begin(), definition.end())};
    const auto id = json_field(m_alice->call_ok(put), "workflow_id").get<std::string>();
    const auto events = events_of(*m_alice);

    const auto neither = m_alice->call(bus::WorkflowGetRequest{});
    EXPECT_FALSE(neither.ok);
    EXPECT_EQ(neither.error_name, "missing_field") << neither.message;
    EXPECT_EQ(m_alice->call(bus::WorkflowGetRequest{std::nullopt, std::nullopt, "bot", "alice"}).error_name,
              "missing_field")
        << "an owner without a name";

    // Both, where each alone finds the same workflow: still refused.
    const auto both = m_alice->call(bus::WorkflowGetRequest{id, "deploy", std::nullopt, std::nullopt});
    EXPECT_FALSE(both.ok);
    EXPECT_EQ(both.error_name, "invalid_field") << both.message;
    EXPECT_TRUE(m_alice->call(bus::WorkflowGetRequest{id, std::nullopt, std::nullopt, std::nullopt}).ok);
    EXPECT_TRUE(m_alice->call(bus::WorkflowGetRequest{std::nullopt, "deploy", std::nullopt, std::nullopt}).ok);
    EXPECT_EQ(events_of(*m_alice), events);
}

// Retention deletes settled mailbox messages, and a dead letter is settled:
// its message can be trimmed while the dead letter is kept. dlq.list then
// shows `message: nil`; dlq.replay has nothing to copy and says so.
TEST_F(Documented, ADeadLetterWhoseMessageWasTrimmedStillListsAndItsReplayIsNotFound) {
    start({"--ack-timeout-ms", "50", "--max-deliveries", "1", "--retention-max-messages", "1",
           "--trim-interval-ms", "10"});
    client::Client bob(m_context, options_for(*m_daemon));
    bob.hello("bob");  // takes pushes, never acknowledges
    const auto first = m_alice->send("bob", bus::pack_as_value(std::string("first")));
    const auto second = m_alice->send("bob", bus::pack_as_value(std::string("second")));

    bus::DlqListRequest list;
    list.bot = "bob";
    Json dead;
    ASSERT_TRUE(eventually([&] {
        dead = json_field(m_alice->call_ok(list), "dead_letters");
        return dead.size() == 2;
    })) << dead.dump();
    // The mailbox keeps one message: the older dead one goes.
    bus::HistoryRequest inbox;
    inbox.inbox = true;
    inbox.bot = "bob";
    ASSERT_TRUE(eventually([&] {
        const auto page = m_alice->history(inbox);
        return page.messages.size() == 1 && page.messages.front().seq == second.seq;
    })) << "the first dead message was not trimmed";

    dead = json_field(m_alice->call_ok(list), "dead_letters");
    ASSERT_EQ(dead.size(), 2U) << "trimming removed a dead letter: " << dead.dump();
    EXPECT_EQ(dead[0].at("bot"), "bob");
    EXPECT_EQ(dead[0].at("message_seq"), first.seq) << "which message died, once it is trimmed";
    EXPECT_TRUE(dead[0].at("message").is_null()) << "a trimmed message listed: " << dead[0].dump();
    EXPECT_EQ(dead[0].at("deliveries"), 1);
    EXPECT_TRUE(dead[0].at("reason").get<std::string>().starts_with("max_deliveries"));
    EXPECT_EQ(dead[1].at("message_seq"), second.seq);
    EXPECT_EQ(dead[1].at("message").at("seq"), second.seq);

    // The trimmed one cannot be replayed: not_found, naming the seq; nothing appended.
    const auto events = events_of(*m_alice);
    const auto refused = m_alice->call(bus::DlqReplayRequest{first.seq});
    EXPECT_FALSE(refused.ok);
    EXPECT_EQ(refused.error_name, "not_found");
    EXPECT_NE(refused.message.find(std::to_string(first.seq)), std::string::npos) << refused.message;
    EXPECT_EQ(events_of(*m_alice), events);
    EXPECT_FALSE(json_field(m_alice->call_ok(list), "dead_letters")[0].contains("replayed_seq"));

    // The kept one still replays.
    const auto replayed = m_alice->call_ok(bus::DlqReplayRequest{second.seq});
    EXPECT_GT(u64_field(replayed, "seq"), second.seq);
    std::optional<bus::Message> copy;
    const auto deadline = Clock::now() + 10s;
    while (Clock::now() < deadline && !(copy && copy->replay_of)) copy = bob.next_push(testing::until(deadline));
    ASSERT_TRUE(copy && copy->replay_of);
    EXPECT_EQ(*copy->replay_of, second.seq);
}

// The same for a durable subscription's dead letter whose channel message
// was trimmed.
TEST_F(Documented, AChannelDeadLetterWhoseMessageWasTrimmedStillListsAndItsReplayIsNotFound) {
    start({"--ack-timeout-ms", "50", "--max-deliveries", "1", "--retention-max-messages", "1",
           "--trim-interval-ms", "10"});
    client::Client bob(m_context, options_for(*m_daemon));
    bob.hello("bob");
    bus::SubscribeRequest durable;
    durable.channel = "alerts";
    durable.durable = true;
    bob.call_ok(durable);
    const auto first = m_alice->publish("alerts", bus::pack_as_value(1));
    bus::DlqListRequest list;
    list.bot = "bob";
    Json dead;
    ASSERT_TRUE(eventually([&] {
        dead = json_field(m_alice->call_ok(list), "dead_letters");
        return dead.size() == 1;
    })) << dead.dump();
    const auto second = m_alice->publish("alerts", bus::pack_as_value(2));  // the channel keeps this one only
    bob.ack(second.seq, {}, "alerts");  // settled: no second dead letter
    ASSERT_TRUE(eventually([&] {
        const auto kept = testing::full_history(*m_alice, "alerts");
        return kept.size() == 1 && kept.front().seq != first.seq;
    }));
    dead = json_field(m_alice->call_ok(list), "dead_letters");
    ASSERT_GE(dead.size(), 1U);
    EXPECT_EQ(dead[0].at("channel"), "alerts");
    EXPECT_EQ(dead[0].at("message_seq"), first.seq);
    EXPECT_TRUE(dead[0].at("message").is_null()) << dead[0].dump();
    const auto events = events_of(*m_alice);
    const auto refused = m_alice->call(bus::DlqReplayRequest{first.seq});
    EXPECT_EQ(refused.error_name, "not_found") << refused.message;
    EXPECT_EQ(events_of(*m_alice), events);
    dead = json_field(m_alice->call_ok(list), "dead_letters");
    ASSERT_EQ(dead.size(), 1U) << dead.dump();
    EXPECT_FALSE(dead[0].contains("replayed_seq"));
}

// When several bots' durable subscriptions gave up on one channel message,
// dlq.replay must be told whose dead letter to send back.
TEST_F(Documented, ReplayingAChannelMessageSeveralBotsGaveUpOnNeedsTheBot) {
    start({"--ack-timeout-ms", "50", "--max-deliveries", "1"});
    std::vector<std::unique_ptr<client::Client>> readers;
    for (const auto* name : {"bob", "carol"}) {
        readers.push_back(std::make_unique<client::Client>(m_context, options_for(*m_daemon)));
        readers.back()->hello(name);
        bus::SubscribeRequest durable;
        durable.channel = "alerts";
        durable.durable = true;
        readers.back()->call_ok(durable);
    }
    const auto dying = m_alice->publish("alerts", bus::pack_as_value(1));
    ASSERT_TRUE(eventually([&] {
        return json_field(m_alice->call_ok(bus::DlqListRequest{}), "dead_letters").size() == 2;
    }));
    const auto events = events_of(*m_alice);
    const auto ambiguous = m_alice->call(bus::DlqReplayRequest{dying.seq});
    EXPECT_EQ(ambiguous.error_name, "invalid_field") << ambiguous.message;
    EXPECT_EQ(events_of(*m_alice), events);
    const auto replayed = m_alice->call_ok(bus::DlqReplayRequest{dying.seq, "carol"});
    EXPECT_EQ(u64_field(replayed, "mailbox_seq"), 1U);
    const auto again = m_alice->call(bus::DlqReplayRequest{dying.seq, "carol"});
    EXPECT_EQ(again.error_name, "conflict") << again.message;
    EXPECT_TRUE(m_alice->call(bus::DlqReplayRequest{dying.seq, "bob"}).ok);
    const auto nobody = m_alice->call(bus::DlqReplayRequest{dying.seq, "dave"});
    EXPECT_EQ(nobody.error_name, "not_found") << nobody.message;
}

}  // namespace
}  // namespace botbus
