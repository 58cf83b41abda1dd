// The daemon's ZAP handler (ZeroMQ RFC 27): decides, for every CURVE
// handshake on the command and feed sockets, whether the client's public key
// is on the allowlist, and names the connection's bot.
//
// Operation: start() binds a REP socket to inproc://zeromq.zap.01 on the
// daemon's zmq context (before the CURVE sockets bind: a CURVE socket with
// no handler there lets every key in). Its ZMQ_FD is waited on with Asio;
// each ZAP request is answered at once: 200 with User-Id = the bot the key
// maps to and a `Botbus-Key` metadata property holding the key (Z85), so
// a connection's key can be checked again after a reload; 400 for any other
// key, or another mechanism, which is counted in refusals(). replace()
// swaps the allowlist (SIGHUP): later handshakes see the new one; what to do
// with connections already made is the server's (allowed()).
// Concurrency: every method runs on the io_context's thread; libzmq's I/O
// threads wait for the reply meanwhile, so a handshake waits for the loop.
// Limitations: a refused client is not told (ZeroMQ closes the connection
// and the client library retries it), see PROTOCOL.md.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <zmq.hpp>

#include <cstdint>
#include <map>
#include <string>

namespace botbus::bus {

// Bot name by Z85 public key.
using KeyAllowlist = std::map<std::string, std::string>;

// The ZAP domain both CURVE sockets name.
inline constexpr const char* k_zap_domain = "botbus";
// The metadata property a ZAP-approved connection's messages carry its key in.
inline constexpr const char* k_key_property = "Botbus-Key";

class ZapHandler {
public:
    ZapHandler(boost::asio::io_context& io, zmq::context_t& zmq, KeyAllowlist allowlist);
    ZapHandler(const ZapHandler&) = delete;
    ZapHandler& operator=(const ZapHandler&) = delete;
    ~ZapHandler();

    // Binds the handler's socket; throws std::runtime_error when another
    // handler holds the address on this context.
    void start();
    void stop();

    void replace(KeyAllowlist allowlist) { m_allowlist = std::move(allowlist); }
    // Whether a connection made with `key` as `bot` would still be accepted.
    bool allowed(const std::string& key, const std::string& bot) const;
    std::size_t keys() const { return m_allowlist.size(); }
    std::uint64_t refusals() const { return m_refusals; }

private:
    void wait();
    void drain();

    KeyAllowlist m_allowlist;
    zmq::socket_t m_rep;
    boost::asio::posix::stream_descriptor m_rep_fd;
    bool m_started = false;
    bool m_waiting = false;
    std::uint64_t m_refusals = 0;
};

}  // namespace botbus::bus
