#include "bus/server/feed.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <stdexcept>
#include <utility>
#include <vector>

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
      m_pub(zmq, zmq::socket_type::pub),
      m_monitor(io, zmq, m_options.max_connections, "--max-feed-connections", ConnectionMonitor::Hooks{.closed = [](int) {}}),
      m_held(make_byte_counter()) {}

void Feed::bind() {
    m_pub.set(zmq::sockopt::sndhwm, m_options.hwm);
    m_pub.set(zmq::sockopt::linger, 0);
    // A subscriber gone without a FIN would hold its queue until TCP gives up.
    close_silent_peers(m_pub, m_options.heartbeat_ms);
    m_monitor.attach(m_pub);
    try {
        m_pub.bind(m_options.endpoint);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error("cannot bind feed endpoint " + m_options.endpoint + ": " + e.what());
    }
    m_bound = m_pub.get(zmq::sockopt::last_endpoint);
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
    m_monitor.stop(m_pub);
    m_pub.set(zmq::sockopt::linger, linger_ms);
    m_pub.close();
}

}  // namespace botbus::bus
