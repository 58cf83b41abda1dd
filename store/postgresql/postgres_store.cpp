#include "store/postgresql/postgres_store.hpp"

#include <libpq-fe.h>

#include <unistd.h>

#include <atomic>
#include <stdexcept>

#include "store/payloads.hpp"
#include "store/postgresql/postgres_connection.hpp"
#include "store/sql/chain_follower.hpp"
#include "store/sql/consumer_queries.hpp"
#include "store/sql/event_hash.hpp"
#include "store/sql/log_table.hpp"
#include "store/sql/mailbox_queries.hpp"
#include "store/sql/message_queries.hpp"
#include "store/sql/migrator.hpp"
#include "store/sql/projector.hpp"
#include "store/sql/rebuild.hpp"
#include "store/sql/statement.hpp"
#include "store/sql/statement_helpers.hpp"
#include "store/sql/trimmed_ranges.hpp"
#include "store/sql/workflow_queries.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;
using detail::send_and_reset;

namespace {

// The server as named in messages: the connection string without a password.
std::string label_of(const sql::PostgresConnection& db) {
    const auto* conn = db.handle();
    std::string label = "postgresql://";
    if (const char* user = PQuser(conn)) label += std::string(user) + "@";
    if (const char* host = PQhost(conn)) label += host;
    if (const char* port = PQport(conn)) label += std::string(":") + port;
    if (const char* name = PQdb(conn)) label += std::string("/") + name;
    return label;
}

std::unique_ptr<sql::PostgresConnection> connect(const std::string& conninfo) {
    try {
        return std::make_unique<sql::PostgresConnection>(conninfo);
    } catch (const sql::Error& e) {
        throw StartupError(std::string("--store: ") + e.what());
    }
}

}  // namespace

PostgresStore::PostgresStore(const std::string& conninfo) : m_conninfo(conninfo), m_db(connect(conninfo)) {
    m_label = label_of(*m_db);
    migrate(*m_db, migrations::postgresql(), m_label);
    try {
        prepare_statements();
        m_last_seq = committed_last_seq();
        sql::Statement schema(*m_db, "SELECT current_schema()");
        if (schema.executeStep()) m_schema = schema.getColumn(0).getString();
        m_db->exec("LISTEN botbus_log");
    } catch (const sql::Error& e) {
        throw StartupError(m_label + ": unexpected schema: " + e.what());
    }
}

PostgresStore::~PostgresStore() = default;

void PostgresStore::prepare_statements() {
    auto& db = *m_db;
    auto statement = [&db](const char* text) { return std::make_unique<sql::Statement>(db, text); };
    m_lock_head = statement(
        "SELECT last_seq, last_hash, chain_start, event_count, message_count FROM log_head WHERE id = 1 FOR UPDATE");
    m_read_head = statement("SELECT last_seq FROM log_head WHERE id = 1");
    // One session-level advisory lock per durable reader, like the
    // cluster's: a transaction rolled back around it keeps it, and a node
    // that dies frees its readers. Keyed within the schema (a cluster in
    // another schema has readers of the same names); chr(31) occurs in no
    // channel or bot name.
    m_claim_reader = statement(
        "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || chr(31) || ? || chr(31) || ?, 0))");
    m_release_reader = statement(
        "SELECT pg_advisory_unlock(hashtextextended(current_schema() || chr(31) || ? || chr(31) || ?, 0))");
    m_insert_event = statement(
        "INSERT INTO events (seq, ts_us, stream, stream_seq, type, producer, idem_key, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    m_store_hash = statement("UPDATE events SET hash = ?2 WHERE seq = ?1");
    m_update_head = statement(
        "UPDATE log_head SET last_seq = ?, last_hash = ?, event_count = ?, message_count = ? WHERE id = 1");
    m_projection_count = statement("SELECT count FROM projection_counts WHERE name = ?");
    m_log = std::make_unique<LogTable>(db);
    m_chain = std::make_unique<ChainFollower>(db);
    m_trimmed = std::make_unique<TrimmedRanges>(db);
    m_projector = std::make_unique<Projector>(db);
    m_messages = std::make_unique<SqlMessageQueries>(db, m_projector->known_channels());
    m_mailboxes = std::make_unique<SqlMailboxQueries>(db);
    m_consumers = std::make_unique<SqlConsumerQueries>(db);
    m_workflows = std::make_unique<SqlWorkflowQueries>(db);
}

Seq PostgresStore::committed_last_seq() {
    auto& s = *m_read_head;
    ResetOnExit reset{s};
    if (!s.executeStep()) throw std::runtime_error(m_label + ": log_head row is missing");
    return static_cast<Seq>(s.getColumn(0).getInt64());
}

std::optional<std::string> PostgresStore::lost() const {
    auto why = m_db->broken();
    if (why) *why = "lost the connection to PostgreSQL (" + label() + "): " + *why;
    return why;
}

bool PostgresStore::leads() {
    if (m_leading || m_batch_open) return m_leading;
    // Session-level: held until this connection ends. Taken at most once
    // (each success would stack another hold). Keyed by the schema, so
    // clusters in different schemas of one database each have a leader.
    sql::Statement take(*m_db, "SELECT pg_try_advisory_lock(1651597941, hashtext(current_schema()))");
    m_leading = take.executeStep() && take.getColumn(0).getInt64() != 0;
    return m_leading;
}

int PostgresStore::wake_descriptor() const { return PQsocket(m_db->handle()); }

bool PostgresStore::take_wake() {
    auto* conn = m_db->handle();
    // A broken connection: the caller's next read fails and lost() says so.
    if (PQconsumeInput(conn) == 0) return true;
    bool woken = false;
    const int own = PQbackendPID(conn);
    while (PGnotify* notice = PQnotifies(conn)) {
        // Own commits and other clusters' (schemas) are no news.
        if (notice->be_pid != own && m_schema == notice->extra) woken = true;
        PQfreemem(notice);
    }
    return woken;
}

bool PostgresStore::claim_reader(const std::string& channel, const std::string& bot) {
    auto& s = *m_claim_reader;
    ResetOnExit reset{s};
    s.bind(1, channel);
    s.bind(2, bot);
    return s.executeStep() && s.getColumn(0).getInt64() != 0;
}

void PostgresStore::release_reader(const std::string& channel, const std::string& bot) {
    auto& s = *m_release_reader;
    ResetOnExit reset{s};
    s.bind(1, channel);
    s.bind(2, bot);
    s.executeStep();
}

MessageQueries& PostgresStore::messages() { return *m_messages; }
MailboxQueries& PostgresStore::mailboxes() { return *m_mailboxes; }
ConsumerQueries& PostgresStore::consumers() { return *m_consumers; }
WorkflowQueries& PostgresStore::workflows() { return *m_workflows; }

std::vector<AclRule> PostgresStore::acl_rules() { return read_acl_rules(*m_db); }

void PostgresStore::forget_remembered() {
    m_streams.clear();
    m_projector->rolled_back();
}

PostgresStore::StreamHead PostgresStore::known_stream(const std::string& stream) {
    if (const auto it = m_streams.find(stream); it != m_streams.end()) return it->second;
    const auto head = m_log->stream_head(stream);
    const StreamHead known{head.stream_seq, 0, head.listed};
    m_streams.emplace(stream, known);
    return known;
}

std::optional<Appended> PostgresStore::find_by_idem_key(const std::string& producer, const std::string& key) {
    return m_log->find_by_idem_key(producer, key);
}

std::vector<Event> PostgresStore::read_range(Seq after, std::size_t limit) { return m_log->read_range(after, limit); }

LogStats PostgresStore::stats() {
    LogStats stats;
    if (m_batch_open) {
        stats.last_seq = m_batch.last_seq;
        stats.event_count = m_batch.counts.events;
        stats.message_count = m_batch.counts.messages;
    } else {
        sql::Statement head(*m_db, "SELECT last_seq, event_count, message_count FROM log_head WHERE id = 1");
        if (head.executeStep()) {
            stats.last_seq = static_cast<Seq>(head.getColumn(0).getInt64());
            stats.event_count = head.getColumn(1).getInt64();
            stats.message_count = head.getColumn(2).getInt64();
        }
    }
    auto projection_count = [this](const char* name) {
        auto& s = *m_projection_count;
        ResetOnExit reset{s};
        s.bind(1, name);
        return s.executeStep() ? s.getColumn(0).getInt64() : 0;
    };
    stats.channel_count = projection_count("channels");
    stats.subscription_count = projection_count("subscriptions");
    // This store's tables and indexes (the database may hold other schemas).
    sql::Statement bytes(*m_db,
                         "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                         " JOIN pg_namespace n ON n.oid = c.relnamespace"
                         " WHERE n.nspname = current_schema() AND c.relkind = 'r'");
    if (bytes.executeStep()) stats.db_bytes = bytes.getColumn(0).getInt64();
    return stats;
}

void PostgresStore::open_batch() {
    if (m_batch_open) throw std::logic_error("botbus::store: a batch is already open");
    m_db->forget_sent_failure();
    m_db->send("BEGIN");  // travels with the head's lock: one round trip
    try {
        // Every node's batches queue here: from now on this one reads what
        // the previous one committed and owns the next seqs.
        auto& lock = *m_lock_head;
        ResetOnExit reset{lock};
        if (!lock.executeStep()) throw std::runtime_error(m_label + ": log_head row is missing");
        m_batch = Head{};
        m_batch.last_seq = static_cast<Seq>(lock.getColumn(0).getInt64());
        if (!lock.getColumn(1).isNull()) m_batch.last_hash = hash_from_column(lock.getColumn(1), m_batch.last_seq);
        m_batch.chain_start = static_cast<Seq>(lock.getColumn(2).getInt64());
        m_batch.counts = LogCounts{lock.getColumn(3).getInt64(), lock.getColumn(4).getInt64()};
    } catch (...) {
        try {
            m_db->exec("ROLLBACK");
        } catch (...) {  // the connection may be gone
        }
        throw;
    }
    if (m_batch.last_seq != m_last_seq) forget_remembered();  // another node committed
    m_last_seq = m_batch.last_seq;
    m_chain_start = m_batch.chain_start;
    m_batch_open = true;
    m_batch_heads.clear();
}

void PostgresStore::rollback_batch() noexcept {
    m_batch_open = false;
    m_batch_heads.clear();
    m_savepoint.reset();
    forget_remembered();
    try {
        m_db->exec("ROLLBACK");
    } catch (...) {  // the connection may be gone; the server rolls back then
    }
}

Appended PostgresStore::append_to_batch(EventDraft draft, std::vector<Event>& appended) {
    if (draft.idem_key) {
        if (auto first = find_by_idem_key(draft.producer, *draft.idem_key)) return *first;
    }
    auto [it, inserted] = m_batch_heads.try_emplace(draft.stream);
    if (inserted) it->second = known_stream(draft.stream), it->second.seq = 0;
    Event event;
    event.seq = m_batch.last_seq + 1;
    event.stream_seq = it->second.stream_seq + 1;
    event.ts_us = now_us();
    event.stream = std::move(draft.stream);
    event.type = draft.type;
    event.producer = std::move(draft.producer);
    event.idem_key = std::move(draft.idem_key);
    event.payload = std::move(draft.payload);

    auto& insert = *m_insert_event;
    insert.bind(1, static_cast<std::int64_t>(event.seq));
    insert.bind(2, event.ts_us);
    insert.bindNoCopy(3, event.stream);
    insert.bind(4, static_cast<std::int64_t>(event.stream_seq));
    insert.bindNoCopy(5, event_type_name(event.type).data());
    insert.bindNoCopy(6, event.producer);
    if (event.idem_key) {
        insert.bindNoCopy(7, *event.idem_key);
    } else {
        insert.bind(7);
    }
    insert.bindNoCopy(8, event.payload.data(), static_cast<int>(event.payload.size()));
    send_and_reset(insert);  // nothing is read back: no round trip of its own
    const auto hash = chain_hash(m_batch.last_hash, event);

    m_projector->apply(event);

    m_batch.last_seq = event.seq;
    ++m_batch.counts.events;
    if (event.type == EventType::message_published || event.type == EventType::message_sent) {
        ++m_batch.counts.messages;
    }
    m_batch.last_hash = hash;
    it->second.stream_seq = event.stream_seq;
    it->second.seq = event.seq;
    const Appended result{event.stream, event.seq, event.stream_seq, event.ts_us, false};
    appended.push_back(std::move(event));
    return result;
}

std::optional<Appended> PostgresStore::find_idempotent_in_batch(const std::string& producer, const std::string& key) {
    return find_by_idem_key(producer, key);
}

void PostgresStore::put_lease_in_batch(const std::string& run_id, std::int64_t expires_at) {
    m_workflows->leases().put(run_id, expires_at);
}

void PostgresStore::drop_lease_in_batch(const std::string& run_id) { m_workflows->leases().drop(run_id); }

void PostgresStore::grant_lease_grace_in_batch(std::int64_t expires_at) { m_workflows->leases().grant_grace(expires_at); }

void PostgresStore::record_deliveries_in_batch(const DeliveryRecord& record) { m_projector->record_deliveries(record); }

void PostgresStore::commit_batch() {
    for (const auto& [stream, head] : m_batch_heads) {
        if (head.seq == 0 || head.listed) continue;
        m_log->list_stream(stream);
    }
    const auto& last_hash = m_batch.last_hash;
    if (m_batch.last_seq != m_last_seq) {
        m_store_hash->bind(1, static_cast<std::int64_t>(m_batch.last_seq));
        m_store_hash->bind(2, last_hash.data(), static_cast<int>(last_hash.size()));
        send_and_reset(*m_store_hash);
        m_update_head->bind(1, static_cast<std::int64_t>(m_batch.last_seq));
        m_update_head->bind(2, last_hash.data(), static_cast<int>(last_hash.size()));
        m_update_head->bind(3, m_batch.counts.events);
        m_update_head->bind(4, m_batch.counts.messages);
        send_and_reset(*m_update_head);
        // Delivered to the listeners when (and only if) the COMMIT is.
        m_db->send("SELECT pg_notify('botbus_log', current_schema())");
    }
    // Everything sent since the head's lock runs now, in this round trip.
    // A transaction a failed write aborted answers COMMIT with ROLLBACK and
    // no error, hence the tag is checked.
    if (m_db->sent_failed()) throw std::runtime_error(m_label + ": a write of this batch failed; nothing of it is kept");
    if (const auto tag = m_db->run_command("COMMIT"); tag != "COMMIT") {
        throw std::runtime_error(m_label + ": the server ended the batch with " + tag + ", not COMMIT");
    }
    m_batch_open = false;
    m_last_seq = m_batch.last_seq;
    for (const auto& [stream, head] : m_batch_heads) m_streams[stream] = StreamHead{head.stream_seq, 0, true};
    m_batch_heads.clear();
}

// A failed statement aborts a PostgreSQL transaction up to the last
// savepoint, so the SQL savepoint is taken at once (SQLite's is taken
// lazily, before the first append whose projection writes).
void PostgresStore::open_savepoint() {
    if (!m_batch_open) throw std::logic_error("botbus::store: savepoint outside a batch");
    if (m_savepoint) throw std::logic_error("botbus::store: a savepoint is already open");
    m_db->send("SAVEPOINT request");
    m_savepoint = SavepointMark{m_batch, m_batch_heads};
}

void PostgresStore::release_savepoint() {
    if (!m_savepoint) throw std::logic_error("botbus::store: no savepoint to release");
    m_savepoint.reset();
    m_db->send("RELEASE SAVEPOINT request");
}

bool PostgresStore::rollback_to_savepoint() noexcept {
    try {
        m_db->settle();
    } catch (...) {  // recorded as sent_failed, or the connection is gone
    }
    if (m_db->sent_failed()) {
        // It may be an earlier request's write: only the whole batch is undone.
        if (m_savepoint) {
            m_savepoint.reset();
            m_projector->rolled_back();
        }
        return false;
    }
    const bool in_transaction = [this] {
        const auto status = PQtransactionStatus(m_db->handle());
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR;
    }();
    if (!m_savepoint) {
        // Nothing was written since the savepoint; a failed read still aborts
        // the whole transaction here.
        return m_batch_open && PQtransactionStatus(m_db->handle()) == PQTRANS_INTRANS;
    }
    auto mark = std::move(*m_savepoint);
    m_savepoint.reset();
    m_projector->rolled_back();
    m_batch = mark.head;
    m_batch_heads = std::move(mark.heads);
    if (!in_transaction) return false;
    try {
        m_db->exec("ROLLBACK TO SAVEPOINT request");
        m_db->exec("RELEASE SAVEPOINT request");
    } catch (...) {
        return false;
    }
    return true;
}

std::vector<MessageStream> PostgresStore::message_streams_after(const std::string& after, std::size_t limit) {
    return m_log->message_streams_after(after, limit);
}

std::vector<MessagePosition> PostgresStore::oldest_messages(const std::string& stream, std::size_t limit) {
    return m_log->oldest_messages(stream, limit);
}

Appended PostgresStore::trim_messages(Batch& batch, const std::string& stream, Seq through, std::uint64_t count) {
    if (!m_batch_open) throw std::logic_error("botbus::store: trim_messages outside a batch");
    const auto deleted = m_log->messages_through(stream, through);
    const auto hashes = m_chain->hashes_at(deleted, m_chain_start);
    for (std::size_t i = 0; i < deleted.size(); ++i) {
        if (deleted[i] > m_chain_start) m_trimmed->record(deleted[i], hashes[i]);
    }
    const auto removed = m_log->delete_messages_through(stream, through);
    m_batch.counts.events -= removed;
    m_batch.counts.messages -= removed;
    m_streams.erase(stream);
    return batch.append({std::string(stream::k_retention), EventType::stream_trimmed, "botbusd", std::nullopt,
                         encode_payload(StreamTrimmed{stream, through, count})});
}

LogCheck PostgresStore::check_log() {
    if (m_batch_open) throw std::logic_error("botbus::store: check_log with a batch open");
    LogCheck check;
    m_db->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    try {
        check_chain(*m_db, check);
        m_db->exec("COMMIT");
    } catch (...) {
        try {
            m_db->exec("ROLLBACK");
        } catch (...) {  // the connection is gone
        }
        throw;
    }
    return check;
}

ProjectionCheck PostgresStore::verify_projections(std::size_t max_differences) {
    if (m_batch_open) throw std::logic_error("botbus::store: verify_projections with a batch open");
    // The log is replayed into a scratch schema on a connection of its own,
    // dropped afterwards whatever happens. Its name is made here of digits
    // only (an identifier cannot be a parameter).
    static std::atomic<unsigned> counter{0};
    const auto scratch = "botbus_rebuild_" + std::to_string(::getpid()) + "_" + std::to_string(counter.fetch_add(1));
    sql::PostgresConnection rebuilt(m_conninfo);
    rebuilt.exec("CREATE SCHEMA " + scratch);
    {
        sql::Statement use(rebuilt, "SELECT set_config('search_path', ?, false)");
        use.bind(1, scratch);
        use.executeStep();
    }
    ProjectionCheck check;
    // One snapshot of the live log and projections, whatever nodes append meanwhile.
    m_db->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    try {
        check.replayed = rebuild_projections(*this, rebuilt, migrations::postgresql(), m_label + " (rebuild)");
        check.differences = compare_projections(*m_db, rebuilt, max_differences);
        for (auto& line : m_log->count_differences()) {
            if (check.differences.size() < max_differences) check.differences.push_back(std::move(line));
        }
        m_db->exec("COMMIT");
    } catch (...) {
        try {
            m_db->exec("ROLLBACK");
            rebuilt.exec("DROP SCHEMA " + scratch + " CASCADE");
        } catch (...) {  // the connection is gone: the scratch schema stays, named for what it is
        }
        throw;
    }
    rebuilt.exec("DROP SCHEMA " + scratch + " CASCADE");
    return check;
}

BackupResult PostgresStore::backup(const std::string& /*target*/, const std::atomic<bool>& /*cancel*/) {
    throw std::runtime_error(m_label +
                             ": botbusd does not back up a PostgreSQL store; use pg_basebackup or pg_dump "
                             "(docs/SCALING.md)");
}

}  // namespace botbus::store
