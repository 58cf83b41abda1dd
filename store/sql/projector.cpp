#include "store/sql/projector.hpp"

#include "store/payloads.hpp"
#include "store/sql/statement_helpers.hpp"
#include "store/workflow_payloads.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::bind_optional;

Projector::Projector(sql::Connection& db)
    : m_insert_channel(db,
                       "INSERT INTO bot_channels (name, description, created_by, created_at, last_seq)"
                       " VALUES (?, ?, ?, ?, ?)"),
      m_delete_channel(db, "DELETE FROM bot_channels WHERE name = ?"),
      m_delete_channel_subscriptions(db, "DELETE FROM bot_subscriptions WHERE channel_name = ?"),
      m_set_channel_retention(db, "UPDATE bot_channels SET max_age_ms = ?2, max_messages = ?3, last_seq = ?4 WHERE name = ?1"),
      m_insert_subscription(db,
                            "INSERT INTO bot_subscriptions (bot_id, channel_name, subscribed_at, last_seq)"
                            " VALUES (?, ?, ?, ?)"),
      m_delete_subscription(db, "DELETE FROM bot_subscriptions WHERE bot_id = ? AND channel_name = ?"),
      m_deliveries(db),
      m_upsert_workflow(db,
                        "INSERT INTO workflows (id, name, owner_type, owner_bot_id, definition, created_at,"
                        " updated_at, archived_at, last_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, NULL, ?7)"
                        " ON CONFLICT (id) DO UPDATE SET definition = excluded.definition,"
                        " updated_at = excluded.updated_at, archived_at = NULL, last_seq = excluded.last_seq"),
      m_delete_workflow(db, "DELETE FROM workflows WHERE id = ?"),
      m_archive_workflow(db, "UPDATE workflows SET archived_at = ?2, last_seq = ?3 WHERE id = ?1"),
      m_insert_run(db,
                   "INSERT INTO workflow_runs (id, workflow_id, workflow_name, status, trigger_type, trigger_payload,"
                   " context, started_at, completed_at, error, concurrency_key, lease_owner, cancel_requested,"
                   " start_seq, last_seq, owner_bot)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, NULL, ?9, ?10, 0, ?11, ?11, ?12)"),
      m_set_run_status(db,
                       "UPDATE workflow_runs SET status = ?2, lease_owner = ?3, completed_at = ?4, last_seq = ?5"
                       " WHERE id = ?1"),
      m_complete_run(db,
                     "UPDATE workflow_runs SET status = 'completed', context = COALESCE(?2, context),"
                     " lease_owner = NULL, completed_at = ?3, last_seq = ?4 WHERE id = ?1"),
      m_fail_run(db,
                 "UPDATE workflow_runs SET status = 'failed', error = ?2, lease_owner = NULL, completed_at = ?3,"
                 " last_seq = ?4 WHERE id = ?1"),
      m_request_run_cancel(db, "UPDATE workflow_runs SET cancel_requested = 1, last_seq = ?2 WHERE id = ?1"),
      m_set_run_context(db, "UPDATE workflow_runs SET context = ?2, last_seq = ?3 WHERE id = ?1"),
      m_insert_step(db,
                    "INSERT INTO workflow_steps (id, run_id, step_id, step_name, status, attempt, idempotency_key,"
                    " input, output, error, will_retry, skip_reason, approved_by, started_at, completed_at,"
                    " start_seq, last_seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?1, ?7, NULL, NULL, 0, ?8, NULL, ?9, ?10,"
                    " ?11, ?11)"),
      m_finish_step(db,
                    "UPDATE workflow_steps SET status = ?2, output = ?3, error = ?4, will_retry = ?5,"
                    " approved_by = ?6, completed_at = ?7, last_seq = ?8 WHERE id = ?1"),
      m_set_step_status(db, "UPDATE workflow_steps SET status = ?2, last_seq = ?3 WHERE id = ?1"),
      m_set_run_owner(db, "UPDATE workflow_runs SET owner_bot = ?2 WHERE id = ?1"),
      m_insert_acl_rule(db,
                        "INSERT INTO acl_rules (bot, permission, channel, granted_by, granted_at, last_seq)"
                        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (bot, permission, channel) DO NOTHING"),
      m_delete_acl_rule(db, "DELETE FROM acl_rules WHERE bot = ? AND permission = ? AND channel = ?") {}

std::vector<AclRule> read_acl_rules(sql::Connection& db) {
    sql::Statement select(db, "SELECT bot, permission, channel FROM acl_rules ORDER BY bot, permission, channel");
    std::vector<AclRule> rules;
    while (select.executeStep()) {
        rules.push_back(AclRule{select.getColumn(0).getString(), select.getColumn(1).getString(),
                                select.getColumn(2).getString()});
    }
    return rules;
}

// Every event type is decided here, once: which projection applies it.
void Projector::apply(const Event& event) {
    switch (event.type) {
    case EventType::channel_created:
    case EventType::channel_deleted:
    case EventType::channel_retention_set:
    case EventType::subscription_added:
    case EventType::subscription_removed:
        apply_channels(event);
        return;
    case EventType::message_published:
        // Nothing to project: history reads messages from the log itself
        // (migrations/0004_message_index.sql).
        return;
    case EventType::message_sent: {
        const auto fields = m_messages.decode(event.type, event.payload);
        if (fields.replay_of && fields.to) m_deliveries.replayed(std::string(*fields.to), *fields.replay_of, event.seq);
        if (const auto expiry = fields.expiry(event.ts_us); expiry && fields.to) {
            m_deliveries.expires(std::string(*fields.to), event.seq, *expiry);
        }
        return;
    }
    case EventType::mailbox_acked:
    case EventType::message_expired:
    case EventType::message_dead_lettered:
    case EventType::consumer_created:
    case EventType::consumer_acked:
    case EventType::consumer_deleted:
    case EventType::stream_trimmed:
        m_deliveries.apply(event);
        return;
    case EventType::workflow_put:
    case EventType::workflow_deleted:
    case EventType::workflow_archived:
    case EventType::run_started:
    case EventType::run_paused:
    case EventType::run_resumed:
    case EventType::run_completed:
    case EventType::run_failed:
    case EventType::run_cancel_requested:
    case EventType::run_cancelled:
    case EventType::run_context:
    case EventType::run_crashed:
    case EventType::step_started:
    case EventType::step_completed:
    case EventType::step_failed:
    case EventType::step_skipped:
    case EventType::step_waiting_approval:
    case EventType::step_approved:
        apply_workflow(event);
        return;
    case EventType::acl_granted:
    case EventType::acl_revoked:
        apply_acl(event);
        return;
    }
}

void Projector::apply_acl(const Event& event) {
    msgpack::object_handle keep_alive;
    const auto rule = decode_payload<AclRule>(event.type, event.payload, keep_alive);
    auto& s = event.type == EventType::acl_granted ? m_insert_acl_rule : m_delete_acl_rule;
    s.bind(1, rule.bot);
    s.bind(2, rule.permission);
    s.bind(3, rule.channel);
    if (event.type == EventType::acl_granted) {
        s.bind(4, event.producer);
        s.bind(5, event.ts_us);
        s.bind(6, static_cast<std::int64_t>(event.seq));
    }
    exec_and_reset(s);
}

void Projector::apply_channels(const Event& event) {
    msgpack::object_handle keep_alive;
    const auto seq = static_cast<std::int64_t>(event.seq);
    if (event.type == EventType::channel_created) {
        const auto p = decode_payload<ChannelCreated>(event.type, event.payload, keep_alive);
        m_insert_channel.bind(1, p.name);
        bind_optional(m_insert_channel, 2, p.description);
        m_insert_channel.bind(3, event.producer);
        m_insert_channel.bind(4, event.ts_us);
        m_insert_channel.bind(5, seq);
        exec_and_reset(m_insert_channel);
    } else if (event.type == EventType::channel_deleted) {
        const auto p = decode_payload<ChannelDeleted>(event.type, event.payload, keep_alive);
        m_delete_channel.bind(1, p.name);
        exec_and_reset(m_delete_channel);
        m_delete_channel_subscriptions.bind(1, p.name);
        exec_and_reset(m_delete_channel_subscriptions);
        m_known_channels.forget(p.name);
    } else if (event.type == EventType::channel_retention_set) {
        const auto p = decode_payload<ChannelRetentionSet>(event.type, event.payload, keep_alive);
        auto& s = m_set_channel_retention;
        s.bind(1, p.name);
        const auto bind_limit = [&s](int index, const std::optional<std::uint64_t>& limit) {
            if (limit) {
                s.bind(index, static_cast<std::int64_t>(std::min<std::uint64_t>(*limit, INT64_MAX)));
            } else {
                s.bind(index);
            }
        };
        bind_limit(2, p.max_age_ms);
        bind_limit(3, p.max_messages);
        s.bind(4, seq);
        exec_and_reset(s);
    } else if (event.type == EventType::subscription_added) {
        const auto p = decode_payload<SubscriptionChanged>(event.type, event.payload, keep_alive);
        m_insert_subscription.bind(1, p.bot);
        m_insert_subscription.bind(2, p.channel);
        m_insert_subscription.bind(3, event.ts_us);
        m_insert_subscription.bind(4, seq);
        exec_and_reset(m_insert_subscription);
    } else if (event.type == EventType::subscription_removed) {
        const auto p = decode_payload<SubscriptionChanged>(event.type, event.payload, keep_alive);
        m_delete_subscription.bind(1, p.bot);
        m_delete_subscription.bind(2, p.channel);
        exec_and_reset(m_delete_subscription);
    }
}

// Workflow events. The handler validated each against the projected state
// before appending it, so here every event simply applies; an event whose
// row is missing (a log edited by hand) changes nothing.
void Projector::apply_workflow(const Event& event) {
    msgpack::object_handle keep_alive;
    const auto seq = static_cast<std::int64_t>(event.seq);
    const auto& type = event.type;
    auto set_run_status = [&](const std::string& run_id, std::string_view status,
                              const std::optional<std::string>& lease_owner, bool terminal) {
        auto& s = m_set_run_status;
        s.bind(1, run_id);
        s.bind(2, std::string(status));
        bind_optional(s, 3, lease_owner);
        if (terminal) {
            s.bind(4, event.ts_us);
        } else {
            s.bind(4);
        }
        s.bind(5, seq);
        exec_and_reset(s);
    };
    auto finish_step = [&](const std::string& id, std::string_view status, const std::optional<std::string>& output,
                           const std::optional<std::string>& error, bool will_retry,
                           const std::optional<std::string>& approved_by) {
        auto& s = m_finish_step;
        s.bind(1, id);
        s.bind(2, std::string(status));
        bind_optional(s, 3, output);
        bind_optional(s, 4, error);
        s.bind(5, will_retry ? 1 : 0);
        bind_optional(s, 6, approved_by);
        s.bind(7, event.ts_us);
        s.bind(8, seq);
        exec_and_reset(s);
    };

    if (type == EventType::workflow_put) {
        const auto p = decode_payload<WorkflowPut>(type, event.payload, keep_alive);
        auto& s = m_upsert_workflow;
        s.bind(1, p.id);
        s.bind(2, p.name);
        s.bind(3, p.owner_type);
        bind_optional(s, 4, p.owner_bot);
        s.bind(5, p.definition);
        s.bind(6, event.ts_us);
        s.bind(7, seq);
        exec_and_reset(s);
    } else if (type == EventType::workflow_deleted) {
        const auto p = decode_payload<WorkflowRef>(type, event.payload, keep_alive);
        m_delete_workflow.bind(1, p.id);
        exec_and_reset(m_delete_workflow);
    } else if (type == EventType::workflow_archived) {
        const auto p = decode_payload<WorkflowRef>(type, event.payload, keep_alive);
        m_archive_workflow.bind(1, p.id);
        m_archive_workflow.bind(2, event.ts_us);
        m_archive_workflow.bind(3, seq);
        exec_and_reset(m_archive_workflow);
    } else if (type == EventType::run_started) {
        const auto p = decode_payload<RunStarted>(type, event.payload, keep_alive);
        auto& s = m_insert_run;
        s.bind(1, p.run_id);
        s.bind(2, p.workflow_id);
        s.bind(3, p.workflow_name);
        s.bind(4, p.status);
        s.bind(5, p.trigger_type);
        bind_optional(s, 6, p.trigger_payload);
        s.bind(7, p.context);
        s.bind(8, event.ts_us);
        bind_optional(s, 9, p.concurrency_key);
        bind_optional(s, 10, p.lease_owner);
        s.bind(11, seq);
        s.bind(12, event.producer);
        exec_and_reset(s);
    } else if (type == EventType::run_paused) {
        const auto p = decode_payload<RunRef>(type, event.payload, keep_alive);
        set_run_status(p.run_id, run_status::k_paused, std::nullopt, false);
    } else if (type == EventType::run_resumed) {
        const auto p = decode_payload<RunResumed>(type, event.payload, keep_alive);
        set_run_status(p.run_id, run_status::k_running, p.lease_owner, false);
        m_set_run_owner.bind(1, p.run_id);
        m_set_run_owner.bind(2, p.lease_owner);
        exec_and_reset(m_set_run_owner);
    } else if (type == EventType::run_crashed) {
        const auto p = decode_payload<RunCrashed>(type, event.payload, keep_alive);
        set_run_status(p.run_id, run_status::k_crashed, std::nullopt, false);
    } else if (type == EventType::run_cancelled) {
        const auto p = decode_payload<RunRef>(type, event.payload, keep_alive);
        set_run_status(p.run_id, run_status::k_cancelled, std::nullopt, true);
    } else if (type == EventType::run_completed) {
        const auto p = decode_payload<RunCompleted>(type, event.payload, keep_alive);
        auto& s = m_complete_run;
        s.bind(1, p.run_id);
        bind_optional(s, 2, p.context);
        s.bind(3, event.ts_us);
        s.bind(4, seq);
        exec_and_reset(s);
    } else if (type == EventType::run_failed) {
        const auto p = decode_payload<RunFailed>(type, event.payload, keep_alive);
        auto& s = m_fail_run;
        s.bind(1, p.run_id);
        s.bind(2, p.error);
        s.bind(3, event.ts_us);
        s.bind(4, seq);
        exec_and_reset(s);
    } else if (type == EventType::run_cancel_requested) {
        const auto p = decode_payload<RunRef>(type, event.payload, keep_alive);
        m_request_run_cancel.bind(1, p.run_id);
        m_request_run_cancel.bind(2, seq);
        exec_and_reset(m_request_run_cancel);
    } else if (type == EventType::run_context) {
        const auto p = decode_payload<RunContext>(type, event.payload, keep_alive);
        m_set_run_context.bind(1, p.run_id);
        m_set_run_context.bind(2, p.context);
        m_set_run_context.bind(3, seq);
        exec_and_reset(m_set_run_context);
    } else if (type == EventType::step_started || type == EventType::step_skipped) {
        const bool skipped = type == EventType::step_skipped;
        std::string run_id, step_id;
        std::optional<std::string> step_name, input, reason;
        std::uint64_t attempt = 0;
        if (skipped) {
            auto p = decode_payload<StepSkipped>(type, event.payload, keep_alive);
            run_id = std::move(p.run_id);
            step_id = std::move(p.step_id);
            step_name = std::move(p.step_name);
            attempt = p.attempt;
            reason = std::move(p.reason);
        } else {
            auto p = decode_payload<StepStarted>(type, event.payload, keep_alive);
            run_id = std::move(p.run_id);
            step_id = std::move(p.step_id);
            step_name = std::move(p.step_name);
            attempt = p.attempt;
            input = std::move(p.input);
        }
        auto& s = m_insert_step;
        s.bind(1, step_attempt_id(run_id, step_id, attempt));
        s.bind(2, run_id);
        s.bind(3, step_id);
        bind_optional(s, 4, step_name);
        s.bind(5, std::string(skipped ? step_status::k_skipped : step_status::k_running));
        s.bind(6, static_cast<std::int64_t>(attempt));
        bind_optional(s, 7, input);
        bind_optional(s, 8, reason);
        s.bind(9, event.ts_us);
        if (skipped) {
            s.bind(10, event.ts_us);
        } else {
            s.bind(10);
        }
        s.bind(11, seq);
        exec_and_reset(s);
    } else if (type == EventType::step_completed) {
        const auto p = decode_payload<StepCompleted>(type, event.payload, keep_alive);
        finish_step(step_attempt_id(p.run_id, p.step_id, p.attempt), step_status::k_completed, p.output,
                    std::nullopt, false, std::nullopt);
    } else if (type == EventType::step_failed) {
        const auto p = decode_payload<StepFailed>(type, event.payload, keep_alive);
        finish_step(step_attempt_id(p.run_id, p.step_id, p.attempt), step_status::k_failed, std::nullopt, p.error,
                    p.will_retry, std::nullopt);
    } else if (type == EventType::step_approved) {
        const auto p = decode_payload<StepApproved>(type, event.payload, keep_alive);
        finish_step(step_attempt_id(p.run_id, p.step_id, p.attempt), step_status::k_completed, std::nullopt,
                    std::nullopt, false, p.approved_by);
    } else if (type == EventType::step_waiting_approval) {
        const auto p = decode_payload<StepRef>(type, event.payload, keep_alive);
        m_set_step_status.bind(1, step_attempt_id(p.run_id, p.step_id, p.attempt));
        m_set_step_status.bind(2, std::string(step_status::k_waiting_approval));
        m_set_step_status.bind(3, seq);
        exec_and_reset(m_set_step_status);
    }
}


}  // namespace botbus::store
