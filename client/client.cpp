#include "client/client.hpp"

#include <random>

namespace botbus::client {
namespace {

using Clock = std::chrono::steady_clock;

Millis remaining(Clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    return left.count() > 0 ? left : Millis{0};
}

// A successful reply's fields as the op's declared reply; the defaults when
// they do not fit it.
template <typename R>
R reply_as(const bus::Reply& reply) {
    return bus::decode_reply_as<R>(reply).value_or(R{});
}

// The fetched or pushed message with its delivery count.
bus::Message delivered(bus::Message message, std::uint32_t deliveries, bool redelivered) {
    message.deliveries = deliveries;
    message.redelivered = redelivered;
    return message;
}

std::string random_token() {
    std::random_device device;
    std::mt19937_64 generator(device());
    static constexpr char k_digits[] = "0123456789abcdef";
    std::string token;
    for (int i = 0; i < 16; ++i) token.push_back(k_digits[generator() % 16]);
    return token;
}

bus::HistoryRequest history_after(const std::string& channel, std::uint64_t after_seq) {
    bus::HistoryRequest request;
    request.channel = channel;
    request.after = after_seq;
    request.limit = bus::k_max_history_limit;
    return request;
}

}  // namespace

ReplyError::ReplyError(bus::Errc code, std::string code_name, const std::string& message)
    : std::runtime_error(code_name + ": " + message), m_code(code), m_code_name(std::move(code_name)) {}

Client::Client(zmq::context_t& context, ClientOptions options)
    : m_context(context), m_options(std::move(options)), m_socket(context, zmq::socket_type::dealer) {
    m_nodes.push_back({m_options.command_endpoint, m_options.feed_endpoint});
    m_nodes.insert(m_nodes.end(), m_options.other_nodes.begin(), m_options.other_nodes.end());
    if (can_fail_over()) m_key_prefix = "c" + random_token();
    m_socket.set(zmq::sockopt::linger, 0);
    if (m_options.curve) use_curve(m_socket, *m_options.curve);
    m_socket.connect(m_options.command_endpoint);
}

void Client::connect_node(std::size_t index) {
    m_node = index;
    m_options.command_endpoint = m_nodes[index].command_endpoint;
    m_options.feed_endpoint = m_nodes[index].feed_endpoint;
    m_socket = zmq::socket_t(m_context, zmq::socket_type::dealer);
    m_socket.set(zmq::sockopt::linger, 0);
    if (m_options.curve) use_curve(m_socket, *m_options.curve);
    m_socket.connect(m_options.command_endpoint);
    m_stray_replies.clear();  // owed by the old node: they will not come
    ++m_generation;
}

void Client::fail_over() {
    std::string tried = m_options.command_endpoint;
    for (std::size_t step = 1; step < m_nodes.size(); ++step) {
        connect_node((m_node + 1) % m_nodes.size());
        tried += ", " + m_options.command_endpoint;
        if (!m_hello) return;
        const auto id = send_request(*m_hello);
        try {
            const auto reply = wait_reply(id, "hello");
            if (!reply.ok) throw ReplyError(reply.error, reply.error_name, reply.message);
            return;
        } catch (const TimeoutError&) {  // this one is gone too: the next
        }
    }
    throw TimeoutError("no node answered within " + std::to_string(m_options.timeout.count()) + " ms (" + tried + ")");
}

std::optional<std::string> Client::own_idempotency_key() {
    if (!can_fail_over()) return std::nullopt;
    return m_key_prefix + "-" + std::to_string(++m_keys_made);
}

std::uint64_t Client::send_request(const bus::Request& request) {
    const auto id = m_next_id++;
    const auto frame = bus::encode_request(request, bus::pack_as_value(id));
    m_socket.send(zmq::buffer(frame), zmq::send_flags::none);
    return id;
}

std::optional<bus::Reply> Client::read_one(Millis timeout) {
    // A frame already queued is taken without polling: zmq_poll costs a
    // poll(2) even when the socket has frames, once per reply of a pipeline.
    zmq::message_t frame;
    if (!m_socket.recv(frame, zmq::recv_flags::dontwait)) {
        if (timeout <= Millis{0}) return std::nullopt;
        zmq::pollitem_t item{m_socket.handle(), 0, ZMQ_POLLIN, 0};
        if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
        if (!m_socket.recv(frame, zmq::recv_flags::dontwait)) return std::nullopt;
    }
    const std::string_view bytes(static_cast<const char*>(frame.data()), frame.size());
    auto reply = bus::decode_reply(bytes);
    if (reply) return reply;
    // Not a reply: a push (bus/protocol/pushes.hpp).
    try {
        const auto handle = msgpack::unpack(bytes.data(), bytes.size());
        if (auto push = bus::decode_shape<bus::ReceivedPush>(handle.get())) {
            auto message = delivered(std::move(push->message), push->deliveries, push->redelivered);
            message.event = "message";
            m_pushes.push_back(std::move(message));
        } else if (auto caught_up = bus::decode_shape<bus::CaughtUpPush>(handle.get())) {
            bus::Message marker;
            marker.event = "caught_up";
            marker.channel = std::move(caught_up->channel);
            marker.seq = caught_up->seq;
            m_pushes.push_back(std::move(marker));
        }
    } catch (const std::exception&) {  // not msgpack: ignore the frame
    }
    return std::nullopt;
}

std::optional<bus::Reply> Client::receive_reply(Millis timeout) {
    if (!m_stray_replies.empty()) {
        auto reply = std::move(m_stray_replies.front());
        m_stray_replies.pop_front();
        return reply;
    }
    const auto deadline = Clock::now() + timeout;
    do {
        if (auto reply = read_one(remaining(deadline))) return reply;
    } while (Clock::now() < deadline);
    return std::nullopt;
}

bus::Reply Client::call(const bus::Request& request) {
    for (std::size_t attempt = 1;; ++attempt) {
        const auto id = send_request(request);
        try {
            return wait_reply(id, bus::op_name(bus::op_of(request)));
        } catch (const TimeoutError&) {
            if (attempt >= m_nodes.size()) throw;
            fail_over();
        }
    }
}

bus::Reply Client::wait_reply(std::uint64_t id, std::string_view what, std::optional<Millis> timeout) {
    const auto deadline = Clock::now() + timeout.value_or(m_options.timeout);
    for (auto it = m_stray_replies.begin(); it != m_stray_replies.end(); ++it) {
        if (it->id == id) {
            auto reply = std::move(*it);
            m_stray_replies.erase(it);
            return reply;
        }
    }
    while (Clock::now() < deadline) {
        auto reply = read_one(remaining(deadline));
        if (!reply) continue;
        if (reply->id == id) return std::move(*reply);
        m_stray_replies.push_back(std::move(*reply));
    }
    throw TimeoutError("no reply to " + std::string(what) + " from " +
                       m_options.command_endpoint + " within " + std::to_string(m_options.timeout.count()) + " ms");
}

bus::Reply Client::call_ok(const bus::Request& request) {
    auto reply = call(request);
    if (!reply.ok) throw ReplyError(reply.error, reply.error_name, reply.message);
    return reply;
}

void Client::hello(const std::string& bot, bool pushes) {
    bus::HelloRequest request{bot};
    if (!pushes) request.pushes = false;
    call_ok(request);
    m_hello = request;
}

Ack Client::publish(const std::string& channel, const bus::PackedValue& body, const std::string& type,
                    std::optional<std::string> idempotency_key, std::optional<std::uint64_t> reply_to) {
    if (!idempotency_key) idempotency_key = own_idempotency_key();
    const auto reply =
        reply_as<bus::PublishReply>(call_ok(bus::PublishRequest{channel, type, body, std::move(idempotency_key), reply_to}));
    return Ack{reply.seq, reply.channel_seq, reply.ts, reply.duplicate};
}

Ack Client::send(const std::string& to, const bus::PackedValue& body, const std::string& type,
                 std::optional<std::string> idempotency_key, std::optional<std::uint64_t> reply_to,
                 std::optional<std::uint64_t> ttl_ms) {
    if (!idempotency_key) idempotency_key = own_idempotency_key();
    const auto reply =
        reply_as<bus::SendReply>(call_ok(bus::SendRequest{to, type, body, std::move(idempotency_key), reply_to, ttl_ms}));
    return Ack{reply.seq, reply.mailbox_seq, reply.ts, reply.duplicate};
}

bus::Message Client::send_and_wait(const std::string& to, const bus::PackedValue& body, Millis timeout,
                                   const std::string& type) {
    const auto request = send(to, body, type);
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        for (auto it = m_pushes.begin(); it != m_pushes.end(); ++it) {
            if (it->reply_to == request.seq) {
                auto answer = std::move(*it);
                m_pushes.erase(it);
                ack(std::nullopt, {answer.seq});
                return answer;
            }
        }
        if (Clock::now() >= deadline) break;
        if (auto reply = read_one(remaining(deadline))) m_stray_replies.push_back(std::move(*reply));
    }
    throw TimeoutError("no answer from " + to + " to message seq " + std::to_string(request.seq) + " within " +
                       std::to_string(timeout.count()) + " ms");
}

std::uint64_t Client::ack(std::optional<std::uint64_t> upto, std::vector<std::uint64_t> seqs,
                          std::optional<std::string> channel) {
    bus::AckRequest request;
    request.upto = upto;
    if (!seqs.empty()) request.seqs = std::move(seqs);
    request.channel = std::move(channel);
    return reply_as<bus::AckReply>(call_ok(request)).acked;
}

Fetched Client::fetch(const std::string& channel, std::uint64_t max, Millis wait) {
    bus::FetchRequest request;
    request.channel = channel;
    request.max = max;
    if (wait.count() > 0) request.wait_ms = static_cast<std::uint64_t>(wait.count());
    const auto id = send_request(request);
    // The daemon answers a waiting fetch at its deadline: allow for that.
    const auto saved = m_options.timeout;
    m_options.timeout += wait;
    auto reply = [&] {
        try {
            return wait_reply(id, "fetch");
        } catch (...) {
            m_options.timeout = saved;
            throw;
        }
    }();
    m_options.timeout = saved;
    if (!reply.ok) throw ReplyError(reply.error, reply.error_name, reply.message);
    const auto decoded = reply_as<bus::ReceivedFetchReply>(reply);
    Fetched fetched;
    fetched.position = decoded.position;
    fetched.caught_up = decoded.caught_up;
    for (const auto& item : decoded.messages) {
        fetched.messages.push_back(delivered(item.message, item.deliveries, item.redelivered));
    }
    return fetched;
}

HistoryPage Client::history(const bus::HistoryRequest& request) { return history_page_of(call(request)); }

HistoryPage history_page_of(const bus::Reply& reply) {
    if (!reply.ok) throw ReplyError(reply.error, reply.error_name, reply.message);
    auto decoded = reply_as<bus::ReceivedHistoryReply>(reply);
    return HistoryPage{std::move(decoded.messages), decoded.more};
}

std::optional<bus::Message> Client::next_push(Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    while (m_pushes.empty()) {
        if (auto reply = read_one(remaining(deadline))) m_stray_replies.push_back(std::move(*reply));
        if (Clock::now() >= deadline && m_pushes.empty()) return std::nullopt;
    }
    auto message = std::move(m_pushes.front());
    m_pushes.pop_front();
    return message;
}

Subscription::Subscription(Client& client, std::string channel, std::optional<std::uint64_t> after_seq)
    : m_client(client),
      m_channel(std::move(channel)),
      m_topic(bus::channel_topic(m_channel)),
      m_sub(client.context(), zmq::socket_type::sub),
      m_generation(client.node_generation()) {
    connect_feed();
    if (after_seq) {
        m_last_seq = *after_seq;
    } else {
        // Live from now: start after the channel's newest message.
        bus::HistoryRequest newest;
        newest.channel = m_channel;
        newest.order = "desc";
        newest.limit = 1;
        try {
            const auto page = m_client.history(newest);
            if (!page.messages.empty()) {
                m_last_seq = page.messages.front().seq;
                m_last_channel_seq = page.messages.front().stream_seq;
            }
        } catch (const ReplyError& e) {
            if (e.code() != bus::Errc::not_found) throw;  // a channel yet to be created starts at 0
        }
    }
    m_catching_up = true;
    request_page(m_last_seq);
}

void Subscription::connect_feed() {
    do {
        m_generation = m_client.node_generation();
        m_sub = zmq::socket_t(m_client.context(), zmq::socket_type::sub);
        m_sub.set(zmq::sockopt::linger, 0);
        m_sub.set(zmq::sockopt::rcvhwm, 0);  // repairs are cheaper in memory than in history round trips
        m_sub.set(zmq::sockopt::subscribe, m_topic);
        if (m_client.options().curve) use_curve(m_sub, *m_client.options().curve);
        m_sub.connect(m_client.options().feed_endpoint);
    } while (!sync_feed());  // the client moved while confirming: the new node's feed
}

void Subscription::follow_client() {
    m_page_request.reset();  // asked of the old node
    connect_feed();
    m_catching_up = true;
    request_page(m_last_seq);
}

void Subscription::check_node() {
    if (m_client.node_generation() == m_generation) {
        const auto id = m_client.send_request(bus::PingRequest{});
        try {
            m_client.wait_reply(id, "ping");
        } catch (const TimeoutError&) {
            m_client.fail_over();
        }
    }
    if (m_client.node_generation() != m_generation) follow_client();
}

bool Subscription::sync_feed() {
    // PUB/SUB subscriptions take effect asynchronously. Subscriptions travel
    // in order, so once the sync marker arrives the channel topic is live too.
    const auto token = random_token();
    const auto sync = bus::sync_topic(token);
    m_sub.set(zmq::sockopt::subscribe, sync);
    const auto deadline = Clock::now() + m_client.options().timeout;
    while (Clock::now() < deadline) {
        m_client.call_ok(bus::FeedSyncRequest{token});
        if (m_client.node_generation() != m_generation) return false;
        const auto round_deadline = std::min(deadline, Clock::now() + Millis{100});
        while (Clock::now() < round_deadline) {
            zmq::pollitem_t item{m_sub.handle(), 0, ZMQ_POLLIN, 0};
            if (zmq::poll(&item, 1, remaining(round_deadline)) == 0) break;
            std::vector<zmq::message_t> parts;
            if (!zmq::recv_multipart(m_sub, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
            if (parts.size() != 2) continue;
            if (parts[0].to_string_view() == sync) {
                m_sub.set(zmq::sockopt::unsubscribe, sync);
                return true;
            }
            // Channel messages seen before the marker are duplicates of what
            // catch_up fetches; dropping them is safe.
        }
    }
    throw TimeoutError("feed " + m_client.options().feed_endpoint + " did not confirm the subscription");
}

void Subscription::request_page(std::uint64_t after_seq) {
    m_page_request = m_client.send_request(history_after(m_channel, after_seq));
}

void Subscription::take_page() {
    const auto id = *m_page_request;
    m_page_request.reset();
    const auto reply = [&] {
        try {
            return m_client.wait_reply(id, "history");
        } catch (const TimeoutError&) {
            if (!m_client.can_fail_over()) throw;
        }
        // The node went: ask the next one, from the same place.
        m_client.fail_over();
        m_page_request.reset();
        connect_feed();
        const auto again = m_client.send_request(history_after(m_channel, m_last_seq));
        return m_client.wait_reply(again, "history");
    }();
    if (!reply.ok && reply.error == bus::Errc::not_found) {
        m_catching_up = false;  // a channel yet to be created has no history
        return;
    }
    // Ask for the next page before decoding this one: the daemon reads it
    // meanwhile. Only the last message's seq is needed for that.
    const auto* more = reply.find("more");
    m_catching_up = more && more->type == msgpack::type::BOOLEAN && more->via.boolean;
    if (m_catching_up) {
        const auto* list = reply.find("messages");
        const auto last = list && list->type == msgpack::type::ARRAY && list->via.array.size > 0
                              ? bus::decode_message(list->via.array.ptr[list->via.array.size - 1])
                              : std::nullopt;
        if (last) request_page(last->seq);
    }
    auto page = history_page_of(reply);
    for (auto& message : page.messages) {
        m_last_seq = message.seq;
        m_last_channel_seq = message.stream_seq;
        m_ready.push_back(std::move(message));
    }
    if (m_catching_up && !m_page_request) request_page(m_last_seq);  // the peek failed: ask after the decode
}

void Subscription::catch_up_fully() {
    if (!m_page_request) request_page(m_last_seq);
    m_catching_up = true;
    while (m_catching_up) take_page();
}

bool Subscription::accept_live(bus::Message message) {
    if (message.seq <= m_last_seq) return false;  // already delivered from history
    if (!m_last_channel_seq || message.stream_seq != *m_last_channel_seq + 1) {
        // A gap (or no baseline yet): history is the truth.
        catch_up_fully();
        if (message.seq <= m_last_seq) return !m_ready.empty();
    }
    m_last_seq = message.seq;
    m_last_channel_seq = message.stream_seq;
    m_ready.push_back(std::move(message));
    return true;
}

std::optional<bus::Message> Subscription::next(Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    // With other nodes to go to, a quiet feed is checked once per client
    // timeout: a dead node's feed is quiet too.
    auto quiet_until = std::min(deadline, Clock::now() + m_client.options().timeout);
    while (m_ready.empty()) {
        if (m_client.node_generation() != m_generation) follow_client();  // the client moved meanwhile
        if (m_catching_up) {
            // Live messages wait in the socket meanwhile; those history
            // already delivered are dropped by seq once live takes over.
            take_page();
            continue;
        }
        zmq::pollitem_t item{m_sub.handle(), 0, ZMQ_POLLIN, 0};
        const auto slice = m_client.can_fail_over() ? quiet_until : deadline;
        if (zmq::poll(&item, 1, remaining(slice)) == 0) {
            if (!m_client.can_fail_over()) return std::nullopt;
            check_node();
            if (Clock::now() >= deadline && m_ready.empty() && !m_catching_up) return std::nullopt;
            quiet_until = std::min(deadline, Clock::now() + m_client.options().timeout);
            continue;
        }
        quiet_until = std::min(deadline, Clock::now() + m_client.options().timeout);
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(m_sub, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
        if (parts.size() != 2 || parts[0].to_string_view() != m_topic) continue;
        try {
            const auto handle = msgpack::unpack(static_cast<const char*>(parts[1].data()), parts[1].size());
            if (auto message = bus::decode_message(handle.get())) accept_live(std::move(*message));
        } catch (const std::exception&) {  // a frame we cannot read: the next gap repair covers it
        }
        if (m_ready.empty() && Clock::now() >= deadline) return std::nullopt;
    }
    auto message = std::move(m_ready.front());
    m_ready.pop_front();
    return message;
}

}  // namespace botbus::client
