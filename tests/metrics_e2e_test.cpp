// botbusd's operator endpoint (--metrics-endpoint) against the real daemon:
// a scrape after real traffic passes `promtool check metrics` and agrees
// with the stats op; /healthz and /readyz answer; HTTP clients that send
// nothing, too much or garbage are closed without costing the bus's clients
// anything; without the option nothing listens.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "raw_wire.hpp"
#include "temp_dir.hpp"

namespace bus = botbus::bus;
namespace client = botbus::client;
using botbus::testing::DaemonProcess;
using botbus::testing::options_for;
using botbus::testing::stat;

namespace {

bus::PackedValue text(const std::string& s) { return bus::pack_as_value(s); }

// A TCP connection to host:port with 10 s send and receive timeouts.
class HttpSocket {
public:
    explicit HttpSocket(const std::string& endpoint) {
        const auto colon = endpoint.rfind(':');
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(endpoint.substr(colon + 1))));
        inet_pton(AF_INET, endpoint.substr(0, colon).c_str(), &address.sin_addr);
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeval timeout{10, 0};
        setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(m_fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        m_connected = ::connect(m_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    }
    ~HttpSocket() { ::close(m_fd); }
    HttpSocket(const HttpSocket&) = delete;
    HttpSocket& operator=(const HttpSocket&) = delete;

    bool connected() const { return m_connected; }
    void write(const std::string& bytes) {
        ASSERT_EQ(::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    }
    // Everything until the server closes (or the 10 s timeout: then what came).
    std::string read_all() {
        std::string out;
        char buffer[16384];
        for (;;) {
            const auto n = ::recv(m_fd, buffer, sizeof buffer, 0);
            if (n <= 0) return out;
            out.append(buffer, static_cast<std::size_t>(n));
        }
    }

private:
    int m_fd = -1;
    bool m_connected = false;
};

struct HttpResponse {
    int status = 0;
    std::string headers;
    std::string body;
};

HttpResponse http(const std::string& endpoint, const std::string& method, const std::string& path) {
    HttpSocket socket(endpoint);
    EXPECT_TRUE(socket.connected()) << endpoint;
    socket.write(method + " " + path + " HTTP/1.1\r\nHost: " + endpoint + "\r\n\r\n");
    const auto raw = socket.read_all();
    HttpResponse response;
    const auto head_end = raw.find("\r\n\r\n");
    if (raw.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return response;
    response.status = std::stoi(raw.substr(9, 3));
    response.headers = raw.substr(0, head_end);
    response.body = raw.substr(head_end + 4);
    return response;
}

// "name{labels}" -> value, for every sample of a scrape.
std::map<std::string, double> samples(const std::string& scrape) {
    std::map<std::string, double> out;
    std::istringstream lines(scrape);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.empty() || line[0] == '#') continue;
        const auto space = line.rfind(' ');
        out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    return out;
}

double sample(const std::map<std::string, double>& all, const std::string& key) {
    const auto it = all.find(key);
    if (it == all.end()) {
        ADD_FAILURE() << "no sample " << key;
        return -1;
    }
    return it->second;
}

class Metrics : public ::testing::Test {
protected:
    void SetUp() override {
        m_daemon = std::make_unique<DaemonProcess>(m_dir.path(),
                                                   std::vector<std::string>{"--metrics-endpoint", "127.0.0.1:0"});
        ASSERT_FALSE(m_daemon->metrics_endpoint().empty()) << "the ready line names the metrics endpoint";
    }
    void TearDown() override {
        if (m_daemon) {
            EXPECT_EQ(m_daemon->terminate(), 0) << m_daemon->stderr_text();
        }
    }

    botbus::testing::TempDir m_dir;
    std::unique_ptr<DaemonProcess> m_daemon;
};

TEST_F(Metrics, AScrapeAfterRealTrafficPassesPromtoolAndAgreesWithStats) {
    zmq::context_t context(1);
    client::Client alice(context, options_for(*m_daemon));
    alice.hello("alice");
    for (int i = 0; i < 40; ++i) alice.publish("ops", text("m" + std::to_string(i)));
    alice.send("bob", text("hi"));
    // Two refused requests: a bad channel name, and a frame that is no msgpack.
    const auto refused = alice.call(bus::PublishRequest{"no/slash", std::nullopt, text("x"), std::nullopt, std::nullopt});
    ASSERT_FALSE(refused.ok);
    botbus::testing::RawDealer raw(context, m_daemon->command_endpoint());
    const auto garbage = raw.call(std::string("\xc1\xc1", 2));
    ASSERT_TRUE(garbage);
    ASSERT_EQ(garbage->ok(), false);

    const auto stats = alice.call_ok(bus::StatsRequest{});
    const auto response = http(m_daemon->metrics_endpoint(), "GET", "/metrics");
    ASSERT_EQ(response.status, 200) << response.headers;
    EXPECT_NE(response.headers.find("text/plain; version=0.0.4"), std::string::npos) << response.headers;

    // Prometheus's own linter, on the real scrape.
    const auto file = m_dir.path() / "scrape.txt";
    std::ofstream(file) << response.body;
    // promtool reads the scrape on its standard input only.
    ASSERT_TRUE(std::filesystem::exists(BOTBUS_PROMTOOL_PATH))
        << BOTBUS_PROMTOOL_PATH << " is missing: run bash scripts/promtool.sh (scripts/test.sh does)";
    const auto promtool = botbus::testing::run_program(
        "/bin/sh", {"-c", std::string("exec '") + BOTBUS_PROMTOOL_PATH + "' check metrics < '" + file.string() + "'"},
        std::chrono::seconds(60));
    ASSERT_EQ(promtool.exit_code, 0) << "promtool check metrics: " << promtool.stdout_text << promtool.stderr_text;

    const auto all = samples(response.body);
    auto stat_of = [&stats](std::string_view key) { return static_cast<double>(botbus::testing::u64_field(stats, key)); };
    EXPECT_EQ(sample(all, "botbus_requests_total{op=\"publish\"}"), 41);
    EXPECT_EQ(sample(all, "botbus_requests_total{op=\"send\"}"), 1);
    EXPECT_EQ(sample(all, "botbus_request_errors_total{op=\"publish\",code=\"invalid_name\"}"), 1);
    EXPECT_EQ(sample(all, "botbus_request_errors_total{op=\"undecoded\",code=\"bad_request\"}"), 1);
    EXPECT_EQ(sample(all, "botbus_events_appended_total{type=\"message.published\"}"), 40);
    EXPECT_EQ(sample(all, "botbus_events_appended_total{type=\"message.sent\"}"), 1);
    EXPECT_EQ(sample(all, "botbus_events_appended_total{type=\"channel.created\"}"), 1);
    EXPECT_EQ(sample(all, "botbus_publish_ack_seconds_count"), 41) << "every acknowledged publish and send";
    // PostgreSQL's COMMIT is durable by itself: no syncs, no WAL of botbus's own.
    const bool syncs = !botbus::testing::test_store_is_postgres();
    if (syncs) {
        EXPECT_GE(sample(all, "botbus_sync_seconds_count"), 1);
    }
    EXPECT_EQ(sample(all, "botbus_sync_seconds_count"), stat_of("syncs"));

    // The stats op's figures, as they stood at the stats request (nothing ran since).
    double requests = 0;
    for (const auto& [key, value] : all) {
        if (key.rfind("botbus_requests_total{", 0) == 0) requests += value;
    }
    EXPECT_EQ(requests, stat_of("requests"));
    EXPECT_EQ(sample(all, "botbus_batches_total"), stat_of("batches"));
    EXPECT_EQ(sample(all, "botbus_batch_requests_count"), stat_of("batches"));
    EXPECT_EQ(sample(all, "botbus_log_last_seq"), stat_of("last_seq"));
    EXPECT_EQ(sample(all, "botbus_log_events"), stat_of("events"));
    EXPECT_EQ(sample(all, "botbus_log_messages"), stat_of("messages"));
    EXPECT_EQ(sample(all, "botbus_channels"), stat_of("channels"));
    EXPECT_EQ(sample(all, "botbus_connections"), stat_of("connections"));
    EXPECT_EQ(sample(all, "botbus_database_bytes"), stat_of("db_bytes"));
    EXPECT_EQ(sample(all, "botbus_checkpoints_total"), stat_of("checkpoints"));
    EXPECT_EQ(sample(all, "botbus_identified_bots"), 1) << "alice";
    if (syncs) {
        EXPECT_GT(sample(all, "botbus_wal_bytes"), 0);
    }
    EXPECT_EQ(sample(all, "botbus_ready"), 1);
    EXPECT_EQ(sample(all, "botbus_batch_requests_bucket{le=\"+Inf\"}"), sample(all, "botbus_batch_requests_count"));
}

TEST_F(Metrics, HealthAndReadinessAnswerAndOtherPathsAndMethodsAreRefused) {
    const auto& endpoint = m_daemon->metrics_endpoint();
    auto health = http(endpoint, "GET", "/healthz");
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(health.body, "ok\n");
    EXPECT_EQ(http(endpoint, "GET", "/readyz").status, 200);
    EXPECT_EQ(http(endpoint, "GET", "/metrics?name=x").status, 200) << "a query string is ignored";
    const auto head = http(endpoint, "HEAD", "/metrics");
    EXPECT_EQ(head.status, 200);
    EXPECT_TRUE(head.body.empty());
    const auto missing = http(endpoint, "GET", "/admin");
    EXPECT_EQ(missing.status, 404);
    EXPECT_NE(missing.body.find("/metrics"), std::string::npos) << "the 404 names what is served";
    EXPECT_EQ(http(endpoint, "POST", "/metrics").status, 405);
}

TEST_F(Metrics, HostileHttpClientsAreClosedAndTheBusServesMeanwhile) {
    const auto& endpoint = m_daemon->metrics_endpoint();
    zmq::context_t context(1);
    client::Client bot(context, options_for(*m_daemon));
    bot.hello("steady");

    // Garbage, and a header past 8 KiB: closed without an answer.
    {
        HttpSocket garbage(endpoint);
        garbage.write(std::string("\x16\x03\x01\x02\x00 not http\r\n\r\n"));
        EXPECT_EQ(garbage.read_all().find("200 OK"), std::string::npos);
        HttpSocket huge(endpoint);
        huge.write("GET /metrics HTTP/1.1\r\nX-Pad: " + std::string(9000, 'a') + "\r\n\r\n");
        EXPECT_EQ(huge.read_all().find("200 OK"), std::string::npos);
    }
    // Every slot held by connections that never send: the 17th is closed at
    // once; the bus answers meanwhile.
    std::vector<std::unique_ptr<HttpSocket>> idle;
    for (int i = 0; i < 16; ++i) {
        idle.push_back(std::make_unique<HttpSocket>(endpoint));
        ASSERT_TRUE(idle.back()->connected());
    }
    ASSERT_TRUE(botbus::testing::eventually([&] {
        HttpSocket extra(endpoint);
        extra.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        return extra.read_all().empty();
    })) << "a connection past the 16 open ones is closed unanswered";
    for (int i = 0; i < 20; ++i) bot.publish("busy", text("still served"));
    EXPECT_EQ(stat(bot, "messages"), 20U);

    // The idle ones time out (5 s) and the endpoint serves again.
    EXPECT_TRUE(idle.front()->read_all().empty()) << "an idle connection is closed by the daemon, unanswered";
    idle.clear();
    EXPECT_TRUE(botbus::testing::eventually([&] { return http(endpoint, "GET", "/healthz").status == 200; }));
}

TEST(MetricsDelivery, PushesRedeliveriesDeadLettersAndRetentionAreCounted) {
    botbus::testing::TempDir dir;
    DaemonProcess daemon(dir.path(), {"--metrics-endpoint", "127.0.0.1:0", "--ack-timeout-ms", "100",
                                      "--max-deliveries", "2", "--retention-max-messages", "4",
                                      "--trim-interval-ms", "20"});
    zmq::context_t context(1);
    client::Client bob(context, options_for(daemon));
    bob.hello("bob");  // takes pushes and never acknowledges them
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    for (int i = 0; i < 3; ++i) alice.send("bob", text("unanswered " + std::to_string(i)));
    for (int i = 0; i < 10; ++i) alice.publish("chatter", text("c" + std::to_string(i)));

    std::map<std::string, double> all;
    // Each message: pushed, pushed again after 100 ms, then dead-lettered;
    // the channel is trimmed to its last 4.
    EXPECT_TRUE(botbus::testing::eventually([&] {
        all = samples(http(daemon.metrics_endpoint(), "GET", "/metrics").body);
        return all["botbus_events_appended_total{type=\"message.dead_lettered\"}"] == 3 &&
               all["botbus_retention_deleted_messages_total"] == 6;
    })) << "dead letters " << all["botbus_events_appended_total{type=\"message.dead_lettered\"}"] << ", trimmed "
        << all["botbus_retention_deleted_messages_total"];
    EXPECT_EQ(sample(all, "botbus_pushes_total"), 6) << "three messages, each pushed twice";
    EXPECT_EQ(sample(all, "botbus_redeliveries_total"), 3);
    EXPECT_GE(sample(all, "botbus_events_appended_total{type=\"stream.trimmed\"}"), 1);
    while (bob.next_push(std::chrono::milliseconds(0))) {
    }
}

std::int64_t unix_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

TEST(MetricsBacklog, MailboxDepthOldestAgeAndSubscriptionLagComeFromTheScan) {
    botbus::testing::TempDir dir;
    DaemonProcess daemon(dir.path(), {"--metrics-endpoint", "127.0.0.1:0"});
    zmq::context_t context(1);
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    const auto before_us = unix_us();
    // carol and dave never connect: their messages wait in their mailboxes.
    for (int i = 0; i < 3; ++i) alice.send("carol", text("for carol " + std::to_string(i)));
    for (int i = 0; i < 2; ++i) alice.send("dave", text("for dave " + std::to_string(i)));
    // erin's pull subscription has read nothing of 4 messages, frank's of 1.
    client::Client erin(context, options_for(daemon));
    erin.hello("erin");
    bus::SubscribeRequest pull{"news", std::nullopt};
    pull.durable = true;
    pull.deliver = "pull";
    pull.from_seq = 1;
    erin.call_ok(pull);
    for (int i = 0; i < 3; ++i) alice.publish("news", text("n" + std::to_string(i)));
    client::Client frank(context, options_for(daemon));
    frank.hello("frank");
    frank.call_ok(pull);  // from the start too, then acknowledges all but the last
    alice.publish("news", text("n3"));
    const auto head = alice.publish("news", text("n4")).seq;
    (void)head;
    bus::AckRequest ack;
    ack.channel = "news";
    bus::HistoryRequest news;
    news.channel = "news";
    const auto page = alice.history(news);
    ASSERT_EQ(page.messages.size(), 5U);
    ack.upto = page.messages[3].seq;
    frank.call_ok(ack);

    std::map<std::string, double> all;
    EXPECT_TRUE(botbus::testing::eventually([&] {
        all = samples(http(daemon.metrics_endpoint(), "GET", "/metrics").body);
        // The maximum too: a scan made while the news were still being
        // published can add up to the same total (erin 3 + frank 3).
        return all["botbus_mailbox_unacked_messages"] == 5 && all["botbus_durable_subscription_lag_messages"] == 6 &&
               all["botbus_durable_subscription_max_lag_messages"] == 5;
    })) << "mailboxes " << all["botbus_mailbox_unacked_messages"] << ", lag "
        << all["botbus_durable_subscription_lag_messages"] << ", max lag "
        << all["botbus_durable_subscription_max_lag_messages"];
    EXPECT_EQ(sample(all, "botbus_mailboxes_with_unacked"), 2);
    EXPECT_EQ(sample(all, "botbus_mailbox_max_unacked_messages"), 3);
    EXPECT_EQ(sample(all, "botbus_durable_subscriptions"), 2);
    EXPECT_EQ(sample(all, "botbus_durable_subscription_max_lag_messages"), 5);
    // carol's first message is the oldest: at least as old as the time since
    // it was sent, as of the scrape.
    const double age_bound = static_cast<double>(unix_us() - before_us) / 1e6;
    EXPECT_GT(sample(all, "botbus_mailbox_oldest_unacked_age_seconds"), 0);
    EXPECT_LE(sample(all, "botbus_mailbox_oldest_unacked_age_seconds"), age_bound + 1);
    EXPECT_GT(sample(all, "botbus_backlog_scan_time_seconds"), static_cast<double>(before_us) / 1e6);

    // Once carol acknowledges hers, dave's are the only ones left.
    client::Client carol(context, options_for(daemon));
    carol.hello("carol", false);
    bus::AckRequest all_of_carol;
    all_of_carol.upto = head;
    carol.call_ok(all_of_carol);
    EXPECT_TRUE(botbus::testing::eventually([&] {
        all = samples(http(daemon.metrics_endpoint(), "GET", "/metrics").body);
        return all["botbus_mailbox_unacked_messages"] == 2;
    })) << all["botbus_mailbox_unacked_messages"];
    EXPECT_EQ(sample(all, "botbus_mailboxes_with_unacked"), 1);
}

TEST(MetricsOff, WithoutTheOptionNothingListensAndTheReadyLineNamesNone) {
    botbus::testing::TempDir dir;
    DaemonProcess daemon(dir.path());
    EXPECT_TRUE(daemon.metrics_endpoint().empty());
    EXPECT_EQ(daemon.terminate(), 0);
}

TEST(MetricsConfig, AMalformedOrTakenEndpointStopsStartUpNamingIt) {
    botbus::testing::TempDir dir;
    for (const std::string bad : {"9464", "localhost:9464", "127.0.0.1:99999", "127.0.0.1:x"}) {
        const auto result = botbus::testing::run_botbusd(
            {"-d", dir.path().string(), "--command-endpoint", "tcp://127.0.0.1:0", "--feed-endpoint",
             "tcp://127.0.0.1:0", "--metrics-endpoint", bad});
        EXPECT_EQ(result.exit_code, 1) << bad << ": " << result.stderr_text;
        EXPECT_NE(result.stderr_text.find("metrics endpoint '" + bad + "'"), std::string::npos) << result.stderr_text;
    }
    // A port another botbusd holds.
    DaemonProcess first(dir.path() / "one", {"--metrics-endpoint", "127.0.0.1:0"});
    const auto result = botbus::testing::run_botbusd(
        {"-d", (dir.path() / "two").string(), "--command-endpoint", "tcp://127.0.0.1:0", "--feed-endpoint",
         "tcp://127.0.0.1:0", "--metrics-endpoint", first.metrics_endpoint()});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.stderr_text.find("metrics endpoint " + first.metrics_endpoint() + ": cannot listen"),
              std::string::npos)
        << result.stderr_text;
}

}  // namespace
