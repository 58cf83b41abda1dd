#include "bus/server/connection_monitor.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <zmq_addon.hpp>

#include <boost/asio/post.hpp>

#include <cstring>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

namespace botbus::bus {
namespace {

struct Report {
    std::uint16_t event = 0;
    int fd = -1;
};

// libzmq's report: a 6-byte frame (event id, then value, host order) and
// the endpoint's address.
std::optional<Report> read_report(zmq::socket_t& pair) {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(pair, std::back_inserter(parts), zmq::recv_flags::dontwait)) return std::nullopt;
    Report report;
    if (parts.empty() || parts[0].size() < 6) return report;  // not one of ours: skipped
    std::uint32_t value = 0;
    std::memcpy(&report.event, parts[0].data(), sizeof report.event);
    std::memcpy(&value, static_cast<const char*>(parts[0].data()) + 2, sizeof value);
    report.fd = static_cast<int>(value);
    return report;
}

}  // namespace

void close_silent_peers(zmq::socket_t& socket, int heartbeat_ms) {
    socket.set(zmq::sockopt::handshake_ivl, 10000);
    if (heartbeat_ms > 0) {
        socket.set(zmq::sockopt::heartbeat_ivl, heartbeat_ms);
        socket.set(zmq::sockopt::heartbeat_timeout, 3 * heartbeat_ms);
        socket.set(zmq::sockopt::heartbeat_ttl, 3 * heartbeat_ms);
    }
}

ConnectionMonitor::ConnectionMonitor(boost::asio::io_context& io, zmq::context_t& zmq, std::size_t max_connections,
                                     std::string limit_option, Hooks hooks)
    : m_max_connections(max_connections),
      m_limit_option(std::move(limit_option)),
      m_hooks(std::move(hooks)),
      m_pair(zmq, zmq::socket_type::pair),
      m_pair_fd(io) {}

ConnectionMonitor::~ConnectionMonitor() {
    // The descriptor is libzmq's.
    if (m_pair_fd.is_open()) m_pair_fd.release();
}

void ConnectionMonitor::attach(zmq::socket_t& socket) {
    m_endpoint = "inproc://botbus-connections-" + std::to_string(reinterpret_cast<std::uintptr_t>(this));
    if (zmq_socket_monitor(socket.handle(), m_endpoint.c_str(), ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0) {
        throw std::runtime_error(std::string("cannot monitor a socket's connections: ") + zmq_strerror(zmq_errno()));
    }
    m_pair.set(zmq::sockopt::linger, 0);
    m_pair.connect(m_endpoint);
    m_pair_fd.assign(m_pair.get(zmq::sockopt::fd));
    m_attached = true;
    wait();
}

void ConnectionMonitor::wait() {
    if (!m_attached || m_waiting) return;
    m_waiting = true;
    m_pair_fd.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
        m_waiting = false;
        if (ec || !m_attached) return;
        poll();
    });
    // Asio waits for the descriptor's next edge, and libzmq signals only
    // when its queue of commands goes from empty to not: a report that came
    // before this wait began (or a command still unprocessed) would never
    // wake it. Asking for ZMQ_EVENTS processes the commands, so from here
    // every report makes an edge; one already there is read now.
    if (m_pair.get(zmq::sockopt::events) & ZMQ_POLLIN) {
        boost::asio::post(m_pair_fd.get_executor(), [this] {
            if (m_attached) poll();
        });
    }
}

void ConnectionMonitor::poll() {
    if (!m_attached) return;
    // Read everything first: a close later in the same run tells that an
    // accepted descriptor is already gone and must not be shut.
    std::vector<Report> reports;
    try {
        while (auto report = read_report(m_pair)) reports.push_back(*report);
    } catch (const zmq::error_t& e) {
        spdlog::error("reading connection reports failed: {}", e.what());
    }
    std::unordered_map<int, std::size_t> last_close;
    for (std::size_t i = 0; i < reports.size(); ++i) {
        if (reports[i].event == ZMQ_EVENT_DISCONNECTED) last_close[reports[i].fd] = i;
    }
    for (std::size_t i = 0; i < reports.size(); ++i) {
        const auto& report = reports[i];
        if (report.event == ZMQ_EVENT_ACCEPTED) {
            if (m_open.size() < m_max_connections) {
                m_open.insert(report.fd);
                continue;
            }
            const auto closed = last_close.find(report.fd);
            if (closed != last_close.end() && closed->second > i) continue;  // gone already
            // Not counted as open: its close report is ignored below.
            ::shutdown(report.fd, SHUT_RDWR);
            if (m_refused++ % 1000 == 0) {
                spdlog::warn("{} connections are open, the most allowed ({}); refused {} so far", m_open.size(),
                             m_limit_option, m_refused);
            }
        } else if (report.event == ZMQ_EVENT_DISCONNECTED) {
            if (m_open.erase(report.fd) > 0) m_hooks.closed(report.fd);
        }
    }
    // Edge-triggered: drained to EAGAIN, wait for the next edge.
    wait();
}

void ConnectionMonitor::stop(zmq::socket_t& socket) {
    if (!m_attached) return;
    m_attached = false;
    m_pair_fd.cancel();
    m_pair_fd.release();
    zmq_socket_monitor(socket.handle(), nullptr, 0);
    m_pair.close();
}

}  // namespace botbus::bus
