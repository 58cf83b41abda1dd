#include "bus/server/transport.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <zmq_addon.hpp>

#include <chrono>
#include <iterator>
#include <stdexcept>
#include <utility>

#include "bus/server/zap_handler.hpp"

namespace botbus::bus {
namespace {

// Replies below this are only bounded by send_hwm (1000 of them are at most
// a MiB); counting them would cost an allocation each for nothing.
constexpr std::size_t k_counted_reply_bytes = 1024;

}  // namespace

Transport::Transport(boost::asio::io_context& io, zmq::context_t& zmq, TransportOptions options,
                     ServerCounters& counters, Hooks hooks)
    : m_options(std::move(options)),
      m_counters(counters),
      m_hooks(std::move(hooks)),
      m_router(zmq, zmq::socket_type::router),
      m_router_fd(io),
      m_backlog_timer(io),
      m_monitor(io, zmq, m_options.max_connections, "--max-connections",
                ConnectionMonitor::Hooks{.closed = [this](int fd) { connection_closed(fd); }}) {}

Transport::~Transport() {
    // The descriptor is the socket's own; closing it here would pull it from
    // under libzmq.
    if (m_router_fd.is_open()) m_router_fd.release();
}

void Transport::bind() {
    m_router.set(zmq::sockopt::router_mandatory, true);
    m_router.set(zmq::sockopt::linger, 0);
    m_router.set(zmq::sockopt::sndhwm, m_options.send_hwm);
    m_router.set(zmq::sockopt::rcvhwm, m_options.recv_hwm);
    close_silent_peers(m_router, m_options.heartbeat_ms);
    // A hard ceiling well above the frame limit: frames up to it get a
    // frame_too_large reply; beyond it libzmq drops the connection.
    const auto ceiling = static_cast<std::int64_t>(m_options.max_frame) * 2 + 64 * 1024;
    m_router.set(zmq::sockopt::maxmsgsize, ceiling);
    if (m_options.curve_secret_key) {
        m_router.set(zmq::sockopt::curve_server, true);
        m_router.set(zmq::sockopt::curve_secretkey, *m_options.curve_secret_key);
        m_router.set(zmq::sockopt::zap_domain, k_zap_domain);
    }
    m_monitor.attach(m_router);
    try {
        m_router.bind(m_options.command_endpoint);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error("cannot bind command endpoint " + m_options.command_endpoint + ": " + e.what());
    }
    m_bound_command = m_router.get(zmq::sockopt::last_endpoint);
    m_router_fd.assign(m_router.get(zmq::sockopt::fd));
    m_open = true;
}

void Transport::when_readable() {
    if (!m_open || m_armed) return;
    m_armed = true;
    m_router_fd.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
        m_armed = false;
        if (!ec) m_hooks.drain();
    });
    // A request that arrived after the drain's last receive and before the
    // wait began raised its edge before anyone waited for it.
    recheck_soon();
}

void Transport::recheck_soon() {
    // libzmq raises the command socket's descriptor only when its queue goes
    // from empty to non-empty, and any send or ZMQ_EVENTS query handles the
    // commands that would raise it. Done while the loop waits for that edge,
    // it can leave requests queued with nothing to wake the loop: look once.
    if (!m_armed || m_recheck_posted || !m_open) return;
    m_recheck_posted = true;
    boost::asio::post(m_router_fd.get_executor(), [this] {
        m_recheck_posted = false;
        if (m_open && pollin()) m_hooks.drain();
    });
}

std::vector<Inbound> Transport::receive(std::size_t max) {
    // Connections first: a request's connection is then always known.
    m_monitor.poll();
    std::vector<Inbound> batch;
    batch.reserve(std::min<std::size_t>(max, 64));
    std::size_t bytes = 0;
    while (batch.size() < max && bytes < m_options.max_batch_bytes) {
        std::vector<zmq::message_t> parts;
        std::optional<std::size_t> received;
        try {
            received = zmq::recv_multipart(m_router, std::back_inserter(parts), zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
            spdlog::error("command socket receive failed: {}", e.what());
            break;
        }
        if (!received) break;
        m_activity = true;
        Inbound in;
        in.routing_id = parts[0].to_string();
        note_peer_fd(in.routing_id, parts.back());
        for (const auto& part : parts) bytes += part.size();
        if (!note_peer_key(in.routing_id, parts.back())) continue;
        if (parts.size() == 2) {
            in.body = std::move(parts[1]);
        } else if (parts.size() == 3 && parts[1].size() == 0) {
            in.req_style = true;
            in.body = std::move(parts[2]);
        } else {
            // Answered in its place in the batch, so a client that matches
            // replies by order still can. Answer on the shape the peer most
            // likely expects.
            in.req_style = parts.size() > 2 && parts[1].size() == 0;
            in.problem = WireError{Errc::bad_request, "expected one body frame, after an optional empty delimiter"};
        }
        auto& peer = m_peers[in.routing_id];
        if (peer.in_flight >= m_options.max_in_flight) refuse_over_limit(in, peer.in_flight);
        ++peer.in_flight;  // refused ones too: their answers wait their turn like any other
        batch.push_back(std::move(in));
    }
    return batch;
}

void Transport::refuse_over_limit(Inbound& in, std::size_t in_flight) {
    if (!in.problem) {
        const auto decoded = decode_request(in.body.to_string_view(), m_options.max_frame);
        if (const auto* envelope = std::get_if<Envelope>(&decoded)) {
            in.problem_id = envelope->id;
        } else {
            in.problem_id = std::get<DecodeFailure>(decoded).id;
        }
    }
    in.body = zmq::message_t();  // never runs: its frame need not be held until its turn
    in.problem = WireError{Errc::limit_reached,
                           "--max-in-flight is " + std::to_string(m_options.max_in_flight) + ": this connection has " +
                               std::to_string(in_flight) +
                               " requests received and not yet answered; this one was not run. Read replies "
                               "before sending more"};
    if (m_counters.refused_in_flight++ % 10000 == 0) {
        spdlog::warn("a connection has {} requests in flight, the most allowed (--max-in-flight); refused {} so far",
                     in_flight, m_counters.refused_in_flight);
    }
}

bool Transport::requests_waiting() {
    const bool waiting = pollin();
    recheck_soon();
    return waiting;
}

bool Transport::pollin() {
    try {
        return (m_router.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
    } catch (const zmq::error_t&) {
        return false;
    }
}

std::optional<std::string> Transport::bot_of(const std::string& routing_id) const {
    const auto peer = m_peers.find(routing_id);
    if (peer == m_peers.end()) return std::nullopt;
    return peer->second.session.bot;
}

void Transport::set_bot(const std::string& routing_id, const std::optional<std::string>& bot) {
    auto& session = m_peers[routing_id].session;
    if (session.bot == bot) return;
    if (session.bot) {
        const auto it = m_bot_sessions.find(*session.bot);
        if (it != m_bot_sessions.end() && --it->second == 0) m_bot_sessions.erase(it);
    }
    if (bot) ++m_bot_sessions[*bot];
    session.bot = bot;
}

std::size_t Transport::bot_connections(const std::string& bot) const {
    const auto it = m_bot_sessions.find(bot);
    return it == m_bot_sessions.end() ? 0 : it->second;
}

std::size_t Transport::in_flight(const std::string& routing_id) const {
    const auto peer = m_peers.find(routing_id);
    return peer == m_peers.end() ? 0 : peer->second.in_flight;
}

void Transport::bind_session(const std::string& routing_id, const std::string& bot, bool can_push, bool fan_out) {
    auto& peer = m_peers[routing_id];
    // The session already carries the new name (set when the hello ran), so
    // the connection's previous bot is found by its routing id.
    std::vector<std::string> previous;
    for (auto it = m_bot_peers.begin(); it != m_bot_peers.end();) {
        if (it->second.erase(routing_id) > 0 && it->first != bot) previous.push_back(it->first);
        it = it->second.empty() ? m_bot_peers.erase(it) : std::next(it);
    }
    set_bot(routing_id, bot);
    peer.fan_out = can_push && fan_out;
    m_bot_peers[bot].insert(routing_id);
    if (!previous.empty()) m_hooks.rebound(routing_id, previous);
}

void Transport::unbind_session(const std::string& routing_id) {
    const auto it = m_peers.find(routing_id);
    if (it == m_peers.end()) return;
    std::vector<std::string> previous;
    for (auto bots = m_bot_peers.begin(); bots != m_bot_peers.end();) {
        if (bots->second.erase(routing_id) > 0) previous.push_back(bots->first);
        bots = bots->second.empty() ? m_bot_peers.erase(bots) : std::next(bots);
    }
    set_bot(routing_id, std::nullopt);
    it->second.fan_out = false;
    m_hooks.rebound(routing_id, previous);
}

std::vector<std::string> Transport::fan_out_connections(const std::string& bot) const {
    std::vector<std::string> out;
    const auto it = m_bot_peers.find(bot);
    if (it == m_bot_peers.end()) return out;
    for (const auto& routing_id : it->second) {
        const auto peer = m_peers.find(routing_id);
        if (peer != m_peers.end() && peer->second.fan_out) out.push_back(routing_id);
    }
    return out;
}

void Transport::forget_peer(const std::string& routing_id) {
    const auto it = m_peers.find(routing_id);
    if (it == m_peers.end()) return;
    const auto bot = it->second.session.bot;
    set_bot(routing_id, std::nullopt);
    if (bot) {
        const auto bots = m_bot_peers.find(*bot);
        if (bots != m_bot_peers.end()) {
            bots->second.erase(routing_id);
            if (bots->second.empty()) m_bot_peers.erase(bots);
        }
    }
    if (const auto fd = m_fd_peers.find(it->second.fd); fd != m_fd_peers.end()) {
        fd->second.erase(routing_id);
        if (fd->second.empty()) m_fd_peers.erase(fd);
    }
    m_peers.erase(it);
    if (const auto backlog = m_backlog.find(routing_id); backlog != m_backlog.end()) erase_backlog(backlog);
    m_hooks.forgotten(routing_id, bot);
}

void Transport::note_peer_fd(const std::string& routing_id, const zmq::message_t& part) {
    // Deprecated in libzmq but kept: the only link from a message to the
    // connection the monitor reports on.
    const int fd = zmq_msg_get(const_cast<zmq_msg_t*>(part.handle()), ZMQ_SRCFD);
    if (fd < 0) return;
    auto& peer = m_peers[routing_id];
    if (peer.fd == fd) return;
    if (const auto old = m_fd_peers.find(peer.fd); old != m_fd_peers.end()) {
        old->second.erase(routing_id);
        if (old->second.empty()) m_fd_peers.erase(old);
    }
    peer.fd = fd;
    m_fd_peers[fd].insert(routing_id);
}

bool Transport::note_peer_key(const std::string& routing_id, const zmq::message_t& part) {
    if (!m_options.curve_secret_key) return true;
    auto* message = const_cast<zmq_msg_t*>(part.handle());
    const char* user = zmq_msg_gets(message, "User-Id");
    const char* key = zmq_msg_gets(message, k_key_property);
    auto& peer = m_peers[routing_id];
    if (user && key) {
        peer.session.key_bot = user;
        peer.key = key;
    }
    if (!peer.session.key_bot || !m_hooks.key_allowed || m_hooks.key_allowed(peer.key, *peer.session.key_bot)) {
        return true;
    }
    spdlog::warn("closing a connection of bot {}: its key is no longer on the allowlist for it", *peer.session.key_bot);
    shut_connection(peer.fd);
    return false;
}

void Transport::shut_connection(int fd) {
    if (fd < 0) return;
    // libzmq sees the connection end; the monitor's close report forgets its
    // peers.
    ::shutdown(fd, SHUT_RDWR);
    ++m_auth_disconnects;
}

std::size_t Transport::close_unlisted_connections() {
    if (!m_hooks.key_allowed) return 0;
    std::set<int> unlisted;
    for (const auto& [routing_id, peer] : m_peers) {
        if (peer.fd >= 0 && peer.session.key_bot && !m_hooks.key_allowed(peer.key, *peer.session.key_bot)) {
            unlisted.insert(peer.fd);
        }
    }
    for (const int fd : unlisted) shut_connection(fd);
    return unlisted.size();
}

void Transport::connection_closed(int fd) {
    const auto it = m_fd_peers.find(fd);
    if (it == m_fd_peers.end()) return;
    const auto routing_ids = it->second;  // forget_peer edits the map
    for (const auto& routing_id : routing_ids) forget_peer(routing_id);
}

void Transport::send_to(const std::string& routing_id, bool req_style, std::string body) {
    deliver(routing_id, req_style, std::move(body), false);
}

void Transport::send_reply(const std::string& routing_id, bool req_style, std::string body) {
    deliver(routing_id, req_style, std::move(body), true);
}

void Transport::deliver(const std::string& routing_id, bool req_style, std::string body, bool reply) {
    auto backlog = m_backlog.find(routing_id);
    if (backlog == m_backlog.end()) {
        const bool sent = try_send(routing_id, req_style, body);
        recheck_soon();
        if (sent) {
            if (reply) answered(routing_id);
            return;
        }
        backlog = m_backlog.find(routing_id);
        if (backlog == m_backlog.end()) {  // peer vanished, or the send failed: nothing to keep
            if (reply) answered(routing_id);
            return;
        }
    }
    auto& held = backlog->second;
    if (held.replies.size() >= m_options.max_peer_backlog ||
        held.bytes + body.size() > m_options.max_peer_backlog_bytes) {
        drop_reply(routing_id, reply, "a peer is not reading its replies");
        return;
    }
    if (m_backlog_bytes + body.size() > m_options.max_backlog_bytes) {
        drop_reply(routing_id, reply, "the replies held for peers that are not reading reached --max-backlog-bytes");
        return;
    }
    held.bytes += body.size();
    m_backlog_bytes += body.size();
    held.replies.push_back(Pending{req_style, std::move(body), reply});
    schedule_backlog_retry();
}

void Transport::answered(const std::string& routing_id) {
    // A peer forgotten and made again (a request queued from a closed
    // connection) starts from nothing: never below zero.
    const auto peer = m_peers.find(routing_id);
    if (peer != m_peers.end() && peer->second.in_flight > 0) --peer->second.in_flight;
}

void Transport::drop_reply(const std::string& routing_id, bool reply, const char* why) {
    if (reply) answered(routing_id);
    if (++m_counters.dropped_replies % 10000 == 1) {
        spdlog::warn("{}: dropped {} replies so far", why, m_counters.dropped_replies);
    }
}

void Transport::pop_front(Backlog& backlog) {
    const auto size = backlog.replies.front().body.size();
    backlog.bytes -= size;
    m_backlog_bytes -= size;
    backlog.replies.pop_front();
}

void Transport::erase_backlog(std::map<std::string, Backlog>::iterator it) {
    m_backlog_bytes -= it->second.bytes;
    m_backlog.erase(it);
}

bool Transport::try_send(const std::string& routing_id, bool req_style, const std::string& body) {
    try {
        if (!send_now(routing_id, req_style, body)) {
            m_backlog[routing_id];  // full: start a backlog for this peer
            return false;
        }
        return true;
    } catch (const zmq::error_t& e) {
        if (e.num() == EHOSTUNREACH) {
            forget_peer(routing_id);
            return false;
        }
        spdlog::error("command socket send failed: {}", e.what());
        return false;
    }
}

bool Transport::send_now(const std::string& routing_id, bool req_style, const std::string& body) {
    // Big replies are counted while libzmq holds them: send_hwm bounds its
    // queue in replies, and a thousand 1 MiB pages would be a gigabyte.
    const auto peer = m_peers.find(routing_id);
    const bool counted = body.size() >= k_counted_reply_bytes && peer != m_peers.end();
    if (counted && (peer->second.queued->load(std::memory_order_relaxed) >= m_options.max_peer_backlog_bytes ||
                    m_queued->load(std::memory_order_relaxed) >= m_options.max_backlog_bytes)) {
        return false;  // full in bytes
    }
    if (!m_router.send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
    if (req_style) m_router.send(zmq::message_t(), zmq::send_flags::sndmore);
    if (counted) {
        m_router.send(counted_message(body, peer->second.queued, m_queued), zmq::send_flags::none);
    } else {
        m_router.send(zmq::buffer(body), zmq::send_flags::none);
    }
    return true;
}

void Transport::schedule_backlog_retry() {
    if (m_retry_scheduled || !m_open) return;
    m_retry_scheduled = true;
    m_backlog_timer.expires_after(std::chrono::milliseconds(1));
    m_backlog_timer.async_wait([this](boost::system::error_code ec) {
        m_retry_scheduled = false;
        if (ec || !m_open) return;
        retry_backlog();
        const bool more = m_hooks.after_retry();
        if (!m_backlog.empty() || more) schedule_backlog_retry();
        // Sends outside the drain loop can swallow the ZMQ_FD edge: drain.
        m_hooks.drain();
    });
}

void Transport::retry_backlog() {
    for (auto it = m_backlog.begin(); it != m_backlog.end();) {
        const std::string routing_id = it->first;
        auto& held = it->second;
        auto& queue = held.replies;
        bool gone = false;
        while (!queue.empty()) {
            try {
                // Counted like a first try: the backlog's replies must not
                // pass the byte bound by moving into libzmq's queue.
                if (!send_now(routing_id, queue.front().req_style, queue.front().body)) break;
                if (queue.front().reply) answered(routing_id);
                pop_front(held);
            } catch (const zmq::error_t&) {
                gone = true;
                break;
            }
        }
        if (gone || queue.empty()) {
            const auto next = std::next(it);
            erase_backlog(it);
            it = next;
            if (gone) {
                const auto peer = m_peers.find(routing_id);
                if (peer != m_peers.end()) forget_peer(routing_id);
            }
        } else {
            ++it;
        }
    }
    recheck_soon();
}

void Transport::stop_reading() {
    m_open = false;
    m_router_fd.cancel();
    m_backlog_timer.cancel();
}

void Transport::refuse_queued() {
    // Requests already queued on the socket will never run: say so, with
    // their ids, rather than leave their senders to time out. Nothing of them
    // was applied, so a retry elsewhere (or after restart) is safe.
    constexpr std::size_t k_most = 100000;
    std::size_t refused = 0;
    while (refused < k_most) {
        std::vector<zmq::message_t> parts;
        std::optional<std::size_t> received;
        try {
            received = zmq::recv_multipart(m_router, std::back_inserter(parts), zmq::recv_flags::dontwait);
        } catch (const zmq::error_t&) {
            break;
        }
        if (!received) break;
        m_activity = true;
        ++refused;
        const bool req_style = parts.size() > 2 && parts[1].size() == 0;
        const bool readable = parts.size() == 2 || (parts.size() == 3 && req_style);
        refuse_body(parts[0].to_string(), req_style, readable ? parts.back().to_string_view() : std::string_view(),
                    false);
    }
    if (refused > 0) spdlog::info("refused {} requests queued at shutdown", refused);
}

void Transport::refuse(const Inbound& in) {
    // A request refused for --max-in-flight already has its answer.
    if (in.problem && in.problem->code == Errc::limit_reached) {
        send_reply(in.routing_id, in.req_style, encode_error_reply(in.problem_id, *in.problem));
        return;
    }
    refuse_body(in.routing_id, in.req_style, in.problem ? std::string_view() : in.body.to_string_view(), true);
}

void Transport::refuse_body(const std::string& routing_id, bool req_style, std::string_view body, bool counted) {
    std::optional<PackedValue> id;
    if (!body.empty()) {
        const auto decoded = decode_request(body, m_options.max_frame);
        if (const auto* envelope = std::get_if<Envelope>(&decoded)) {
            id = envelope->id;
        } else {
            id = std::get<DecodeFailure>(decoded).id;
        }
    }
    deliver(routing_id, req_style,
            encode_error_reply(id, {Errc::shutting_down, "the daemon is stopping; this request was not applied"}),
            counted);
}

bool Transport::take_activity() {
    return std::exchange(m_activity, false);
}

void Transport::close(int linger_ms) {
    // Last chance for replies still waiting on full peers.
    retry_backlog();
    std::size_t left = 0;
    for (const auto& [peer, held] : m_backlog) left += held.replies.size();
    if (left > 0) spdlog::warn("dropping {} replies to peers that stopped reading", left);
    m_monitor.stop(m_router);
    m_router_fd.release();
    m_router.set(zmq::sockopt::linger, linger_ms);
    m_router.close();
}

}  // namespace botbus::bus
