#include "bus/server/server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <chrono>
#include <iterator>
#include <stdexcept>
#include <utility>

#include "bus/core/delivery_attempts.hpp"
#include "bus/server/feed_events.hpp"

namespace botbus::bus {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Batches handled per wake-up before yielding to other handlers (signals,
// timers); the continuation is posted so the edge is not lost.
constexpr int k_batches_per_turn = 16;

ServerOptions with_clock(ServerOptions options) {
    if (!options.clock) options.clock = store::now_us;
    // The handlers read the same time as the server unless told otherwise.
    if (!options.messaging.clock) options.messaging.clock = options.clock;
    return options;
}

TransportOptions transport_options(const ServerOptions& options) {
    return TransportOptions{
        .command_endpoint = options.command_endpoint,
        .max_frame = options.max_frame,
        .max_batch_bytes = options.max_batch_bytes,
        .max_peer_backlog = options.max_peer_backlog,
        .max_peer_backlog_bytes = options.max_peer_backlog_bytes,
        .max_backlog_bytes = options.max_backlog_bytes,
        .send_hwm = options.send_hwm,
        .recv_hwm = options.recv_hwm,
        .max_connections = options.max_connections,
        .heartbeat_ms = options.heartbeat_ms,
        .curve_secret_key = options.curve ? std::optional<std::string>(options.curve->secret_key) : std::nullopt,
        .max_in_flight = options.max_in_flight,
    };
}

FeedOptions feed_options(const ServerOptions& options, const CommandHandler& handler) {
    return FeedOptions{
        .endpoint = options.feed_endpoint,
        .hwm = options.feed_hwm,
        .max_held_bytes = options.max_feed_bytes,
        .max_connections = options.max_feed_connections,
        .heartbeat_ms = options.heartbeat_ms,
        .curve_secret_key = options.curve ? std::optional<std::string>(options.curve->secret_key) : std::nullopt,
        .may_subscribe = options.may_subscribe
                             ? options.may_subscribe
                             : [&handler](const std::optional<std::string>& user_id, std::string_view topic_prefix) {
                                   return handler.acl().may_subscribe_topic(user_id, topic_prefix);
                               },
    };
}

}  // namespace

Server::Server(boost::asio::io_context& io, zmq::context_t& zmq, store::Store& store, ServerOptions options)
    : m_io(io),
      m_store(store),
      m_options(with_clock(std::move(options))),
      m_handler(store, m_counters, WorkflowOptions{m_options.lease_us, m_options.clock}, m_options.messaging),
      m_transport(io, zmq, transport_options(m_options), m_counters,
                  Transport::Hooks{
                      .rebound = [this](const std::string& routing_id,
                                        const std::vector<std::string>& previous) {
                          m_router.connection_rebound(routing_id, previous);
                      },
                      .forgotten = [this](const std::string& routing_id,
                                          const std::optional<std::string>& bot) {
                          m_router.connection_gone(routing_id, bot);
                      },
                      .after_retry = [this] { return m_router.deliver_behind(); },
                      .drain = [this] { on_readable(); },
                      .key_allowed = [this](const std::string& key, const std::string& bot) {
                          return !m_zap || m_zap->allowed(key, bot);
                      },
                  }),
      m_feed(io, zmq, feed_options(m_options, m_handler)),
      m_router(io, store, m_handler.deliveries(), m_transport, m_counters, m_options.clock,
               DeliveryRouter::Hooks{
                   .run_daemon_batch = [this](const std::function<void(store::Batch&)>& work,
                                              const char* what) { return run_daemon_batch(work, what); },
                   .drain = [this] { on_readable(); },
               }),
      m_fan_out(store, m_handler,
                [this](const std::string& topic, std::string event) { m_feed.publish(topic, std::move(event)); },
                m_options.clock),
      m_committer(Committer::Hooks{
          .sync_here = [this] { timed_sync(); },
          .request_sync = m_store.needs_sync()
                              ? std::function<void(std::uint64_t)>([this](std::uint64_t ticket) {
                                    m_syncer->request(ticket);
                                })
                              : nullptr,
          .release = [this](Release& batch) { release(batch); },
          .requests_waiting = [this] { return m_transport.requests_waiting(); },
      }),
      m_trimmer(store, m_options.retention),
      m_backups(io, store, m_options.backup_dir,
                [this](const WantedBackup& wanted, std::string reply) {
                    m_transport.send_reply(wanted.routing_id, wanted.req_style, std::move(reply));
                }),
      m_backlog_gauges(store),
      m_backlog_timer(io),
      m_lease_timer(io),
      m_trim_timer(io),
      m_expiry_timer(io),
      m_tail_timer(io),
      m_drain_timer(io) {
    if (m_options.curve) m_zap.emplace(io, zmq, m_options.curve->allowlist);
}

Server::~Server() {
    stop_watching_other_nodes();  // the descriptor is the store's: released, not closed
    m_syncer.reset();  // joins before the members its callbacks use go away
}

void Server::start() {
    // Delivery counts go on from where the log's message.delivered events left them.
    m_handler.deliveries().resume_counts(true);
    // Before the sockets: a CURVE socket with no ZAP handler admits any key.
    if (m_zap) m_zap->start();
    m_transport.bind();
    m_feed.bind();
    if (m_store.needs_sync()) {
        std::weak_ptr<int> alive = m_alive;
        m_syncer = std::make_unique<SyncThread>(
            [this] { timed_sync(); },
            [this, alive](std::uint64_t through, std::exception_ptr error) {
                // Read by the loop between batches, so replies do not wait
                // behind a long run of batches for the posted handler.
                if (!error) m_committer.sync_reported(through);
                boost::asio::post(m_io, [this, alive, through, error] {
                    if (!alive.lock()) return;
                    // The sends happened outside the drain loop and may have
                    // swallowed the command socket's edge.
                    if (m_committer.on_synced(through, error)) on_readable();
                });
            });
    }
    m_counters.started_at_us = now();
    m_router.start(m_store.last_seq());
    m_shown_seq = m_store.last_seq();
    m_running = true;
    schedule_tail();
    watch_other_nodes();
    schedule_trim();
    schedule_expiry_sweep();
    // The first lease check, before the first request: runs left running
    // by the previous daemon get a full lease period (their executors may
    // still be alive and about to heartbeat), then expiries are timed.
    boost::asio::post(m_io, [this] { expire_leases(); });
    spdlog::info("serving commands on {} and the feed on {}", command_endpoint(), feed_endpoint());
    // Messages may already be queued: drain before waiting for the first edge.
    boost::asio::post(m_io, [this] { on_readable(); });
}

void Server::stop(int linger_ms) {
    if (!m_running) return;
    m_running = false;
    m_transport.stop_reading();
    // A pending lease check would keep io_context::run() going until the
    // earliest lease ran out (30 s by default) after SIGTERM.
    m_lease_timer.cancel();
    m_lease_check_at.reset();
    m_router.record_attempts_now();  // durable with the final sync below
    m_router.stop();
    m_trim_timer.cancel();
    m_expiry_timer.cancel();
    m_tail_timer.cancel();
    stop_watching_other_nodes();
    m_backlog_timer.cancel();
    m_committer.sync_and_release_all();
    m_backups.stop();
    m_transport.take_activity();
    // Requests a batch carried over never ran: they are refused first, in
    // their place before what is still queued on the socket.
    for (auto& in : std::exchange(m_carried, {})) m_transport.refuse(in);
    m_transport.refuse_queued();
    // Peers still sending get told, rather than lose requests to the close.
    refuse_until_quiet(linger_ms, std::chrono::steady_clock::now() +
                                      std::chrono::milliseconds(m_options.shutdown_drain_max_ms));
}

void Server::refuse_until_quiet(int linger_ms, std::chrono::steady_clock::time_point until) {
    m_drain_timer.expires_after(std::chrono::milliseconds(m_options.shutdown_quiet_ms));
    m_drain_timer.async_wait([this, linger_ms, until](boost::system::error_code ec) {
        m_transport.refuse_queued();
        if (!ec && m_transport.take_activity() && std::chrono::steady_clock::now() < until) {
            refuse_until_quiet(linger_ms, until);
            return;
        }
        m_transport.close(linger_ms);
        m_feed.close(linger_ms);
        if (m_zap) m_zap->stop();
        spdlog::info("stopped serving");
    });
}

void Server::arm() {
    if (!m_running) return;
    m_transport.when_readable();
}

void Server::on_readable() {
    if (!m_running) return;
    for (int turn = 0; turn < k_batches_per_turn; ++turn) {
        m_committer.release_reported();
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
    // Requests a batch left for the next one go first: they came before
    // anything still on the socket.
    auto batch = m_carried.empty() ? m_transport.receive(m_options.max_batch) : std::exchange(m_carried, {});
    if (!batch.empty()) run_batch(batch);
    return batch.size();
}

void Server::run_batch(std::vector<Inbound>& batch) {
    const auto received_at = std::chrono::steady_clock::now();
    m_counters.requests += batch.size();
    ++m_counters.batches;
    note_transport_counters();
    m_counters.syncs = m_committer.inline_syncs() + (m_syncer ? m_syncer->completed() : 0);
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
            decoded.emplace_back(DecodeFailure{*in.problem, in.problem_id});
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
    std::vector<DeliveryAttempt> attempts;
    std::size_t executed = batch.size();
    std::size_t reply_bytes = 0;
    try {
        auto tx = m_store.begin();
        for (std::size_t i = 0; i < batch.size(); ++i) {
            // Replies wait for the batch's sync: a batch of list pages (each
            // up to ~1 MiB) ends once its replies pass the bound, and the
            // rest runs as the next batch.
            if (reply_bytes >= m_options.max_batch_reply_bytes) {
                executed = i;
                break;
            }
            const auto& in = batch[i];
            if (const auto* failure = std::get_if<DecodeFailure>(&decoded[i])) {
                outcomes.push_back(Outcome::refused(encode_error_reply(failure->id, failure->error), failure->error.code));
                continue;
            }
            const auto& envelope = std::get<Envelope>(decoded[i]);
            auto& session = m_transport.session(in.routing_id);
            session.req_style = in.req_style;
            if (session.connection.empty()) session.connection = in.routing_id;
            auto outcome = execute(envelope, session, tx);
            if (outcome.hello_bot && !admit_hello(session, *outcome.hello_bot)) {
                outcome = Outcome::refused(encode_error_reply(envelope.id, bot_connections_reached(*outcome.hello_bot)),
                                           Errc::limit_reached);
            }
            if (outcome.hello_bot) {
                // Identity applies to this connection's next requests at once,
                // including later ones in this batch.
                identity_changes.push_back({in.routing_id, session.bot});
                m_transport.set_bot(in.routing_id, *outcome.hello_bot);
                // REQ sockets take only replies; a push would be read as one.
                out.changes.emplace_back(Release::Hello{in.routing_id, *outcome.hello_bot,
                                                        in.req_style || !outcome.hello_pushes, outcome.hello_fan_out,
                                                        outcome.hello_credit});
            }
            if (outcome.bye) {
                identity_changes.push_back({in.routing_id, session.bot});
                m_transport.set_bot(in.routing_id, std::nullopt);
                out.changes.emplace_back(Release::Bye{in.routing_id});
            }
            if (outcome.sync_token) out.sync_tokens.push_back(*outcome.sync_token);
            if (outcome.unbind_channel && session.bot) {
                out.changes.emplace_back(
                    Release::Unbind{in.routing_id, Reader{*outcome.unbind_channel, *session.bot, ""}});
            }
            if (outcome.binding) out.changes.emplace_back(Release::Bind{in.routing_id, std::move(*outcome.binding)});
            if (outcome.backup_name) {
                out.backups.push_back({in.routing_id, in.req_style, envelope.id, *outcome.backup_name});
            }
            if (outcome.fetch_wait) {
                out.fetch_waits.push_back({in.routing_id, in.req_style, envelope.id, *outcome.fetch_wait});
                // Counted from now on, so the bounds hold within the batch too.
                ++session.waiting_fetches;
                m_handler.deliveries().fetch_waits(outcome.fetch_wait->reader);
            }
            reply_bytes += outcome.reply.size();
            outcomes.push_back(std::move(outcome));
        }
        // Delivery attempts since the last batch ride in this one's commit,
        // when it writes anyway: a batch of reads stays one (and cannot fail
        // for them); the router's timer writes them otherwise.
        if (!tx.events().empty() && m_handler.deliveries().has_attempts()) {
            attempts = m_handler.deliveries().take_attempts();
            record_delivery_attempts(tx, attempts);
        }
        const auto commit_started = std::chrono::steady_clock::now();
        tx.commit_unsynced();
        m_metrics.commit_seconds.observe(seconds_since(commit_started));
        committed = true;
        out.events = tx.take_events();
    } catch (const std::exception& e) {
        spdlog::error("batch of {} requests failed and was rolled back: {}", batch.size(), e.what());
    }

    if (executed < batch.size()) {
        m_carried.assign(std::make_move_iterator(batch.begin() + static_cast<std::ptrdiff_t>(executed)),
                         std::make_move_iterator(batch.end()));
        batch.resize(executed);
        decoded.resize(executed);
        m_counters.requests -= m_carried.size();  // counted again when they run
    }
    m_metrics.batch_requests.observe(static_cast<double>(batch.size()));
    m_commit_failed = !committed;
    auto op_of = [&decoded](std::size_t i) -> std::optional<std::size_t> {
        if (const auto* envelope = std::get_if<Envelope>(&decoded[i])) return envelope->request.index();
        if (const auto op = std::get<DecodeFailure>(decoded[i]).op) return static_cast<std::size_t>(*op);
        return std::nullopt;
    };

    if (!committed) {
        m_handler.deliveries().restore_attempts(std::move(attempts));
        // Nothing of the batch is durable, so nothing of it may be shown, and
        // none of its hellos holds: their replies say they failed.
        for (auto it = identity_changes.rbegin(); it != identity_changes.rend(); ++it) {
            m_transport.set_bot(it->routing_id, it->previous);
        }
        for (const auto& wait : out.fetch_waits) {
            --m_transport.session(wait.routing_id).waiting_fetches;
            m_handler.deliveries().fetch_stopped_waiting(wait.wait.reader);
        }
        // Nor do its grants and revokes: the rules are read again.
        try {
            m_handler.reload_acl();
        } catch (const std::exception& e) {
            spdlog::error("reading the permission rules again after a failed batch failed: {}", e.what());
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
            const auto* failure = std::get_if<DecodeFailure>(&decoded[i]);
            m_metrics.count(op_of(i), failure ? failure->error.code : Errc::storage_error);
        }
        m_counters.errors += batch.size();
        m_committer.hold(std::move(failed), false);  // after the replies of earlier batches
        stop_if_store_lost();
        return;
    }
    out.received_at = received_at;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (outcomes[i].failed) ++m_counters.errors;
        const auto op = op_of(i);
        m_metrics.count(op, outcomes[i].error);
        if (!outcomes[i].failed && (op == index_of<PublishRequest>() || op == index_of<SendRequest>())) {
            ++out.acked_writes;
        }
        if (outcomes[i].fetch_wait) continue;   // answered when messages come, or at its deadline
        if (outcomes[i].backup_name) continue;  // answered when the copy is written
        out.replies.push_back({std::move(batch[i].routing_id), batch[i].req_style, std::move(outcomes[i].reply)});
    }
    if (m_handler.take_leases_granted()) schedule_lease_check();  // a first lease may run out before the timer
    const bool appended = !out.events.empty();
    m_committer.hold(std::move(out), appended);
}

bool Server::admit_hello(const Session& session, const std::string& bot) {
    if (session.bot == bot) return true;  // the same connection again
    if (m_transport.bot_connections(bot) < m_options.max_connections_per_bot) return true;
    if (m_counters.refused_bot_connections++ % 1000 == 0) {
        spdlog::warn("{} has {} connections, the most allowed (--max-connections-per-bot); refused {} hellos so far",
                     bot, m_transport.bot_connections(bot), m_counters.refused_bot_connections);
    }
    return false;
}

WireError Server::bot_connections_reached(const std::string& bot) const {
    return {Errc::limit_reached, "--max-connections-per-bot is " + std::to_string(m_options.max_connections_per_bot) +
                                     ": " + bot + " has that many connections already; close one first"};
}

Outcome Server::execute(const Envelope& envelope, const Session& session, store::Batch& tx) {
    tx.savepoint();
    try {
        auto outcome = m_handler.handle(envelope, session, tx);
        tx.release_savepoint();
        return outcome;
    } catch (const std::exception& e) {
        // Only this request's part of the batch is undone, and only it fails;
        // unless the transaction itself is gone, which fails the batch.
        if (!tx.rollback_to_savepoint()) throw;
        const auto op = std::visit([](const auto& r) { return r.k_op; }, envelope.request);
        spdlog::error("a {} request failed and was rolled back alone: {}", op, e.what());
        // Storage reports failures as runtime errors; anything else is a bug.
        const bool storage = dynamic_cast<const std::runtime_error*>(&e) != nullptr;
        const WireError error =
            storage ? WireError{Errc::storage_error,
                                std::string("the request could not be written; nothing of it was applied: ") + e.what()}
                    : WireError{Errc::internal,
                                std::string("the request failed; nothing of it was applied: ") + e.what()};
        return Outcome::refused(encode_error_reply(envelope.id, error), error.code);
    }
}

void Server::release(Release& batch) {
    // Another node's events that commit before this batch are shown first.
    if (m_store.shared() && !batch.events.empty() && batch.events.front().seq > m_shown_seq + 1) {
        show_others(batch.events.front().seq - 1);
    }
    for (auto& reply : batch.replies) m_transport.send_reply(reply.routing_id, reply.req_style, std::move(reply.body));
    if (batch.acked_writes > 0) {
        m_metrics.publish_ack_seconds.observe(seconds_since(batch.received_at), batch.acked_writes);
    }
    bool sent = false;
    for (const auto& event : batch.events) {
        ++m_metrics.events[static_cast<std::size_t>(event.type)];
        sent = sent || event.type == store::EventType::message_sent;
    }
    if (sent) schedule_expiry_sweep();  // one of them may expire before what the timer waits for
    const auto now_us = now();
    auto& deliveries = m_handler.deliveries();
    Touched touched;
    for (auto& change : batch.changes) {
        if (const auto* hello = std::get_if<Release::Hello>(&change)) {
            if (!m_transport.knows(hello->routing_id)) continue;  // closed while the batch waited for its sync
            m_transport.bind_session(hello->routing_id, hello->bot, !hello->no_pushes, hello->fan_out);
            if (hello->no_pushes) continue;
            // A share of the bot's direct messages (the first connection gets
            // every unsettled one again, oldest first, this batch's
            // included), or a copy of each.
            m_router.join_mailbox(hello->routing_id, hello->bot, hello->fan_out, hello->credit);
            touched.readers.insert(Reader{"", hello->bot, ""});
        } else if (const auto* bye = std::get_if<Release::Bye>(&change)) {
            if (m_transport.knows(bye->routing_id)) m_transport.unbind_session(bye->routing_id);
        } else if (const auto* unbind = std::get_if<Release::Unbind>(&change)) {
            m_router.unroute(unbind->reader, unbind->routing_id);
            touched.readers.erase(unbind->reader);
            touched.readers.erase(Reader{unbind->reader.channel, unbind->reader.bot, unbind->routing_id});
        } else {
            auto& bind = std::get<Release::Bind>(change);
            auto reader = bind.binding.reader;
            // A later hello in the batch may have made the connection another bot.
            if (!m_transport.knows(bind.routing_id) || m_transport.bot_of(bind.routing_id) != reader.bot) continue;
            if (bind.binding.settings.ephemeral) reader.connection = bind.routing_id;
            // Another connection of the bot on a durable subscription shares it.
            deliveries.attach(reader, bind.routing_id, bind.binding.settings, now_us);
            if (bind.binding.settings.pull) continue;
            touched.readers.insert(reader);
        }
    }
    show_events(batch.events, touched);
    m_router.park(std::move(batch.fetch_waits), touched.channels, now_us);
    for (auto& wanted : batch.backups) m_backups.start(std::move(wanted));
    for (const auto& token : batch.sync_tokens) m_feed.publish(sync_topic(token), encode_sync_event(token));
}

void Server::show_events(const std::vector<store::Event>& events, Touched& touched) {
    if (!events.empty()) {
        m_router.set_visible(events.back().seq);
        m_shown_seq = std::max(m_shown_seq, events.back().seq);
    }
    for (const auto& event : events) {
        try {
            m_fan_out.fan_out(event, touched);
        } catch (const std::exception& e) {
            // A read for the feed (a run's workflow, a consumer's floor)
            // failed: the event is durable and answered, and feed
            // subscribers repair the gap from history.
            spdlog::error("fanning out event seq {} failed: {}", event.seq, e.what());
        }
    }
    if (touched.rules_changed) m_feed.recheck_subscriptions();
    for (const auto& reader : touched.forgotten) m_router.forget_route(reader);
    for (const auto& reader : touched.readers) m_router.deliver(reader);
}

void Server::note_transport_counters() {
    m_counters.sessions = m_transport.sessions();
    m_counters.connections = m_transport.connections();
    m_counters.refused_connections = m_transport.refused_connections();
    m_counters.backlog_bytes = m_transport.backlog_bytes();
    m_counters.feed_connections = m_feed.connections();
    m_counters.feed_bytes = m_feed.held_bytes();
    m_counters.feed_disconnects = m_feed.slow_disconnects();
    if (m_zap) m_counters.auth_refusals = m_zap->refusals();
    m_counters.auth_disconnects = m_transport.auth_disconnects() + m_feed_auth_disconnects;
}

std::size_t Server::reload_allowlist(KeyAllowlist allowlist) {
    if (!m_zap) return 0;
    m_zap->replace(std::move(allowlist));
    const auto allowed = [this](const std::string& key, const std::string& bot) { return m_zap->allowed(key, bot); };
    const auto commands = m_transport.close_unlisted_connections();
    const auto feeds = m_feed.close_unlisted_connections(allowed);
    m_feed_auth_disconnects += feeds;
    note_transport_counters();
    // Closing connections is worth a warning; a reload that closes none is routine.
    spdlog::log(commands + feeds > 0 ? spdlog::level::warn : spdlog::level::info,
                "allowlist reloaded: {} keys; closed {} command and {} feed connections whose key is no longer "
                "listed for their bot",
                m_zap->keys(), commands, feeds);
    return commands + feeds;
}

}  // namespace botbus::bus
