#include "bus/server/metrics_endpoint.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <list>
#include <optional>
#include <stdexcept>

namespace botbus::bus {

namespace beast = boost::beast;
namespace http = beast::http;
using boost::asio::ip::tcp;

namespace {

constexpr auto k_timeout = std::chrono::seconds(5);
constexpr std::size_t k_max_header_bytes = 8 * 1024;

tcp::endpoint parse_endpoint(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
        throw std::runtime_error("metrics endpoint '" + text + "': expected host:port, e.g. 127.0.0.1:9464");
    }
    auto host = text.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    boost::system::error_code ec;
    const auto address = boost::asio::ip::make_address(host, ec);
    if (ec) throw std::runtime_error("metrics endpoint '" + text + "': '" + host + "' is not an IP address");
    unsigned long port = 0;
    try {
        std::size_t used = 0;
        port = std::stoul(text.substr(colon + 1), &used);
        if (used != text.size() - colon - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
        port = 65536;
    }
    if (port > 65535) throw std::runtime_error("metrics endpoint '" + text + "': the port is not 0..65535");
    return {address, static_cast<unsigned short>(port)};
}

}  // namespace

class MetricsConnection;

struct MetricsEndpoint::State {
    MetricsHandlers handlers;
    std::list<std::weak_ptr<MetricsConnection>> open;
};

class MetricsConnection : public std::enable_shared_from_this<MetricsConnection> {
public:
    MetricsConnection(tcp::socket socket, std::shared_ptr<MetricsEndpoint::State> state)
        : m_stream(std::move(socket)), m_state(std::move(state)) {}

    void start(std::list<std::weak_ptr<MetricsConnection>>::iterator slot) {
        m_slot = slot;
        m_parser.emplace();
        m_parser->header_limit(k_max_header_bytes);
        m_parser->body_limit(0);
        m_stream.expires_after(k_timeout);
        http::async_read(m_stream, m_buffer, *m_parser,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    ~MetricsConnection() { m_state->open.erase(m_slot); }

    void close() {
        beast::error_code ignored;
        m_stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        m_stream.close();
    }

private:
    void on_read(beast::error_code ec) {
        if (ec) return;  // timed out, malformed or oversized: closed as this goes
        const auto& request = m_parser->get();
        m_response.version(request.version());
        m_response.keep_alive(false);
        m_response.set(http::field::server, "botbusd");
        const auto target = request.target();
        const auto path = target.substr(0, target.find('?'));
        if (request.method() != http::verb::get && request.method() != http::verb::head) {
            respond(http::status::method_not_allowed, "text/plain; charset=utf-8", "GET only\n");
            m_response.set(http::field::allow, "GET, HEAD");
        } else if (path == "/metrics") {
            respond(http::status::ok, "text/plain; version=0.0.4; charset=utf-8", m_state->handlers.metrics());
        } else if (path == "/healthz") {
            respond(http::status::ok, "text/plain; charset=utf-8", "ok\n");
        } else if (path == "/readyz") {
            const bool ready = m_state->handlers.ready();
            respond(ready ? http::status::ok : http::status::service_unavailable, "text/plain; charset=utf-8",
                    ready ? "ready\n" : "not ready: not serving, or the last batch failed to commit\n");
        } else {
            respond(http::status::not_found, "text/plain; charset=utf-8", "/metrics, /healthz or /readyz\n");
        }
        if (request.method() == http::verb::head) m_response.body().clear();
        m_stream.expires_after(k_timeout);
        http::async_write(m_stream, m_response, [self = shared_from_this()](beast::error_code, std::size_t) {
            beast::error_code ignored;
            self->m_stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        });
    }

    void respond(http::status status, const char* content_type, std::string body) {
        m_response.result(status);
        m_response.set(http::field::content_type, content_type);
        m_response.body() = std::move(body);
        m_response.prepare_payload();
    }

    beast::tcp_stream m_stream;
    std::shared_ptr<MetricsEndpoint::State> m_state;
    std::list<std::weak_ptr<MetricsConnection>>::iterator m_slot;
    beast::flat_buffer m_buffer{k_max_header_bytes};
    std::optional<http::request_parser<http::empty_body>> m_parser;
    http::response<http::string_body> m_response;
};

MetricsEndpoint::MetricsEndpoint(boost::asio::io_context& io, const std::string& endpoint, MetricsHandlers handlers)
    : m_acceptor(io), m_state(std::make_shared<State>(State{std::move(handlers), {}})) {
    const auto address = parse_endpoint(endpoint);
    boost::system::error_code ec;
    m_acceptor.open(address.protocol(), ec);
    if (!ec) m_acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) m_acceptor.bind(address, ec);
    if (!ec) m_acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::runtime_error("metrics endpoint " + endpoint + ": cannot listen: " + ec.message());
    accept();
}

MetricsEndpoint::~MetricsEndpoint() { stop(); }

std::string MetricsEndpoint::endpoint() const {
    boost::system::error_code ec;
    const auto bound = m_acceptor.local_endpoint(ec);
    if (ec) return {};
    const auto host = bound.address().to_string();
    return (bound.address().is_v6() ? "[" + host + "]" : host) + ":" + std::to_string(bound.port());
}

void MetricsEndpoint::stop() {
    boost::system::error_code ignored;
    m_acceptor.close(ignored);
    // Copied first: closing may end a connection, which leaves the list.
    std::vector<std::shared_ptr<MetricsConnection>> open;
    for (const auto& weak : m_state->open) {
        if (auto connection = weak.lock()) open.push_back(std::move(connection));
    }
    for (const auto& connection : open) connection->close();
}

void MetricsEndpoint::accept() {
    m_acceptor.async_accept([this, state = m_state](boost::system::error_code ec, tcp::socket socket) {
        if (ec == boost::asio::error::operation_aborted || !m_acceptor.is_open()) return;
        if (!ec) {
            if (state->open.size() >= k_max_connections) {
                boost::system::error_code ignored;
                socket.close(ignored);
            } else {
                auto connection = std::make_shared<MetricsConnection>(std::move(socket), state);
                connection->start(state->open.insert(state->open.end(), connection));
            }
        } else {
            spdlog::warn("metrics endpoint: accept failed: {}", ec.message());
        }
        accept();
    });
}

}  // namespace botbus::bus
