// Server::metrics_text: the scrape of /metrics (metrics_endpoint.hpp). Every
// figure of the stats op is here under a Prometheus name (base units:
// seconds, bytes; counters end in _total), beside ServerMetrics' counts and
// histograms. The names are documented in docs/OPERATIONS.md ("Metrics").
#include <chrono>
#include <string>

#include "bus/server/server.hpp"

namespace botbus::bus {

void Server::timed_sync() {
    const auto started = std::chrono::steady_clock::now();
    m_store.sync();
    m_metrics.sync_seconds.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

std::string Server::metrics_text() {
    note_transport_counters();
    const auto log = m_store.stats();
    const auto& c = m_counters;
    const auto syncs = m_committer.inline_syncs() + (m_syncer ? m_syncer->completed() : 0);
    Exposition out;
    auto counter = [&out](std::string_view name, double value, std::string_view help) {
        out.family(name, "counter", help);
        out.sample(name, value);
    };
    auto gauge = [&out](std::string_view name, double value, std::string_view help) {
        out.family(name, "gauge", help);
        out.sample(name, value);
    };
    auto d = [](auto value) { return static_cast<double>(value); };

    // Requests, by op and by error code.
    out.family("botbus_requests_total", "counter", "Requests answered or parked, by op (undecoded: no op could be read).");
    for (std::size_t op = 0; op <= ServerMetrics::k_undecoded; ++op) {
        const auto name = op < k_op_names.size() ? k_op_names[op] : std::string_view("undecoded");
        out.sample("botbus_requests_total", d(m_metrics.requests[op]), {{"op", name}});
    }
    out.family("botbus_request_errors_total", "counter", "Requests answered with an error, by op and error code.");
    for (std::size_t op = 0; op <= ServerMetrics::k_undecoded; ++op) {
        const auto name = op < k_op_names.size() ? k_op_names[op] : std::string_view("undecoded");
        for (std::size_t code = 0; code < k_errc_count; ++code) {
            const auto count = m_metrics.errors[op][code];
            if (count == 0) continue;  // 21 codes x 60 ops: only the ones that happened
            out.sample("botbus_request_errors_total", d(count),
                       {{"op", name}, {"code", errc_name(static_cast<Errc>(code))}});
        }
    }
    out.family("botbus_events_appended_total", "counter",
               "Events appended to the log and made durable since start, by type (run.crashed: lease expiries; "
               "message.dead_lettered: dead letters; stream.trimmed: retention runs).");
    for (std::size_t type = 0; type < k_event_type_count; ++type) {
        out.sample("botbus_events_appended_total", d(m_metrics.events[type]),
                   {{"type", store::event_type_name(static_cast<store::EventType>(type))}});
    }

    counter("botbus_batches_total", d(c.batches), "Store transactions run for requests.");
    counter("botbus_syncs_total", d(syncs), "WAL fdatasyncs that released batches.");
    counter("botbus_checkpoints_total", d(m_store.checkpoints()), "WAL checkpoints completed.");
    out.family("botbus_batch_requests", "histogram", "Requests per store transaction.");
    out.histogram("botbus_batch_requests", m_metrics.batch_requests.snapshot());
    out.family("botbus_commit_seconds", "histogram", "Time to commit a batch's transaction (without its sync).");
    out.histogram("botbus_commit_seconds", m_metrics.commit_seconds.snapshot());
    out.family("botbus_sync_seconds", "histogram", "Time of one WAL fdatasync.");
    out.histogram("botbus_sync_seconds", m_metrics.sync_seconds.snapshot());
    out.family("botbus_publish_ack_seconds", "histogram",
               "publish and send: from the request's batch read off the socket to the acknowledgement handed "
               "to ZeroMQ, after its fsync.");
    out.histogram("botbus_publish_ack_seconds", m_metrics.publish_ack_seconds.snapshot());

    // The log and the projections.
    gauge("botbus_log_last_seq", d(log.last_seq), "The log's last seq.");
    gauge("botbus_log_events", d(log.event_count), "Events stored in the log (after retention).");
    gauge("botbus_log_messages", d(log.message_count), "Channel and direct messages stored in the log.");
    gauge("botbus_channels", d(log.channel_count), "Channels.");
    gauge("botbus_subscriptions", d(log.subscription_count), "Channel memberships.");
    gauge("botbus_database_bytes", d(log.db_bytes), "Size of the database file.");
    gauge("botbus_wal_bytes", d(log.wal_bytes), "Size of the write-ahead log file.");

    // Clients.
    gauge("botbus_connections", d(c.connections), "Open connections on the command socket.");
    gauge("botbus_identified_bots", d(m_transport.identified_bots()),
          "Bots with at least one command connection bound to them by hello.");
    gauge("botbus_feed_connections", d(c.feed_connections), "Open connections on the feed socket.");
    gauge("botbus_feed_held_bytes", d(c.feed_bytes), "Feed events libzmq holds for subscribers.");
    gauge("botbus_reply_backlog_bytes", d(c.backlog_bytes), "Replies held for peers that are not reading.");
    counter("botbus_sessions_total", d(c.sessions), "Command connections seen since start.");
    counter("botbus_refused_connections_total", d(c.refused_connections),
            "Connections shut at once: --max-connections were open.");
    counter("botbus_feed_disconnects_total", d(c.feed_disconnects), "Feed subscribers cut for not reading.");
    counter("botbus_pushes_total", d(c.pushes), "Messages pushed to mailboxes and delivered subscriptions.");
    counter("botbus_redeliveries_total", d(c.redeliveries),
            "Pushes of a message pushed before: its acknowledgement deadline passed.");
    counter("botbus_retention_deleted_messages_total", d(m_metrics.retention_deleted),
            "Messages retention deleted from the log.");
    counter("botbus_dropped_replies_total", d(c.dropped_replies), "Replies dropped past a peer's backlog bound.");
    counter("botbus_paused_deliveries_total", d(c.paused_deliveries),
            "Delivered subscriptions left in the log because their connection was full.");
    counter("botbus_auth_refusals_total", d(c.auth_refusals), "CURVE handshakes refused: key not on the allowlist.");
    counter("botbus_auth_disconnects_total", d(c.auth_disconnects),
            "Connections shut because an allowlist reload removed their key.");
    out.family("botbus_limit_refusals_total", "counter", "Requests refused by a limit on one client, by limit.");
    out.sample("botbus_limit_refusals_total", d(c.refused_bot_connections), {{"limit", "max_connections_per_bot"}});
    out.sample("botbus_limit_refusals_total", d(m_handler.refused_subscriptions()),
               {{"limit", "max_subscriptions_per_bot"}});
    out.sample("botbus_limit_refusals_total", d(c.refused_in_flight), {{"limit", "max_in_flight"}});

    const auto& backlog = m_backlog_gauges.figures();
    if (m_backlog_gauges_on) {
        gauge("botbus_mailbox_unacked_messages", d(backlog.mailbox_messages),
              "Direct messages not yet acknowledged (nor expired or dead-lettered), over every mailbox.");
        gauge("botbus_mailboxes_with_unacked", d(backlog.mailboxes), "Mailboxes holding unacknowledged messages.");
        gauge("botbus_mailbox_max_unacked_messages", d(backlog.mailbox_max), "Unacknowledged messages of the deepest mailbox.");
        const auto oldest = backlog.oldest_unacked_us;
        gauge("botbus_mailbox_oldest_unacked_age_seconds",
              oldest ? std::max(0.0, d(now() - *oldest) / 1e6) : 0.0,
              "Age of the oldest unacknowledged direct message (0 when none).");
        gauge("botbus_durable_subscriptions", d(backlog.subscriptions), "Durable channel subscriptions.");
        gauge("botbus_durable_subscription_lag_messages", d(backlog.subscription_lag),
              "Messages not yet acknowledged, over every durable subscription.");
        gauge("botbus_durable_subscription_max_lag_messages", d(backlog.subscription_max_lag),
              "Unacknowledged messages of the durable subscription furthest behind.");
        gauge("botbus_backlog_scan_time_seconds", d(backlog.completed_at_us) / 1e6,
              "When the scan behind the mailbox and subscription gauges last completed, Unix time (0: not yet).");
    }
    const auto& backups = m_backups.counters();
    out.family("botbus_backups_total", "counter", "Backups (the backup op), by result.");
    out.sample("botbus_backups_total", d(backups.written), {{"result", "written"}});
    out.sample("botbus_backups_total", d(backups.failed), {{"result", "failed"}});
    gauge("botbus_backup_last_success_time_seconds", d(backups.last_finished_unix),
          "When the last backup was written, Unix time (0: none since start).");
    gauge("botbus_backup_last_duration_seconds", backups.last_seconds, "How long the last backup written took.");
    gauge("botbus_backup_last_bytes", d(backups.last_bytes), "Size of the last backup written.");
    gauge("botbus_start_time_seconds", d(c.started_at_us) / 1e6, "When botbusd started serving, Unix time.");
    gauge("botbus_ready", ready() ? 1 : 0, "1 while serving with the last batch committed (as /readyz).");
    return out.text();
}

}  // namespace botbus::bus
