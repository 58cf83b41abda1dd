#include "bus/server/feed.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/post.hpp>

#include <stdexcept>
#include <utility>
#include <vector>

#include "bus/server/zap_handler.hpp"

namespace botbus::bus {
namespace {

constexpr auto k_check_interval = std::chrono::milliseconds(50);

// A connection whose socket buffer is full has stopped draining what is
// queued for it; one that drains is writable again within a round trip.
bool writable(int fd) {
    pollfd entry{.fd = fd, .events = POLLOUT, .revents = 0};
    return ::poll(&entry, 1, 0) == 1 && (entry.revents & POLLOUT) != 0;
}

}  // namespace

Feed::Feed(boost::asio::io_context& io, zmq::context_t& zmq, FeedOptions options)
    : m_options(std::move(options)),
      m_pub(zmq, zmq::socket_type::xpub),
      m_pub_fd(io),
      m_monitor(io, zmq, m_options.max_connections, "--max-feed-connections",
                ConnectionMonitor::Hooks{.closed = [this](int fd) { m_subscribers.erase(fd); }}),
      m_held(make_byte_counter()) {}

Feed::~Feed() {
    if (m_pub_fd.is_open()) m_pub_fd.release();  // libzmq's descriptor
}

void Feed::bind() {
    m_pub.set(zmq::sockopt::sndhwm, m_options.hwm);
    m_pub.set(zmq::sockopt::linger, 0);
    m_pub.set(zmq::sockopt::xpub_manual, 1);
    if (m_options.curve_secret_key) {
        m_pub.set(zmq::sockopt::curve_server, true);
        m_pub.set(zmq::sockopt::curve_secretkey, *m_options.curve_secret_key);
        m_pub.set(zmq::sockopt::zap_domain, k_zap_domain);
    }
    // A subscriber gone without a FIN would hold its queue until TCP gives up.
    close_silent_peers(m_pub, m_options.heartbeat_ms);
    m_monitor.attach(m_pub);
    try {
        m_pub.bind(m_options.endpoint);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error("cannot bind feed endpoint " + m_options.endpoint + ": " + e.what());
    }
    m_bound = m_pub.get(zmq::sockopt::last_endpoint);
    m_pub_fd.assign(m_pub.get(zmq::sockopt::fd));
    m_open = true;
    wait_readable();
}

void Feed::wait_readable() {
    if (!m_open || m_waiting) return;
    m_waiting = true;
    m_pub_fd.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
        m_waiting = false;
        if (!ec && m_open) read_subscriptions();
    });
}

void Feed::read_subscriptions() {
    if (!m_open) return;
    for (;;) {
        zmq::message_t message;
        try {
            if (!m_pub.recv(message, zmq::recv_flags::dontwait)) break;
        } catch (const zmq::error_t& e) {
            spdlog::error("feed subscription receive failed: {}", e.what());
            break;
        }
        if (message.size() == 0) continue;
        const auto* bytes = static_cast<const char*>(message.data());
        const std::string_view prefix(bytes + 1, message.size() - 1);
        auto* subscriber = note_subscriber(message);
        // Manual mode: a (un)subscribe applies to the connection whose
        // message was read last, so it is applied before the next read.
        try {
            if (bytes[0] == 0) {
                m_pub.set(zmq::sockopt::unsubscribe, prefix);
                if (subscriber) {
                    if (const auto it = subscriber->topics.find(std::string(prefix)); it != subscriber->topics.end()) {
                        subscriber->topics.erase(it);
                    }
                }
                continue;
            }
            if (bytes[0] != 1) continue;
            std::optional<std::string> user;
            if (const char* id = zmq_msg_gets(const_cast<zmq_msg_t*>(message.handle()), "User-Id")) user = id;
            if (!m_options.may_subscribe || m_options.may_subscribe(user, prefix)) {
                m_pub.set(zmq::sockopt::subscribe, prefix);
                if (subscriber) subscriber->topics.emplace(prefix);
            } else if (m_refused_subscriptions++ % 1000 == 0) {
                spdlog::info("feed: refused a subscription to {} for {} ({} so far)", prefix, user.value_or("an anonymous subscriber"),
                             m_refused_subscriptions);
            }
        } catch (const zmq::error_t& e) {
            spdlog::error("feed subscription failed: {}", e.what());
        }
    }
    // Edge-triggered: drained to EAGAIN, wait for the next edge.
    wait_readable();
}

Feed::Subscriber* Feed::note_subscriber(const zmq::message_t& message) {
    auto* handle = const_cast<zmq_msg_t*>(message.handle());
    // Deprecated in libzmq but kept: the only link from a message to the
    // connection the monitor reports on.
    const int fd = zmq_msg_get(handle, ZMQ_SRCFD);
    if (fd < 0) return nullptr;
    const char* user = zmq_msg_gets(handle, "User-Id");
    const char* key = zmq_msg_gets(handle, k_key_property);
    auto& subscriber = m_subscribers[fd];
    // A descriptor reused by a new connection (its close not yet reported)
    // starts afresh.
    const std::optional<std::string> bot = user ? std::optional<std::string>(user) : std::nullopt;
    if (subscriber.bot != bot || subscriber.key != (key ? key : "")) subscriber = Subscriber{bot, key ? key : "", {}};
    return &subscriber;
}

std::size_t Feed::shut(const std::function<bool(const Subscriber&)>& which) {
    m_monitor.poll();  // closes reported since: their descriptors may be reused
    std::vector<int> chosen;
    for (const auto& [fd, subscriber] : m_subscribers) {
        if (which(subscriber)) chosen.push_back(fd);
    }
    for (const int fd : chosen) {
        ::shutdown(fd, SHUT_RDWR);
        m_subscribers.erase(fd);
    }
    return chosen.size();
}

std::size_t Feed::close_connections_of(const std::string& bot) {
    return shut([&](const Subscriber& subscriber) { return subscriber.bot == bot; });
}

std::size_t Feed::close_unlisted_connections(
    const std::function<bool(const std::string& key, const std::string& bot)>& allowed) {
    return shut([&](const Subscriber& subscriber) { return subscriber.bot && !allowed(subscriber.key, *subscriber.bot); });
}

std::size_t Feed::recheck_subscriptions() {
    if (!m_options.may_subscribe) return 0;
    const auto shut_count = shut([&](const Subscriber& subscriber) {
        for (const auto& topic : subscriber.topics) {
            if (!m_options.may_subscribe(subscriber.bot, topic)) return true;
        }
        return false;
    });
    if (shut_count > 0) {
        spdlog::info("feed: a permission changed; closed {} subscriber connection(s) holding a subscription now refused",
                     shut_count);
    }
    return shut_count;
}

void Feed::publish(const std::string& topic, std::string event) {
    if (held_bytes() > m_options.max_held_bytes) shed_slow_subscribers();
    auto body = counted_message(std::move(event), m_held);
    try {
        // PUB never blocks: at the high-water mark it drops for that
        // subscriber, who sees a seq gap and repairs it from history.
        m_pub.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        m_pub.send(body, zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
        spdlog::error("feed send on {} failed: {}", topic, e.what());
    }
    // A send can take the ZMQ_FD edge of a subscription that came meanwhile:
    // look once, after this turn's publishing.
    if (!m_read_posted) {
        m_read_posted = true;
        boost::asio::post(m_pub_fd.get_executor(), [this] {
            m_read_posted = false;
            read_subscriptions();
        });
    }
}

void Feed::shed_slow_subscribers() {
    const auto now = std::chrono::steady_clock::now();
    if (now - m_last_check < k_check_interval) return;
    m_last_check = now;
    // The reports of connections opened or closed since the last look.
    m_monitor.poll();
    std::vector<int> stalled;
    for (const int fd : m_monitor.open_descriptors()) {
        if (!writable(fd)) stalled.push_back(fd);
    }
    for (const int fd : stalled) {
        // libzmq sees the connection end and frees the subscriber's queue;
        // its close report takes it off the open list.
        ::shutdown(fd, SHUT_RDWR);
        ++m_slow_disconnects;
    }
    if (!stalled.empty()) {
        spdlog::warn("feed: {} bytes queued for subscribers (--max-feed-bytes {}); disconnected {} that stopped "
                     "reading ({} so far)",
                     held_bytes(), m_options.max_held_bytes, stalled.size(), m_slow_disconnects);
    }
}

void Feed::close(int linger_ms) {
    m_open = false;
    if (m_pub_fd.is_open()) {
        m_pub_fd.cancel();
        m_pub_fd.release();
    }
    m_monitor.stop(m_pub);
    m_pub.set(zmq::sockopt::linger, linger_ms);
    m_pub.close();
}

}  // namespace botbus::bus
