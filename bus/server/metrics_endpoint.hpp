// botbusd's HTTP endpoint for operators (--metrics-endpoint): GET /metrics
// (Prometheus text exposition), /healthz (the loop is turning: this answer
// comes from it) and /readyz (serving, and the database took the last batch).
//
// Operation: Boost.Beast on the daemon's own io_context, so a scrape reads the
// server's counters on the loop thread without locks; building one costs
// microseconds (counters, and the store's counts from two rows). Each
// connection answers one request and closes. A connection's request must
// arrive whole within 5 s (header at most 8 KiB, no body) and its answer be
// taken within 5 s; past that it is closed. At most 16 connections are open;
// more are closed on accept. A slow or hostile HTTP client costs a
// connection slot, never the loop.
// Concurrency: everything on the io_context's thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace botbus::bus {

struct MetricsHandlers {
    std::function<std::string()> metrics;  // the exposition text
    std::function<bool()> ready;
};

class MetricsEndpoint {
public:
    static constexpr std::size_t k_max_connections = 16;

    // Binds `host:port` ("127.0.0.1:9464", "[::1]:9464"; port 0 picks one)
    // and starts accepting; throws std::runtime_error naming the endpoint
    // when it is malformed or cannot be bound.
    MetricsEndpoint(boost::asio::io_context& io, const std::string& endpoint, MetricsHandlers handlers);
    ~MetricsEndpoint();
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

    // The bound address, as host:port with the actual port.
    std::string endpoint() const;
    // Stops accepting and closes every open connection.
    void stop();

    struct State;  // shared with the connections (metrics_endpoint.cpp)

private:
    void accept();

    boost::asio::ip::tcp::acceptor m_acceptor;
    std::shared_ptr<State> m_state;
};

}  // namespace botbus::bus
