// What one connection may cost the daemon, and what happens past it: the
// replies held for a peer that does not read (bounded in bytes), connections
// past --max-connections, sessions of peers that closed or went silent, and
// requests that arrive while the daemon shuts down.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bus/protocol/codec.hpp"
#include "client/client.hpp"
#include "daemon_process.hpp"
#include "e2e_support.hpp"
#include "temp_dir.hpp"

namespace botbus {
namespace {

using namespace std::chrono_literals;
using testing::eventually;
using testing::options_for;
using testing::stat;

bool logged(const testing::DaemonProcess& daemon, const std::string& line) {
    return daemon.stderr_text().find(line) != std::string::npos;
}

// A DEALER that sends requests and never reads a reply.
std::unique_ptr<zmq::socket_t> stalled_peer(zmq::context_t& context, const testing::DaemonProcess& daemon) {
    auto socket = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    socket->set(zmq::sockopt::linger, 0);
    socket->set(zmq::sockopt::rcvhwm, 1);
    socket->set(zmq::sockopt::rcvbuf, 4096);
    socket->connect(daemon.command_endpoint());
    return socket;
}

// A bare TCP connection that speaks ZMTP 3.0 by hand as far as `ready`, so
// the test can make it go silent at a chosen point (libzmq always answers
// heartbeats).
class RawPeer {
public:
    explicit RawPeer(const std::string& endpoint) {
        const auto colon = endpoint.rfind(':');
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(static_cast<std::uint16_t>(std::stoi(endpoint.substr(colon + 1))));
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
        const timeval patience{.tv_sec = 10, .tv_usec = 0};  // a handshake never answered fails, not hangs
        ::setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
        if (::connect(m_fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
            ADD_FAILURE() << "connect: " << std::strerror(errno);
        }
    }
    RawPeer(const RawPeer&) = delete;
    RawPeer& operator=(const RawPeer&) = delete;
    ~RawPeer() { ::close(m_fd); }

    // Greeting (signature, version 3.0, NULL, client) and READY as a DEALER;
    // returns once the daemon's greeting and READY came back, so the
    // connection is known to be past its handshake.
    void handshake() {
        std::string greeting(64, '\0');
        greeting[0] = '\xff';
        greeting[9] = '\x7f';
        greeting[10] = 3;
        std::memcpy(&greeting[12], "NULL", 4);
        send(greeting);
        const auto theirs = receive(64);
        ASSERT_EQ(theirs.substr(12, 4), "NULL");
        const std::string name = "Socket-Type", value = "DEALER";
        std::string body = "\x05READY";
        body += static_cast<char>(name.size());
        body += name;
        body += std::string("\0\0\0", 3) + static_cast<char>(value.size());
        body += value;
        send(std::string(1, '\x04') + static_cast<char>(body.size()) + body);
        const auto header = receive(2);
        ASSERT_EQ(header[0], '\x04') << "the daemon answered its greeting with something else than a command";
        ASSERT_EQ(receive(static_cast<unsigned char>(header[1])).substr(0, 6), "\x05READY");
    }
    // The header of a frame of `size` bytes and `sent` of its bytes.
    void start_frame(std::uint64_t size, std::size_t sent) {
        std::string header(1, '\x02');  // long frame, last part
        for (int shift = 56; shift >= 0; shift -= 8) header += static_cast<char>((size >> shift) & 0xff);
        send(header + std::string(sent, 'x'));
    }

private:
    std::string receive(std::size_t size) {
        std::string bytes(size, '\0');
        std::size_t got = 0;
        while (got < size) {
            const auto n = ::recv(m_fd, bytes.data() + got, size - got, 0);
            if (n <= 0) {
                ADD_FAILURE() << "the daemon closed the connection during the handshake";
                return bytes;
            }
            got += static_cast<std::size_t>(n);
        }
        return bytes;
    }
    void send(const std::string& bytes) {
        ASSERT_EQ(::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    }
    int m_fd = -1;
};

TEST(PeerLimits, RepliesHeldForAPeerThatDoesNotReadAreBoundedInBytes) {
    testing::TempDir dir;
    constexpr std::uint64_t k_bound = 1024 * 1024;
    testing::DaemonProcess daemon(dir.path() / "data",
                                  {"--send-hwm", "1", "--max-peer-backlog-bytes", std::to_string(k_bound)});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    const std::string padding(64 * 1024, 'p');
    for (int i = 0; i < 8; ++i) alice.publish("big", bus::pack_as_value(std::to_string(i) + padding));

    // Each reply is ~0.5 MB: far fewer than --max-peer-backlog (100,000)
    // replies, but the bytes pass the bound after two or three, so nearly
    // all of them are dropped once the kernel's buffers are full.
    auto stalled = stalled_peer(context, daemon);
    for (int i = 0; i < 100; ++i) {
        bus::HistoryRequest request;
        request.channel = "big";
        request.limit = 8;
        stalled->send(zmq::buffer(bus::encode_request(bus::Request{request}, bus::pack_as_value(i))),
                      zmq::send_flags::none);
    }
    ASSERT_TRUE(eventually([&] { return stat(alice, "dropped_replies") >= 90; }))
        << "dropped " << stat(alice, "dropped_replies") << "\n"
        << daemon.stderr_text();
    EXPECT_LE(stat(alice, "backlog_bytes"), k_bound);
    EXPECT_TRUE(logged(daemon, "a peer is not reading its replies")) << daemon.stderr_text();
    EXPECT_GT(alice.publish("small", bus::pack_as_value("served")).seq, 0U);
}

// A daemon that holds at most 1 MiB of replies per peer, a channel whose
// history page is one 64 KiB message, and a peer that reads nothing.
class PeerLimitsBigPages : public ::testing::Test {
protected:
    static constexpr std::uint64_t k_bound = 1024 * 1024;

    void SetUp() override {
        alice.hello("alice");
        alice.publish("big", bus::pack_as_value(std::string(64 * 1024, 'p')));
    }
    // The stalled peer asks for the page.
    void ask(std::uint64_t id) {
        bus::HistoryRequest request;
        request.channel = "big";
        stalled->send(zmq::buffer(bus::encode_request(bus::Request{request}, bus::pack_as_value(id))),
                      zmq::send_flags::none);
    }

    testing::TempDir dir;
    // The default --send-hwm: 1000 replies of 64 KiB would be 64 MiB queued.
    testing::DaemonProcess daemon{dir.path() / "data", {"--max-peer-backlog-bytes", std::to_string(k_bound)}};
    zmq::context_t context;
    client::Client alice{context, options_for(daemon)};
    std::unique_ptr<zmq::socket_t> stalled = stalled_peer(context, daemon);
};

TEST_F(PeerLimitsBigPages, BigRepliesQueuedInZeroMqAreBoundedInBytesNotOnlyInCount) {
    for (std::uint64_t i = 0; i < 300; ++i) ask(i);
    // 1 MiB in ZeroMQ's queue, what the kernel's buffers take, 1 MiB held by
    // the daemon: about a hundred replies; the rest are dropped. Counted in
    // replies alone, all 300 would sit in ZeroMQ's queue.
    ASSERT_TRUE(eventually([&] { return stat(alice, "dropped_replies") >= 100; }))
        << "dropped " << stat(alice, "dropped_replies") << "\n"
        << daemon.stderr_text();
    EXPECT_LE(stat(alice, "backlog_bytes"), k_bound);
}

TEST_F(PeerLimitsBigPages, RepliesRetriedFromTheBacklogStayWithinTheByteBound) {
    // Requests paced one at a time give the backlog's retry (every
    // millisecond) its turn between them: a retry that moved held replies
    // into ZeroMQ's queue uncounted would keep taking every reply, and
    // ZeroMQ would hold all 300 (19 MiB) for a peer that reads nothing.
    // Each stats call counts itself: what is left over is the stalled peer's.
    const auto before = stat(alice, "requests");
    std::uint64_t stats_calls = 0;
    const auto stalled_requests_run = [&] {
        const auto requests = stat(alice, "requests");
        return requests - before - ++stats_calls;
    };
    for (std::uint64_t i = 0; i < 300; ++i) {
        ask(i);
        ASSERT_TRUE(eventually([&] { return stalled_requests_run() == i + 1; })) << daemon.stderr_text();
    }
    EXPECT_GE(stat(alice, "dropped_replies"), 100U) << daemon.stderr_text();
    EXPECT_LE(stat(alice, "backlog_bytes"), k_bound);
}

TEST(PeerLimits, ABatchOfBigPagesIsCutAndTheRestRunsNextInOrder) {
    testing::TempDir dir;
    // Room for every reply at once: a reader slowed by a loaded machine
    // must not make this a test of the backlog bound (the tests above).
    testing::DaemonProcess daemon(dir.path() / "data",
                                  {"--max-peer-backlog-bytes", "67108864", "--max-backlog-bytes", "134217728"});
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    alice.publish("big", bus::pack_as_value(std::string(512 * 1024, 'p')));

    // 80 pages of 512 KiB, 40 MiB of replies: more than one batch may build
    // (16 MiB), with a publish amid them. Each is answered, in order.
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 80; ++i) {
        if (i == 40) {
            bus::PublishRequest publish;
            publish.channel = "small";
            publish.body = bus::pack_as_value("amid the pages");
            ids.push_back(alice.send_request(bus::Request{publish}));
        }
        bus::HistoryRequest request;
        request.channel = "big";
        ids.push_back(alice.send_request(bus::Request{request}));
    }
    for (const auto id : ids) {
        const auto reply = alice.receive_reply(20s);
        if (!reply) {
            client::Client observer(context, options_for(daemon));
            const auto stats = observer.call_ok(bus::StatsRequest{});
            FAIL() << "no reply for request " << id << "; stats: " << stats.handle.get() << "\n" << daemon.stderr_text();
        }
        EXPECT_EQ(reply->id, id);
        EXPECT_TRUE(reply->ok) << reply->error_name << ": " << reply->message;
    }
    EXPECT_EQ(stat(alice, "dropped_replies"), 0U);
    // The publish amid the pages ran once.
    bus::HistoryRequest small;
    small.channel = "small";
    const auto history = alice.call_ok(bus::Request{small});
    const auto* messages = history.find("messages");
    ASSERT_TRUE(messages != nullptr && messages->type == msgpack::type::ARRAY);
    EXPECT_EQ(messages->via.array.size, 1U);
}

TEST(PeerLimits, ASessionIsFreedWhenItsConnectionCloses) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client observer(context, options_for(daemon));
    observer.hello("observer");
    const auto before = stat(observer, "sessions");
    {
        std::vector<std::unique_ptr<client::Client>> bots;
        for (int i = 0; i < 50; ++i) {
            bots.push_back(std::make_unique<client::Client>(context, options_for(daemon)));
            bots.back()->hello("bot-" + std::to_string(i));
        }
        EXPECT_EQ(stat(observer, "sessions"), before + 50);
        EXPECT_GE(stat(observer, "connections"), 51U);
    }
    // Closed: the daemon hears of it from libzmq, with no request needed.
    EXPECT_TRUE(eventually([&] { return stat(observer, "sessions") == before; }))
        << "sessions " << stat(observer, "sessions");
    EXPECT_TRUE(eventually([&] { return stat(observer, "connections") == 1; }))
        << "connections " << stat(observer, "connections");
}

TEST(PeerLimits, APeerThatStopsAnsweringHeartbeatsMidFrameIsClosedAndItsSessionFreed) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--heartbeat-ms", "100"});
    zmq::context_t context;
    client::Client observer(context, options_for(daemon));
    observer.hello("observer");
    RawPeer silent(daemon.command_endpoint());
    silent.handshake();
    // Half of a 512 kB frame: libzmq holds a buffer for all of it until the
    // connection closes.
    silent.start_frame(512 * 1024, 256 * 1024);
    ASSERT_TRUE(eventually([&] { return stat(observer, "connections") == 2; }));
    // No PONG ever comes: closed after three intervals, well before the
    // handshake or any request timeout.
    EXPECT_TRUE(eventually([&] { return stat(observer, "connections") == 1; }, 5s))
        << "connections " << stat(observer, "connections");
}

TEST(PeerLimits, ConnectionsPastTheLimitAreRefusedUntilOneCloses) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data", {"--max-connections", "2"});
    zmq::context_t context;
    client::Client first(context, options_for(daemon));
    first.hello("first");
    auto second = std::make_unique<client::Client>(context, options_for(daemon));
    second->hello("second");

    client::Client third(context, options_for(daemon));
    const auto ping = third.send_request(bus::PingRequest{});
    EXPECT_FALSE(third.receive_reply(300ms)) << "a third connection was served";
    EXPECT_GT(stat(first, "refused_connections"), 0U);
    EXPECT_EQ(stat(first, "connections"), 2U);
    EXPECT_TRUE(logged(daemon, "--max-connections")) << daemon.stderr_text();

    // libzmq keeps reconnecting the third; once the second leaves it gets
    // in. (Its first ping may have gone down with a refused connection, as
    // any request in flight on a lost connection: it asks again.)
    second.reset();
    EXPECT_TRUE(eventually([&] {
        third.send_request(bus::PingRequest{});
        const auto reply = third.receive_reply(200ms);
        return reply && reply->ok;
    })) << daemon.stderr_text();
    (void)ping;
}

TEST(PeerLimits, RequestsArrivingAfterSigtermAreRefusedUntilTheSocketCloses) {
    testing::TempDir dir;
    testing::DaemonProcess daemon(dir.path() / "data");
    zmq::context_t context;
    client::Client alice(context, options_for(daemon));
    alice.hello("alice");
    std::map<std::uint64_t, bool> unanswered;  // id -> sent after the first refusal
    const auto send_one = [&](bool late) {
        unanswered.emplace(alice.send_request(bus::PingRequest{}), late);
    };
    for (int i = 0; i < 100; ++i) send_one(false);
    ASSERT_EQ(::kill(daemon.pid(), SIGTERM), 0);

    // Keep sending until the daemon refuses, then send 100 more at once: the
    // daemon still has its socket open, so each must be answered.
    bool refusing = false;
    int late = 0;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!unanswered.empty() && std::chrono::steady_clock::now() < deadline) {
        if (!refusing) send_one(false);
        const auto reply = alice.receive_reply(refusing ? 2000ms : 5ms);
        if (!reply) {
            if (refusing) break;
            continue;
        }
        ASSERT_TRUE(reply->id);
        ASSERT_EQ(unanswered.erase(*reply->id), 1U);
        if (!reply->ok) {
            ASSERT_EQ(reply->error_name, "shutting_down") << reply->message;
            if (!refusing) {
                refusing = true;
                for (; late < 100; ++late) send_one(true);
            }
        }
    }
    ASSERT_TRUE(refusing) << daemon.stderr_text();
    EXPECT_EQ(late, 100);
    EXPECT_TRUE(unanswered.empty()) << unanswered.size() << " requests got no reply";
    EXPECT_EQ(daemon.wait(20s), 0) << daemon.stderr_text();
}

}  // namespace
}  // namespace botbus
