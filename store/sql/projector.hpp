// Applies log events to the projection tables. The live store and the
// offline rebuild both go through here, so replaying the log gives the same
// rows the daemon wrote.
// Concurrency: single-threaded, like the Database it writes.
#pragma once

#include "store/sql/connection.hpp"
#include "store/sql/statement.hpp"

#include <memory>

#include "store/event.hpp"
#include "store/payloads.hpp"
#include "store/sql/delivery_projector.hpp"
#include "store/sql/known_channels.hpp"

namespace botbus::store {

// Every rule the acl_rules projection holds, ordered by bot, permission,
// channel (Store::acl_rules). Read rarely (start-up, a rolled-back batch):
// prepared per call.
std::vector<AclRule> read_acl_rules(sql::Connection& db);

class Projector {
public:
    explicit Projector(sql::Connection& db);

    // Applies one event; throws std::runtime_error on an undecodable payload.
    // (An event type this build does not know never gets here: reading the
    // log refuses it, see SqliteStore::read_range.)
    void apply(const Event& event);

    // The transaction the events were applied in rolled back: what this
    // projector remembers of them goes too.
    void rolled_back() { m_known_channels.forget_all(); }

    // Delivery attempts, written beside the log (Batch::record_deliveries).
    void record_deliveries(const DeliveryRecord& record) { m_deliveries.record(record); }

    // Which channels exist, as of the applied events (known_channels.hpp).
    KnownChannels& known_channels() { return m_known_channels; }

private:
    sql::Statement m_insert_channel;
    sql::Statement m_delete_channel;
    sql::Statement m_delete_channel_subscriptions;
    sql::Statement m_set_channel_retention;
    sql::Statement m_insert_subscription;
    sql::Statement m_delete_subscription;
    DeliveryProjector m_deliveries;
    MessageDecoder m_messages;
    KnownChannels m_known_channels;

    void apply_channels(const Event& event);
    void apply_workflow(const Event& event);
    void apply_acl(const Event& event);
    sql::Statement m_upsert_workflow;
    sql::Statement m_delete_workflow;
    sql::Statement m_archive_workflow;
    sql::Statement m_insert_run;
    sql::Statement m_set_run_status;     // status, lease_owner, completed_at
    sql::Statement m_complete_run;       // + context when given
    sql::Statement m_fail_run;           // + error
    sql::Statement m_request_run_cancel;
    sql::Statement m_set_run_context;
    sql::Statement m_insert_step;
    sql::Statement m_finish_step;        // status, output, error, will_retry, approved_by, completed_at
    sql::Statement m_set_step_status;
    sql::Statement m_set_run_owner;
    sql::Statement m_insert_acl_rule;
    sql::Statement m_delete_acl_rule;
};

}  // namespace botbus::store
