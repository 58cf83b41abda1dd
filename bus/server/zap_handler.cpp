#include "bus/server/zap_handler.hpp"

#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

#include <boost/asio/post.hpp>

#include <array>
#include <iterator>
#include <stdexcept>
#include <utility>
#include <vector>

namespace botbus::bus {
namespace {

constexpr const char* k_zap_endpoint = "inproc://zeromq.zap.01";

// RFC 27 metadata: name length (1 byte), name, value length (4 bytes,
// network order), value.
std::string metadata(std::string_view name, std::string_view value) {
    std::string out;
    out.push_back(static_cast<char>(name.size()));
    out.append(name);
    const auto size = static_cast<std::uint32_t>(value.size());
    for (const int shift : {24, 16, 8, 0}) out.push_back(static_cast<char>((size >> shift) & 0xff));
    out.append(value);
    return out;
}

std::string z85(const zmq::message_t& key) {
    if (key.size() != 32) return {};
    std::array<char, 41> text{};
    if (!zmq_z85_encode(text.data(), static_cast<const std::uint8_t*>(key.data()), 32)) return {};
    return text.data();
}

}  // namespace

ZapHandler::ZapHandler(boost::asio::io_context& io, zmq::context_t& zmq, KeyAllowlist allowlist)
    : m_allowlist(std::move(allowlist)), m_rep(zmq, zmq::socket_type::rep), m_rep_fd(io) {}

ZapHandler::~ZapHandler() {
    if (m_rep_fd.is_open()) m_rep_fd.release();  // libzmq's descriptor
}

void ZapHandler::start() {
    m_rep.set(zmq::sockopt::linger, 0);
    try {
        m_rep.bind(k_zap_endpoint);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error(std::string("cannot start the ZAP handler: ") + e.what());
    }
    m_rep_fd.assign(m_rep.get(zmq::sockopt::fd));
    m_started = true;
    wait();
}

void ZapHandler::stop() {
    if (!m_started) return;
    m_started = false;
    m_rep_fd.cancel();
    m_rep_fd.release();
    m_rep.close();
}

bool ZapHandler::allowed(const std::string& key, const std::string& bot) const {
    const auto it = m_allowlist.find(key);
    return it != m_allowlist.end() && it->second == bot;
}

void ZapHandler::wait() {
    if (!m_started || m_waiting) return;
    m_waiting = true;
    m_rep_fd.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
        m_waiting = false;
        if (!ec && m_started) drain();
    });
    // ZMQ_FD is edge-triggered and a reply sent can swallow the edge of a
    // request already queued: asking for ZMQ_EVENTS processes libzmq's
    // commands, and a request already there is read now.
    if (m_rep.get(zmq::sockopt::events) & ZMQ_POLLIN) {
        boost::asio::post(m_rep_fd.get_executor(), [this] {
            if (m_started) drain();
        });
    }
}

void ZapHandler::drain() {
    for (;;) {
        std::vector<zmq::message_t> request;
        try {
            if (!zmq::recv_multipart(m_rep, std::back_inserter(request), zmq::recv_flags::dontwait)) break;
        } catch (const zmq::error_t& e) {
            spdlog::error("ZAP handler receive failed: {}", e.what());
            break;
        }
        // version, request id, domain, address, identity, mechanism, credentials...
        std::string status = "400";
        std::string text = "unknown key";
        std::string user;
        std::string meta;
        if (request.size() >= 7 && request[5].to_string_view() == "CURVE") {
            const auto key = z85(request[6]);
            const auto it = m_allowlist.find(key);
            if (it != m_allowlist.end()) {
                status = "200";
                text = "OK";
                user = it->second;
                meta = metadata(k_key_property, key);
            } else {
                ++m_refusals;
                spdlog::warn("refused a CURVE connection from {}: key {} is not on the allowlist ({} refused so far)",
                             request[3].to_string_view(), key, m_refusals);
            }
        } else {
            ++m_refusals;
            text = "botbus accepts CURVE only";
        }
        const auto request_id = request.size() > 1 ? request[1].to_string() : std::string();
        std::array<zmq::const_buffer, 6> reply{zmq::str_buffer("1.0"), zmq::buffer(request_id), zmq::buffer(status),
                                               zmq::buffer(text),      zmq::buffer(user),       zmq::buffer(meta)};
        try {
            zmq::send_multipart(m_rep, reply);
        } catch (const zmq::error_t& e) {
            spdlog::error("ZAP handler reply failed: {}", e.what());
        }
    }
    wait();
}

}  // namespace botbus::bus
