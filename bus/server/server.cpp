#include "bus/server/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <chrono>

#include "bus/core/workflow_handler.hpp"
#include "store/payloads.hpp"

namespace botbus::bus {
namespace {

// Batches handled per wake-up before yielding to other handlers (signals,
// timers); the continuation is posted so the edge is not lost.
constexpr int k_batches_per_turn = 16;

std::string encode_channel_event(const store::Event& event) {
    msgpack::object_handle keep_alive;
    msgpack::sbuffer out;
    msgpack::packer<msgpack::sbuffer> p(out);
    const bool is_subscription =
        event.type == store::event_type::k_subscribed || event.type == store::event_type::k_unsubscribed;
    p.pack_map(is_subscription ? 6 : 5);
    p.pack("event");
    p.pack(event.type);
    p.pack("seq");
    p.pack(event.seq);
    p.pack("ts");
    p.pack(event.ts_us);
    p.pack("by");
    p.pack(event.producer);
    if (is_subscription) {
        const auto payload = store::decode_payload<store::SubscriptionChanged>(event.type, event.payload, keep_alive);
        p.pack("channel");
        p.pack(payload.channel);
        p.pack("bot");
        p.pack(payload.bot);
    } else if (event.type == store::event_type::k_channel_created) {
        const auto payload = store::decode_payload<store::ChannelCreated>(event.type, event.payload, keep_alive);
        p.pack("channel");
        p.pack(payload.name);
    } else if (event.type == store::event_type::k_channel_retention_set) {
        const auto payload = store::decode_payload<store::ChannelRetentionSet>(event.type, event.payload, keep_alive);
        p.pack("channel");
        p.pack(payload.name);
    } else {
        const auto payload = store::decode_payload<store::ChannelDeleted>(event.type, event.payload, keep_alive);
        p.pack("channel");
        p.pack(payload.name);
    }
    return std::string(out.data(), out.size());
}

MessageView view_of(const store::Event& event, const store::MessageFields& fields) {
    MessageView v;
    v.seq = event.seq;
    v.stream_seq = event.stream_seq;
    v.ts_us = event.ts_us;
    v.from = event.producer;
    v.channel = fields.channel;
    v.to = fields.to;
    v.type = fields.type;
    v.body = fields.body;
    v.reply_to = fields.reply_to;
    v.conversation = fields.conversation;
    v.hop = fields.hop;
    v.expires_at = fields.expires_at;
    v.replay_of = fields.replay_of;
    return v;
}

std::string encode_dead_letter_event(const store::Event& event, const store::MessageDeadLettered& dead) {
    msgpack::sbuffer out;
    msgpack::packer<msgpack::sbuffer> p(out);
    p.pack_map(dead.channel ? 8 : 7);
    p.pack("event");
    p.pack(event.type);
    p.pack("seq");
    p.pack(event.seq);
    p.pack("ts");
    p.pack(event.ts_us);
    p.pack("bot");
    p.pack(dead.bot);
    if (dead.channel) {
        p.pack("channel");
        p.pack(*dead.channel);
    }
    p.pack("message_seq");
    p.pack(dead.message_seq);
    p.pack("reason");
    p.pack(dead.reason);
    p.pack("deliveries");
    p.pack(dead.deliveries);
    return std::string(out.data(), out.size());
}

}  // namespace

Server::Server(boost::asio::io_context& io, zmq::context_t& zmq, store::Store& store, ServerOptions options)
    : m_io(io),
      m_store(store),
      m_options(std::move(options)),
      m_router(zmq, zmq::socket_type::router),
      m_pub(zmq, zmq::socket_type::pub),
      m_router_fd(io),
      m_backlog_timer(io),
      m_lease_timer(io),
      m_redelivery_timer(io),
      m_trim_timer(io),
      m_settlement_timer(io),
      m_trimmer(store, m_options.retention),
      m_fetch_timer(io),
      m_handler(store, m_counters, WorkflowOptions{m_options.lease_us, {}}, m_options.messaging) {}

Server::~Server() {
    m_syncer.reset();  // joins before the members its callbacks use go away
    if (m_router_fd.is_open()) m_router_fd.release();
}

void Server::start() {
    m_router.set(zmq::sockopt::router_mandatory, true);
    m_router.set(zmq::sockopt::linger, 0);
    m_router.set(zmq::sockopt::sndhwm, m_options.send_hwm);
    m_router.set(zmq::sockopt::rcvhwm, 100000);
    // A hard ceiling well above the frame limit: frames up to it get a
    // frame_too_large reply; beyond it libzmq drops the connection.
    const auto ceiling = static_cast<std::int64_t>(m_options.max_frame) * 2 + 64 * 1024;
    m_router.set(zmq::sockopt::maxmsgsize, ceiling);
    m_pub.set(zmq::sockopt::sndhwm, m_options.feed_hwm);
    m_pub.set(zmq::sockopt::linger, 0);
    try {
        m_router.bind(m_options.command_endpoint);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error("cannot bind command endpoint " + m_options.command_endpoint + ": " + e.what());
    }
    try {
        m_pub.bind(m_options.feed_endpoint);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error("cannot bind feed endpoint " + m_options.feed_endpoint + ": " + e.what());
    }
    m_bound_command = m_router.get(zmq::sockopt::last_endpoint);
    m_bound_feed = m_pub.get(zmq::sockopt::last_endpoint);
    m_router_fd.assign(m_router.get(zmq::sockopt::fd));
    if (m_store.needs_sync()) {
        std::weak_ptr<int> alive = m_alive;
        m_syncer = std::make_unique<SyncThread>(
            [this] { m_store.sync(); },
            [this, alive](std::uint64_t through, std::exception_ptr error) {
                // Read by the loop between batches, so replies do not wait
                // behind a long run of batches for the posted handler.
                if (!error) m_sync_done.store(through, std::memory_order_release);
                boost::asio::post(m_io, [this, alive, through, error] {
                    if (alive.lock()) on_synced(through, error);
                });
            });
    }
    m_counters.started_at_us = store::now_us();
    m_visible_seq = m_store.last_seq();
    m_running = true;
    schedule_trim();
    // Runs left running by the previous daemon get a full lease period:
    // their executors may still be alive and about to heartbeat.
    m_handler.grant_grace(store::now_us());
    schedule_lease_check();
    spdlog::info("serving commands on {} and the feed on {}", m_bound_command, m_bound_feed);
    // Messages may already be queued: drain before waiting for the first edge.
    boost::asio::post(m_io, [this] { on_readable(); });
}

void Server::stop(int linger_ms) {
    if (!m_running) return;
    m_running = false;
    m_router_fd.cancel();
    m_backlog_timer.cancel();
    // A pending lease check would keep io_context::run() going until the
    // earliest lease ran out (30 s by default) after SIGTERM.
    m_lease_timer.cancel();
    m_lease_check_at.reset();
    m_redelivery_timer.cancel();
    m_fetch_timer.cancel();
    m_trim_timer.cancel();
    m_settlement_timer.cancel();
    sync_and_release_all();
    refuse_queued();
    // Last chance for replies still waiting on full peers.
    retry_backlog();
    std::size_t left = 0;
    for (const auto& [peer, queue] : m_backlog) left += queue.size();
    if (left > 0) spdlog::warn("dropping {} replies to peers that stopped reading", left);
    m_router_fd.release();
    m_router.set(zmq::sockopt::linger, linger_ms);
    m_pub.set(zmq::sockopt::linger, linger_ms);
    m_router.close();
    m_pub.close();
    spdlog::info("stopped serving");
}

void Server::refuse_queued() {
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
        ++refused;
        const bool req_style = parts.size() > 2 && parts[1].size() == 0;
        std::optional<PackedValue> id;
        if (parts.size() == 2 || (parts.size() == 3 && req_style)) {
            const auto decoded = decode_request(parts.back().to_string_view(), m_options.max_frame);
            if (const auto* envelope = std::get_if<Envelope>(&decoded)) {
                id = envelope->id;
            } else {
                id = std::get<DecodeFailure>(decoded).id;
            }
        }
        send_to(parts[0].to_string(), req_style,
                encode_error_reply(id, {Errc::shutting_down, "the daemon is stopping; this request was not applied"}));
    }
    if (refused > 0) spdlog::info("refused {} requests queued at shutdown", refused);
}

void Server::arm() {
    if (!m_running || m_armed) return;
    m_armed = true;
    m_router_fd.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
        m_armed = false;
        if (!ec) on_readable();
    });
}

void Server::on_readable() {
    if (!m_running) return;
    for (int turn = 0; turn < k_batches_per_turn; ++turn) {
        release_synced(m_sync_done.load(std::memory_order_acquire));
        if (drain_once() == 0) {
            // Drained to EAGAIN: the next message raises a new edge.
            arm();
            return;
        }
        if (!m_running) return;
    }
    boost::asio::post(m_io, [this] { on_readable(); });
}

std::size_t Server::drain_once() {
    std::vector<Inbound> batch;
    batch.reserve(std::min<std::size_t>(m_options.max_batch, 64));
    while (batch.size() < m_options.max_batch) {
        std::vector<zmq::message_t> parts;
        std::optional<std::size_t> received;
        try {
            received = zmq::recv_multipart(m_router, std::back_inserter(parts), zmq::recv_flags::dontwait);
        } catch (const zmq::error_t& e) {
            spdlog::error("command socket receive failed: {}", e.what());
            break;
        }
        if (!received) break;
        Inbound in;
        in.routing_id = parts[0].to_string();
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
        batch.push_back(std::move(in));
    }
    if (!batch.empty()) run_batch(batch);
    return batch.size();
}

void Server::run_batch(std::vector<Inbound>& batch) {
    m_counters.requests += batch.size();
    ++m_counters.batches;
    m_counters.syncs = m_inline_syncs + (m_syncer ? m_syncer->completed() : 0);
    Release out;
    out.replies.reserve(batch.size());
    std::vector<Outcome> outcomes;
    outcomes.reserve(batch.size());
    // Decoded before the transaction, so that a batch that fails to commit
    // still answers every request with its own id.
    std::vector<std::variant<Envelope, DecodeFailure>> decoded;
    decoded.reserve(batch.size());
    for (const auto& in : batch) {
        if (in.problem) {
            decoded.emplace_back(DecodeFailure{*in.problem, std::nullopt});
        } else {
            decoded.push_back(decode_request(in.body.to_string_view(), m_options.max_frame));
        }
    }
    struct IdentityChange {
        std::string routing_id;
        std::optional<std::string> previous;
    };
    std::vector<IdentityChange> identity_changes;  // undone when the batch fails
    bool committed = false;
    try {
        auto tx = m_store.begin();
        for (std::size_t i = 0; i < batch.size(); ++i) {
            const auto& in = batch[i];
            if (const auto* failure = std::get_if<DecodeFailure>(&decoded[i])) {
                outcomes.push_back(Outcome{encode_error_reply(failure->id, failure->error), true});
                continue;
            }
            const auto& envelope = std::get<Envelope>(decoded[i]);
            auto& peer = m_peers[in.routing_id];
            peer.session.req_style = in.req_style;
            auto outcome = m_handler.handle(envelope, peer.session, tx);
            if (outcome.hello_bot) {
                // Identity applies to this connection's next requests at once,
                // including later ones in this batch.
                identity_changes.push_back({in.routing_id, peer.session.bot});
                peer.session.bot = *outcome.hello_bot;
                // REQ sockets take only replies; a push would be read as one.
                out.changes.emplace_back(Hello{in.routing_id, *outcome.hello_bot, in.req_style || !outcome.hello_pushes});
            }
            if (outcome.sync_token) out.sync_tokens.push_back(*outcome.sync_token);
            if (outcome.unbind_channel && peer.session.bot) {
                out.changes.emplace_back(Unbind{in.routing_id, Reader{*outcome.unbind_channel, *peer.session.bot, ""}});
            }
            if (outcome.binding) out.changes.emplace_back(Bind{in.routing_id, std::move(*outcome.binding)});
            if (outcome.fetch_wait) {
                out.fetch_waits.push_back({in.routing_id, in.req_style, envelope.id, *outcome.fetch_wait});
            }
            outcomes.push_back(std::move(outcome));
        }
        tx.commit_unsynced();
        committed = true;
        out.events = tx.take_events();
    } catch (const std::exception& e) {
        spdlog::error("batch of {} requests failed and was rolled back: {}", batch.size(), e.what());
    }
    m_counters.sessions = m_peers.size();

    if (!committed) {
        // Nothing of the batch is durable, so nothing of it may be shown, and
        // none of its hellos holds: their replies say they failed.
        for (auto it = identity_changes.rbegin(); it != identity_changes.rend(); ++it) {
            m_peers[it->routing_id].session.bot = it->previous;
        }
        Release failed;
        for (std::size_t i = 0; i < batch.size(); ++i) {
            std::string reply;
            if (const auto* failure = std::get_if<DecodeFailure>(&decoded[i])) {
                reply = encode_error_reply(failure->id, failure->error);  // never had a chance either way
            } else {
                reply = encode_error_reply(std::get<Envelope>(decoded[i]).id,
                                           {Errc::storage_error, "the batch could not be committed"});
            }
            failed.replies.push_back({std::move(batch[i].routing_id), batch[i].req_style, std::move(reply)});
        }
        m_counters.errors += batch.size();
        hold(std::move(failed), false);  // after the replies of earlier batches
        return;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (outcomes[i].failed) ++m_counters.errors;
        if (outcomes[i].fetch_wait) continue;  // answered when messages come, or at its deadline
        out.replies.push_back({std::move(batch[i].routing_id), batch[i].req_style, std::move(outcomes[i].reply)});
    }
    schedule_lease_check();  // starts, resumes and heartbeats move lease expiries
    const bool appended = !out.events.empty();
    hold(std::move(out), appended);
}

void Server::hold(Release batch, bool appended) {
    if (appended) ++m_committed_ticket;
    batch.ticket = m_committed_ticket;
    if (!m_syncer || (m_held.empty() && batch.ticket <= m_synced_ticket)) {
        // Nothing to wait for: durable already, or a store that does not sync.
        release(batch);
        return;
    }
    const bool sync_idle = m_held.empty() && m_synced_ticket + 1 == m_committed_ticket;
    if (appended && sync_idle && !requests_waiting()) {
        // Nothing to overlap the sync with: syncing here saves the two
        // thread hand-offs, which on a busy machine cost more than the sync.
        sync_here();
        release(batch);
        return;
    }
    m_held.push_back(std::move(batch));
    if (appended) m_syncer->request(m_committed_ticket);
}

bool Server::requests_waiting() {
    try {
        return (m_router.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
    } catch (const zmq::error_t&) {
        return false;
    }
}

void Server::on_synced(std::uint64_t through, std::exception_ptr error) {
    if (error) {
        // The batches held are committed in SQLite but perhaps not on disk,
        // and later batches may already have read them. Stopping is the one
        // safe answer; after a restart the log holds what was durable.
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("cannot make committed batches durable, stopping: ") + e.what());
        }
    }
    // The sends happened outside the drain loop and may have swallowed the
    // command socket's edge.
    if (release_synced(through)) on_readable();
}

bool Server::release_synced(std::uint64_t through) {
    m_synced_ticket = std::max(m_synced_ticket, through);
    bool released = false;
    while (!m_held.empty() && m_held.front().ticket <= m_synced_ticket) {
        release(m_held.front());
        m_held.pop_front();
        released = true;
    }
    return released;
}

void Server::sync_here() {
    // Throws when it fails: nothing committed since the last sync may then be
    // shown, and the daemon stops as when the sync thread fails.
    try {
        m_store.sync();
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("cannot make committed batches durable, stopping: ") + e.what());
    }
    ++m_inline_syncs;
    m_synced_ticket = m_committed_ticket;
}

void Server::sync_and_release_all() {
    if (m_held.empty()) return;
    sync_here();
    release_synced(m_synced_ticket);
}

void Server::release(Release& batch) {
    for (auto& reply : batch.replies) send_to(reply.routing_id, reply.req_style, std::move(reply.body));
    const auto now = store::now_us();
    auto& deliveries = m_handler.deliveries();
    std::set<Reader> touched;  // readers that may have something to push now
    std::set<std::string> channels;  // channels with new messages
    for (auto& change : batch.changes) {
        if (const auto* hello = std::get_if<Hello>(&change)) {
            bind_session(hello->routing_id, hello->bot, !hello->no_pushes);
            if (hello->no_pushes) continue;
            // A new push connection gets every unsettled message again, oldest
            // first, this batch's included.
            deliveries.restart_mailbox(hello->bot, now);
            touched.insert(Reader{"", hello->bot, ""});
        } else if (const auto* unbind = std::get_if<Unbind>(&change)) {
            unroute(unbind->reader, unbind->routing_id);
            touched.erase(unbind->reader);
            touched.erase(Reader{unbind->reader.channel, unbind->reader.bot, unbind->routing_id});
        } else {
            auto& bind = std::get<Bind>(change);
            auto reader = bind.binding.reader;
            const auto peer = m_peers.find(bind.routing_id);
            // A later hello in the batch may have made the connection another bot.
            if (peer == m_peers.end() || peer->second.session.bot != reader.bot) continue;
            if (bind.binding.settings.ephemeral) reader.connection = bind.routing_id;
            deliveries.restart(reader, bind.binding.settings, now);
            if (bind.binding.settings.pull) continue;
            m_routes[reader] = bind.routing_id;
            touched.insert(reader);
        }
    }
    if (!batch.events.empty()) m_visible_seq = std::max(m_visible_seq, batch.events.back().seq);
    for (const auto& event : batch.events) fan_out(event, touched, channels);
    for (const auto& reader : touched) deliver(reader);
    for (auto& wait : batch.fetch_waits) {
        m_waiting.push_back(std::move(wait));
        channels.insert(m_waiting.back().wait.reader.channel);  // may have arrived meanwhile
    }
    if (!m_waiting.empty()) answer_waiting(channels, now);
    for (const auto& token : batch.sync_tokens) {
        msgpack::sbuffer out;
        msgpack::packer<msgpack::sbuffer> p(out);
        p.pack_map(2);
        p.pack("event");
        p.pack("sync");
        p.pack("token");
        p.pack(token);
        publish(sync_topic(token), std::string(out.data(), out.size()));
    }
}

void Server::fan_out(const store::Event& event, std::set<Reader>& touched, std::set<std::string>& channels) {
    if (event.type == store::event_type::k_message_published) {
        const auto fields = m_messages.decode(event.type, event.payload);
        if (!fields.channel) return;
        publish(channel_topic(*fields.channel), encode_message_event(view_of(event, fields), "message"));
        // Pushed by deliver(), from the log, after everything older.
        const auto [it, fresh] = channels.emplace(*fields.channel);
        if (fresh) {
            for (auto& reader : m_handler.deliveries().readers_of(*it)) touched.insert(std::move(reader));
        }
    } else if (event.type == store::event_type::k_message_sent) {
        const auto fields = m_messages.decode(event.type, event.payload);
        if (fields.to) touched.insert(Reader{"", std::string(*fields.to), ""});
    } else if (event.stream == store::stream::k_mailboxes || event.stream == store::stream::k_dead_letters ||
               event.stream == store::stream::k_consumers) {
        // A settlement makes room in the reader's window.
        if (auto reader = m_handler.deliveries().on_settled(event, store::now_us())) touched.insert(std::move(*reader));
        if (event.type == store::event_type::k_message_dead_lettered) {
            msgpack::object_handle keep_alive;
            const auto dead = store::decode_payload<store::MessageDeadLettered>(event.type, event.payload, keep_alive);
            publish(std::string(k_dead_letters_topic), encode_dead_letter_event(event, dead));
        } else if (event.type == store::event_type::k_consumer_deleted) {
            msgpack::object_handle keep_alive;
            const auto gone = store::decode_payload<store::ConsumerDeleted>(event.type, event.payload, keep_alive);
            const Reader reader{gone.channel, gone.bot, ""};
            // Unless subscribed again later in the same batch.
            if (!m_store.consumers().floor(gone.bot, gone.channel)) {
                m_handler.deliveries().forget(reader);
                m_routes.erase(reader);
                touched.erase(reader);
            }
        }
    } else if (event.stream == store::stream::k_channels) {
        publish(std::string(k_channels_topic), encode_channel_event(event));
    } else if (event.stream.starts_with("run/") || event.stream.starts_with("wf/")) {
        publish_workflow_event(event);
    }
}

void Server::publish_workflow_event(const store::Event& event) {
    // {event, seq, stream_seq, ts, by, workflow_id, run_id?, data: <payload>}
    const bool is_run = event.stream.starts_with("run/");
    const std::string id = event.stream.substr(event.stream.find('/') + 1);
    std::string workflow_id = id;
    if (is_run) {
        const auto run = m_handler.workflows().queries().run(id);
        workflow_id = run ? run->workflow_id : std::string();
    }
    msgpack::sbuffer out(event.payload.size() + 160);
    msgpack::packer<msgpack::sbuffer> p(out);
    p.pack_map(is_run ? 8 : 7);
    p.pack("event");
    p.pack(event.type);
    p.pack("seq");
    p.pack(event.seq);
    p.pack("stream_seq");
    p.pack(event.stream_seq);
    p.pack("ts");
    p.pack(event.ts_us);
    p.pack("by");
    p.pack(event.producer);
    p.pack("workflow_id");
    p.pack(workflow_id);
    if (is_run) {
        p.pack("run_id");
        p.pack(id);
    }
    p.pack("data");
    out.write(event.payload.data(), event.payload.size());
    const std::string encoded(out.data(), out.size());
    if (is_run) publish(run_topic(id), encoded);
    if (!workflow_id.empty()) publish(workflow_topic(workflow_id), encoded);
}

void Server::schedule_trim() {
    if (!m_running) return;
    // Retention is configured per channel at run time, so the timer always runs.
    m_trim_timer.expires_after(std::chrono::microseconds(m_options.trim_interval_us));
    m_trim_timer.async_wait([this](boost::system::error_code ec) {
        if (ec || !m_running) return;
        trim();
        schedule_trim();
    });
}

void Server::trim() {
    std::size_t trimmed = 0;
    // A small transaction per step (at most 1000 messages), then back to serving.
    run_daemon_batch([&](store::Batch& tx) { trimmed = m_trimmer.step(tx, store::now_us()); }, "trimming old messages");
    if (trimmed > 0) spdlog::debug("retention trimmed {} messages", trimmed);
}

void Server::schedule_lease_check() {
    if (!m_running) return;
    const auto next = m_handler.next_lease_expiry();
    if (!next) return;
    if (m_lease_check_at && *m_lease_check_at <= *next) return;  // already set early enough
    m_lease_check_at = *next;
    const auto delay = std::max<std::int64_t>(0, *next - store::now_us());
    m_lease_timer.expires_after(std::chrono::microseconds(delay));
    m_lease_timer.async_wait([this](boost::system::error_code ec) {
        if (ec) return;  // cancelled: rescheduled earlier, or stopping
        m_lease_check_at.reset();
        expire_leases();
    });
}

void Server::expire_leases() {
    if (!m_running) return;
    std::size_t crashed = 0;
    const bool ok = run_daemon_batch([&](store::Batch& tx) { crashed = m_handler.expire_leases(tx, store::now_us()); },
                                     "lease check");
    if (!ok) {
        spdlog::error("retrying the lease check in 1 s");
        m_lease_check_at = store::now_us() + 1'000'000;
        m_lease_timer.expires_after(std::chrono::seconds(1));
        m_lease_timer.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            m_lease_check_at.reset();
            expire_leases();
        });
        return;
    }
    if (crashed > 0) spdlog::warn("{} run(s) lost their lease and were marked crashed", crashed);
    schedule_lease_check();
}

void Server::publish(const std::string& topic, const std::string& event) {
    try {
        // PUB never blocks: at the high-water mark it drops for that
        // subscriber, who sees a seq gap and repairs it from history.
        m_pub.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        m_pub.send(zmq::buffer(event), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
        spdlog::error("feed send on {} failed: {}", topic, e.what());
    }
}

void Server::push_to_bot(const std::string& bot, const std::string& push) {
    const auto it = m_bot_peers.find(bot);
    if (it == m_bot_peers.end()) return;
    const auto peers = it->second;  // send_to may forget a vanished peer
    for (const auto& routing_id : peers) {
        const auto peer = m_peers.find(routing_id);
        if (peer != m_peers.end() && peer->second.can_push) send_to(routing_id, false, push);
    }
}

bool Server::has_push_connection(const std::string& bot) const {
    const auto it = m_bot_peers.find(bot);
    if (it == m_bot_peers.end()) return false;
    for (const auto& routing_id : it->second) {
        const auto peer = m_peers.find(routing_id);
        if (peer != m_peers.end() && peer->second.can_push) return true;
    }
    return false;
}

void Server::deliver(const Reader& reader) {
    if (!m_running) return;
    auto& deliveries = m_handler.deliveries();
    if (reader.is_mailbox()) {
        if (!has_push_connection(reader.bot)) return;
        carry_out(deliveries.pump(reader, m_visible_seq, store::now_us()));
        return;
    }
    const auto route = m_routes.find(reader);
    if (route == m_routes.end()) return;  // pulled, or no connection takes its pushes
    const auto routing_id = route->second;
    if (!m_peers.contains(routing_id)) {
        unroute(reader, routing_id);
        return;
    }
    if (m_backlog.contains(routing_id)) {
        // The connection is not keeping up: leave the messages in the log and
        // come back when its queue has drained.
        if (m_behind.insert(reader).second) ++m_counters.paused_deliveries;
        schedule_backlog_retry();
        return;
    }
    auto plan = deliveries.pump(reader, m_visible_seq, store::now_us());
    const bool more = !plan.caught_up && plan.deliveries.size() > 0 && reader.connection.size() > 0;
    carry_out(std::move(plan));
    if (more || m_backlog.contains(routing_id)) {
        // An ephemeral reader that has not reached the head reads on; one
        // whose connection filled up waits for it to drain.
        if (m_behind.insert(reader).second && m_backlog.contains(routing_id)) ++m_counters.paused_deliveries;
        schedule_backlog_retry();
    }
}

void Server::carry_out(DeliveryPlan plan) {
    const auto& reader = plan.reader;
    if (reader.is_mailbox()) {
        for (const auto& delivery : plan.deliveries) {
            push_to_bot(reader.bot, encode_push(view_of(delivery.message), delivery.deliveries, delivery.redelivered));
        }
    } else if (const auto route = m_routes.find(reader); route != m_routes.end()) {
        const auto routing_id = route->second;
        for (const auto& delivery : plan.deliveries) {
            send_to(routing_id, false, encode_push(view_of(delivery.message), delivery.deliveries, delivery.redelivered));
        }
        if (plan.caught_up) send_to(routing_id, false, encode_caught_up(reader.channel, plan.position));
    }
    if (!plan.deliveries.empty() && !reader.connection.size()) schedule_redelivery();
    queue_settlements(std::move(plan));
}

void Server::queue_settlements(DeliveryPlan plan) {
    if (plan.expired.empty() && plan.dead.empty()) return;
    // Logged in a batch of their own once this release is done: a release
    // must not open a batch while another may be executing.
    const bool first = m_settlements.empty();
    plan.deliveries.clear();
    m_settlements.push_back(std::move(plan));
    if (first) boost::asio::post(m_io, [this] { append_settlements(); });
}

void Server::deliver_behind() {
    auto behind = std::move(m_behind);
    m_behind.clear();
    for (const auto& reader : behind) deliver(reader);
}

void Server::unroute(const Reader& reader, const std::string& routing_id) {
    auto& deliveries = m_handler.deliveries();
    for (const auto& r : {reader, Reader{reader.channel, reader.bot, routing_id}}) {
        const auto route = m_routes.find(r);
        if (route == m_routes.end() || route->second != routing_id) continue;
        m_routes.erase(route);
        m_behind.erase(r);
        deliveries.offline(r);
    }
}

void Server::answer_waiting(const std::set<std::string>& channels, std::int64_t now_us) {
    std::vector<Waiting> still;
    for (auto& waiting : m_waiting) {
        const bool due = waiting.wait.deadline_us <= now_us;
        if (!m_peers.contains(waiting.routing_id)) continue;  // gone: nobody to answer
        const auto redelivery = m_handler.deliveries().next_deadline(waiting.wait.reader);
        const bool redeliverable = redelivery && *redelivery <= now_us;
        if (!due && !redeliverable && !channels.contains(waiting.wait.reader.channel)) {
            still.push_back(std::move(waiting));
            continue;
        }
        auto plan = m_handler.deliveries().pull(waiting.wait.reader, waiting.wait.max, m_visible_seq, now_us);
        if (plan.gone) {
            const auto& r = waiting.wait.reader;
            send_to(waiting.routing_id, waiting.req_style,
                    encode_error_reply(waiting.id, {Errc::not_found, r.bot + " has no durable subscription to '" +
                                                                         r.channel + "' any more"}));
            continue;
        }
        const bool answer = !plan.deliveries.empty() || due;
        if (answer) {
            ReplyBuilder b;
            add_fetched(b, plan, plan.at_head);
            send_to(waiting.routing_id, waiting.req_style, b.finish_ok(waiting.id));
        } else {
            still.push_back(std::move(waiting));
        }
        queue_settlements(std::move(plan));
    }
    m_waiting = std::move(still);
    schedule_fetch_timer();
}

void Server::schedule_fetch_timer() {
    if (m_waiting.empty() || !m_running) return;
    // Each waits for its deadline, or for a delivery of its reader to come due again.
    std::int64_t next = m_waiting.front().wait.deadline_us;
    for (const auto& waiting : m_waiting) {
        next = std::min(next, waiting.wait.deadline_us);
        if (const auto redelivery = m_handler.deliveries().next_deadline(waiting.wait.reader)) {
            next = std::min(next, *redelivery);
        }
    }
    if (m_fetch_timer_at && *m_fetch_timer_at <= next) return;
    m_fetch_timer_at = next;
    m_fetch_timer.expires_after(std::chrono::microseconds(std::max<std::int64_t>(0, next - store::now_us())));
    m_fetch_timer.async_wait([this](boost::system::error_code ec) {
        if (ec) return;  // rescheduled earlier, or stopping
        m_fetch_timer_at.reset();
        answer_waiting({}, store::now_us());
        on_readable();  // sends outside the drain loop can swallow the command socket's edge
    });
}

void Server::append_settlements() {
    if (!m_running || m_settlements.empty()) return;
    auto settlements = std::move(m_settlements);
    m_settlements.clear();
    const bool ok = run_daemon_batch(
        [&](store::Batch& tx) {
            // Decided before this batch: an ack may have settled some since.
            const auto settled = [&](const Reader& reader, store::Seq seq) {
                return reader.is_mailbox() ? m_store.mailboxes().is_settled(reader.bot, seq)
                                           : m_store.consumers().is_settled(reader.bot, reader.channel, seq);
            };
            for (const auto& plan : settlements) {
                std::vector<std::uint64_t> expired;
                for (const auto seq : plan.expired) {
                    if (!settled(plan.reader, seq)) expired.push_back(seq);
                }
                if (!expired.empty()) {
                    tx.append({std::string(store::stream::k_mailboxes), std::string(store::event_type::k_message_expired),
                               std::string(k_daemon_producer), std::nullopt,
                               store::encode_payload(store::MessagesExpired{plan.reader.bot, std::move(expired)})});
                }
                for (const auto& dead : plan.dead) {
                    if (settled(plan.reader, dead.seq)) continue;
                    tx.append({std::string(store::stream::k_dead_letters),
                               std::string(store::event_type::k_message_dead_lettered), std::string(k_daemon_producer),
                               std::nullopt, store::encode_payload(dead_letter_payload(plan.reader, dead))});
                }
            }
        },
        "logging expired and dead-lettered messages");
    if (!ok) {
        // Nothing was logged: decided again when next read, which the retry
        // makes happen even if nothing else touches these readers.
        for (const auto& plan : settlements) {
            m_handler.deliveries().abandon(plan);
            m_settle_again.insert(plan.reader);
        }
        schedule_settlement_retry();
    }
}

void Server::schedule_settlement_retry() {
    if (m_settle_again.empty() || !m_running) return;
    spdlog::error("deciding the expiries and dead letters of {} reader(s) again in 1 s", m_settle_again.size());
    // A wait already pending is cancelled: this one covers its readers too.
    m_settlement_timer.expires_after(std::chrono::seconds(1));
    m_settlement_timer.async_wait([this](boost::system::error_code ec) {
        if (ec || !m_running) return;
        auto readers = std::move(m_settle_again);
        m_settle_again.clear();
        // Unreachable readers are read again when a connection takes them.
        for (const auto& reader : readers) deliver(reader);
        on_readable();  // sends outside the drain loop can swallow the command socket's edge
    });
}

void Server::schedule_redelivery() {
    if (m_redelivery_scheduled || !m_running) return;
    const auto next = m_handler.deliveries().next_deadline();
    if (!next) return;
    m_redelivery_scheduled = true;
    // Deadlines closer together than this share a wake-up.
    constexpr std::int64_t k_granularity_us = 5000;
    const auto delay = std::max<std::int64_t>(k_granularity_us, *next - store::now_us());
    m_redelivery_timer.expires_after(std::chrono::microseconds(delay));
    m_redelivery_timer.async_wait([this](boost::system::error_code ec) {
        m_redelivery_scheduled = false;
        if (ec || !m_running) return;
        redeliver();
    });
}

void Server::redeliver() {
    for (auto& plan : m_handler.deliveries().expire(store::now_us())) {
        const bool reachable =
            plan.reader.is_mailbox() ? has_push_connection(plan.reader.bot) : m_routes.contains(plan.reader);
        if (reachable) {
            carry_out(std::move(plan));
        } else {
            // Nobody to push to; what was given up on is logged all the same.
            queue_settlements(plan);
            m_handler.deliveries().offline(plan.reader);
        }
    }
    schedule_redelivery();
    on_readable();  // sends outside the drain loop can swallow the command socket's edge
}

bool Server::run_daemon_batch(const std::function<void(store::Batch&)>& work, const char* what) {
    Release out;
    try {
        auto tx = m_store.begin();
        work(tx);
        tx.commit_unsynced();
        out.events = tx.take_events();
    } catch (const std::exception& e) {
        spdlog::error("{} failed and was rolled back: {}", what, e.what());
        return false;
    }
    const bool appended = !out.events.empty();
    hold(std::move(out), appended);
    on_readable();  // sends may have happened outside the drain loop
    return true;
}

void Server::drop_routes_of(const std::string& routing_id) {
    std::vector<Reader> routed;
    for (const auto& [reader, route] : m_routes) {
        if (route == routing_id) routed.push_back(reader);
    }
    for (const auto& reader : routed) unroute(reader, routing_id);
}

void Server::bind_session(const std::string& routing_id, const std::string& bot, bool can_push) {
    auto& peer = m_peers[routing_id];
    // The session already carries the new name (set when the hello ran), so
    // the connection's previous bot is found by its routing id.
    std::vector<std::string> previous;
    for (auto it = m_bot_peers.begin(); it != m_bot_peers.end();) {
        if (it->second.erase(routing_id) > 0 && it->first != bot) previous.push_back(it->first);
        it = it->second.empty() ? m_bot_peers.erase(it) : std::next(it);
    }
    peer.session.bot = bot;
    peer.can_push = can_push;
    m_bot_peers[bot].insert(routing_id);
    if (!previous.empty()) drop_routes_of(routing_id);  // subscriptions were the old bot's
    for (const auto& old : previous) {
        if (!has_push_connection(old)) m_handler.deliveries().offline(Reader{"", old, ""});
    }
}

void Server::forget_peer(const std::string& routing_id) {
    const auto it = m_peers.find(routing_id);
    if (it == m_peers.end()) return;
    const auto bot = it->second.session.bot;
    if (bot) {
        const auto bots = m_bot_peers.find(*bot);
        if (bots != m_bot_peers.end()) {
            bots->second.erase(routing_id);
            if (bots->second.empty()) m_bot_peers.erase(bots);
        }
    }
    m_peers.erase(it);
    m_backlog.erase(routing_id);
    drop_routes_of(routing_id);
    if (bot && !has_push_connection(*bot)) m_handler.deliveries().offline(Reader{"", *bot, ""});
}

void Server::send_to(const std::string& routing_id, bool req_style, std::string body) {
    auto backlog = m_backlog.find(routing_id);
    if (backlog == m_backlog.end()) {
        if (try_send(routing_id, req_style, body)) return;
        backlog = m_backlog.find(routing_id);
        if (backlog == m_backlog.end()) return;  // peer vanished; nothing to keep
    }
    if (backlog->second.size() >= m_options.max_peer_backlog) {
        if (++m_counters.dropped_replies % 10000 == 1) {
            spdlog::warn("peer is not reading its replies; dropped {} so far", m_counters.dropped_replies);
        }
        return;
    }
    backlog->second.push_back(Pending{req_style, std::move(body)});
    schedule_backlog_retry();
}

bool Server::try_send(const std::string& routing_id, bool req_style, const std::string& body) {
    try {
        if (!m_router.send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
            m_backlog[routing_id];  // full: start a backlog for this peer
            return false;
        }
        if (req_style) m_router.send(zmq::message_t(), zmq::send_flags::sndmore);
        m_router.send(zmq::buffer(body), zmq::send_flags::none);
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

void Server::schedule_backlog_retry() {
    if (m_retry_scheduled || !m_running) return;
    m_retry_scheduled = true;
    m_backlog_timer.expires_after(std::chrono::milliseconds(1));
    m_backlog_timer.async_wait([this](boost::system::error_code ec) {
        m_retry_scheduled = false;
        if (ec || !m_running) return;
        retry_backlog();
        deliver_behind();
        if (!m_backlog.empty() || !m_behind.empty()) schedule_backlog_retry();
        // Sends outside the drain loop can swallow the ZMQ_FD edge: drain.
        on_readable();
    });
}

void Server::retry_backlog() {
    for (auto it = m_backlog.begin(); it != m_backlog.end();) {
        const std::string routing_id = it->first;
        auto& queue = it->second;
        bool gone = false;
        while (!queue.empty()) {
            try {
                if (!m_router.send(zmq::buffer(routing_id), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
                    break;
                }
                if (queue.front().req_style) m_router.send(zmq::message_t(), zmq::send_flags::sndmore);
                m_router.send(zmq::buffer(queue.front().body), zmq::send_flags::none);
                queue.pop_front();
            } catch (const zmq::error_t&) {
                gone = true;
                break;
            }
        }
        if (gone || queue.empty()) {
            it = m_backlog.erase(it);
            if (gone) {
                const auto peer = m_peers.find(routing_id);
                if (peer != m_peers.end()) forget_peer(routing_id);
            }
        } else {
            ++it;
        }
    }
}

}  // namespace botbus::bus
