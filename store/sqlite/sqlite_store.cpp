#include "store/sqlite/sqlite_store.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "store/payloads.hpp"
#include "store/sql/chain_follower.hpp"
#include "store/sqlite/checkpointer.hpp"
#include "store/sql/consumer_queries.hpp"
#include "store/sqlite/database.hpp"
#include "store/sql/event_hash.hpp"
#include "store/sql/log_table.hpp"
#include "store/sql/mailbox_queries.hpp"
#include "store/sql/message_queries.hpp"
#include "store/sql/migrator.hpp"
#include "store/sqlite/projection_fills.hpp"
#include "store/sql/projector.hpp"
#include "store/sqlite/sqlite_connection.hpp"
#include "store/sqlite/seq_record.hpp"
#include "store/sql/statement_helpers.hpp"
#include "store/sql/trimmed_ranges.hpp"
#include "store/sqlite/wal_file.hpp"
#include "store/sql/workflow_queries.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;

namespace {

// Before SQLite sees the files: the record's file is created in the data
// directory (a write to the directory itself) and the database files must
// open for writing, so a read-only data directory is refused with its cause.
std::unique_ptr<SeqRecord> open_seq_record(const std::string& path) {
    if (path == ":memory:") return nullptr;
    std::unique_ptr<SeqRecord> record;
    try {
        record = std::make_unique<SeqRecord>(SeqRecord::path_for(path));
    } catch (const StartupError& e) {
        throw StartupError(path + ": the data directory is not usable: " + e.what());
    }
    check_files_writable(path);
    return record;
}

}  // namespace

SqliteStore::SqliteStore(const StoreOptions& options)
    : m_path(options.path),
      m_durability(options.durability),
      m_seq_record(open_seq_record(options.path)),
      m_db(std::make_unique<SQLite::Database>(open_database(options.path, options.durability))),
      m_sql(std::make_unique<sql::SqliteConnection>(*m_db)) {
    migrate(*m_sql, migrations::all(), m_path);
    fill_projections(*m_db);
    if (m_path != ":memory:") {
        check_write_transaction(*m_db, m_path);
        // Commits stop syncing by themselves: sync() does it, off the
        // executing thread (see wal_file.hpp). NORMAL still syncs around
        // checkpoints, so the file stays consistent whatever happens.
        m_db->exec("PRAGMA synchronous=NORMAL");
        m_wal = std::make_unique<WalFile>(m_path);
        m_checkpointer = std::make_unique<Checkpointer>(m_path);
        // Replaces SQLite's automatic checkpoints, which ran inside COMMIT.
        sqlite3_wal_hook(m_db->getHandle(), &SqliteStore::on_wal_commit, this);
    }
    try {
        sql::Statement head(*m_sql,
                               "SELECT last_seq, last_hash, chain_start, event_count, message_count FROM log_head"
                               " WHERE id = 1");
        if (!head.executeStep()) throw StartupError(m_path + ": log_head row is missing");
        m_last_seq = static_cast<Seq>(head.getColumn(0).getInt64());
        if (!head.getColumn(1).isNull()) m_last_hash = hash_from_column(head.getColumn(1), m_last_seq);
        m_chain_start = static_cast<Seq>(head.getColumn(2).getInt64());
        m_counts = LogCounts{head.getColumn(3).getInt64(), head.getColumn(4).getInt64()};
        sql::Statement max_seq(*m_sql, "SELECT COALESCE(MAX(seq), 0) FROM events");
        max_seq.executeStep();
        if (static_cast<Seq>(max_seq.getColumn(0).getInt64()) > m_last_seq) {
            throw StartupError(m_path + ": events table is ahead of log_head; the file was modified outside botbusd");
        }
        prepare_statements();
    } catch (const SQLite::Exception& e) {
        throw StartupError(m_path + ": unexpected schema: " + e.what());
    }
    m_committed_seq.store(m_last_seq, std::memory_order_release);
    if (m_seq_record) check_seq_record();
}

void SqliteStore::check_seq_record() {
    const auto recorded = m_seq_record->initial();
    if (recorded && *recorded > m_last_seq) {
        const auto first_missing = std::to_string(m_last_seq + 1);
        const auto last_missing = std::to_string(*recorded);
        throw StartupError(
            m_path + ": the log ends at seq " + std::to_string(m_last_seq) + " but " + m_seq_record->path() +
            " records that seqs up to " + last_missing + " were durable and acknowledged: seqs " + first_missing +
            ".." + last_missing +
            " are missing (a damaged WAL frame ends SQLite's recovery early, or the database was replaced by an "
            "older copy). botbusd will not start and hand those seqs out again. Keep a copy of the data "
            "directory; restore botbus.db and botbus.db-wal from a backup that holds seq " + last_missing +
            ", or, to accept the loss, move " + m_seq_record->path() +
            " aside (seqs " + first_missing + ".." + last_missing + " will then be reused)");
    }
    try {
        // A real, synced write before the daemon says it is ready.
        m_seq_record->write_durable(m_last_seq);
    } catch (const std::system_error& e) {
        throw StartupError(m_seq_record->path() + ": cannot write: " + e.code().message());
    }
}

void SqliteStore::prepare_statements() {
    auto& db = *m_sql;
    m_insert_event = std::make_unique<sql::Statement>(
        db,
        "INSERT INTO events (seq, ts_us, stream, stream_seq, type, producer, idem_key, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    // Only a commit's last event stores its chain hash (chain_follower.hpp).
    m_store_hash = std::make_unique<sql::Statement>(db, "UPDATE events SET hash = ?2 WHERE seq = ?1");
    m_update_head = std::make_unique<sql::Statement>(
        db, "UPDATE log_head SET last_seq = ?, last_hash = ?, event_count = ?, message_count = ? WHERE id = 1");
    m_projection_count = std::make_unique<sql::Statement>(db, "SELECT count FROM projection_counts WHERE name = ?");
    m_log = std::make_unique<LogTable>(*m_sql);
    m_chain = std::make_unique<ChainFollower>(*m_sql);
    m_trimmed = std::make_unique<TrimmedRanges>(*m_sql);
    prepare_savepoint_statements();
    m_projector = std::make_unique<Projector>(*m_sql);
    m_messages = std::make_unique<SqlMessageQueries>(*m_sql, m_projector->known_channels());
    m_mailboxes = std::make_unique<SqlMailboxQueries>(*m_sql);
    m_consumers = std::make_unique<SqlConsumerQueries>(*m_sql);
    m_workflows = std::make_unique<SqlWorkflowQueries>(*m_sql);
}

SqliteStore::~SqliteStore() {
    if (m_wal) sqlite3_wal_hook(m_db->getHandle(), nullptr, nullptr);
    // A clean close leaves an exact record. Not after a failed sync: a later
    // fdatasync may succeed although the failed pages never reached the disk.
    if (m_seq_record && m_wal && !m_sync_failed.load()) {
        try {
            m_wal->sync();
            m_seq_record->write_durable(m_last_seq);
        } catch (...) {  // the record stays the lower bound it was
        }
    }
}

int SqliteStore::on_wal_commit(void* store, sqlite3* db, const char* schema, int frames) {
    auto& self = *static_cast<SqliteStore*>(store);
    if (frames < k_checkpoint_soft_frames) {
        self.m_checkpoint_requested.reset();  // the WAL was restarted
        return SQLITE_OK;
    }
    if (!self.m_checkpoint_requested && frames < k_checkpoint_hard_frames) {
        // Once per WAL generation: the background thread copies the bulk.
        self.m_checkpoint_requested = self.m_checkpointer->completed();
        self.m_checkpointer->request();
        return SQLITE_OK;
    }
    // A checkpoint from another connection never completes while commits
    // keep coming, and only a completed one lets the next transaction
    // restart the WAL (without it, the WAL grows and every commit past the
    // soft limit re-copies its pages, with two fsyncs each). Once the
    // background checkpoint is done, this one copies what came since, and
    // nothing commits meanwhile. PASSIVE never waits: if the background one
    // holds the checkpoint lock this is SQLITE_BUSY at once, tried again
    // after the next commit.
    const bool background_done =
        self.m_checkpoint_requested && self.m_checkpointer->completed() > *self.m_checkpoint_requested;
    if (background_done || frames >= k_checkpoint_hard_frames) {
        sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    }
    return SQLITE_OK;
}

void SqliteStore::sync() const {
    if (!needs_sync()) return;
    // Read before the sync starts: everything committed up to here is
    // covered by it.
    const auto covered = m_committed_seq.load(std::memory_order_acquire);
    try {
        m_wal->sync();
        // Before the batches it covers are acknowledged: in the page cache,
        // the record survives a crash of the process (seq_record.hpp).
        m_seq_record->advance(covered);
    } catch (...) {
        m_sync_failed.store(true);
        throw;
    }
}

bool SqliteStore::needs_sync() const { return m_wal && m_durability == Durability::full; }

std::uint64_t SqliteStore::checkpoints() const { return m_checkpointer ? m_checkpointer->completed() : 0; }

bool SqliteStore::wait_for_checkpoints(std::uint64_t count, std::chrono::steady_clock::time_point deadline) const {
    return m_checkpointer && m_checkpointer->wait_completed(count, deadline);
}

MessageQueries& SqliteStore::messages() { return *m_messages; }
MailboxQueries& SqliteStore::mailboxes() { return *m_mailboxes; }
ConsumerQueries& SqliteStore::consumers() { return *m_consumers; }
WorkflowQueries& SqliteStore::workflows() { return *m_workflows; }

std::vector<AclRule> SqliteStore::acl_rules() { return read_acl_rules(*m_sql); }

SqliteStore::KnownStream SqliteStore::known_stream(const std::string& stream) {
    if (const auto it = m_streams.find(stream); it != m_streams.end()) return it->second;
    const auto head = m_log->stream_head(stream);
    const KnownStream known{head.stream_seq, head.listed};
    m_streams.emplace(stream, known);
    return known;
}

std::optional<Appended> SqliteStore::find_by_idem_key(const std::string& producer, const std::string& key) {
    return m_log->find_by_idem_key(producer, key);
}

std::vector<Event> SqliteStore::read_range(Seq after, std::size_t limit) { return m_log->read_range(after, limit); }

LogStats SqliteStore::stats() {
    // Kept counts, not COUNT(*): each figure costs the same on any log size.
    LogStats stats;
    stats.last_seq = m_last_seq;
    const auto& counts = m_batch_open ? m_batch_counts : m_counts;
    stats.event_count = counts.events;
    stats.message_count = counts.messages;
    auto projection_count = [this](const char* name) {
        auto& s = *m_projection_count;
        ResetOnExit reset{s};
        s.bind(1, name);
        return s.executeStep() ? s.getColumn(0).getInt64() : 0;
    };
    stats.channel_count = projection_count("channels");
    stats.subscription_count = projection_count("subscriptions");
    // From the database header: no pages are read.
    SQLite::Statement bytes(*m_db, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()");
    bytes.executeStep();
    stats.db_bytes = bytes.getColumn(0).getInt64();
    if (m_path != ":memory:") {
        std::error_code missing;  // no WAL file yet: 0
        const auto wal = std::filesystem::file_size(m_path + "-wal", missing);
        if (!missing) stats.wal_bytes = static_cast<std::int64_t>(wal);
    }
    return stats;
}

void SqliteStore::open_batch() {
    if (m_batch_open) throw std::logic_error("botbus::store: a batch is already open");
    m_db->exec("BEGIN IMMEDIATE");
    m_batch_open = true;
    m_batch_last_seq = m_last_seq;
    m_batch_counts = m_counts;
    m_batch_last_hash = m_last_hash;
    m_batch_heads.clear();
}

void SqliteStore::rollback_batch() noexcept {
    m_batch_open = false;
    m_batch_heads.clear();
    m_savepoint.reset();
    // The committed seq caches never saw this batch's seqs; the projector
    // forgets what it remembered of the batch's events.
    m_projector->rolled_back();
    try {
        m_db->exec("ROLLBACK");
    } catch (...) {  // SQLite rolls back by itself when a COMMIT fails
    }
}

Appended SqliteStore::append_to_batch(EventDraft draft, std::vector<Event>& appended) {
    check_transaction();
    if (draft.idem_key) {
        if (auto first = find_by_idem_key(draft.producer, *draft.idem_key)) return *first;
    }

    if (m_savepoint) before_savepoint_append(draft.type);
    auto [it, inserted] = m_batch_heads.try_emplace(draft.stream);
    if (m_savepoint && (inserted || it->second.seq <= m_savepoint->last_seq)) {
        // First change of this head since the savepoint: remember its value.
        m_savepoint->heads.emplace_back(&it->first,
                                        inserted ? std::nullopt : std::optional<StreamHead>(it->second));
    }
    if (inserted) {
        const auto known = known_stream(draft.stream);
        it->second.stream_seq = known.stream_seq;
        it->second.listed = known.listed;
    }
    Event event;
    event.seq = m_batch_last_seq + 1;
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
    insert.bindNoCopy(5, event_type_name(event.type).data());  // names are NUL-terminated literals
    insert.bindNoCopy(6, event.producer);
    if (event.idem_key) {
        insert.bindNoCopy(7, *event.idem_key);
    } else {
        insert.bind(7);
    }
    insert.bindNoCopy(8, event.payload.data(), static_cast<int>(event.payload.size()));
    exec_and_reset(insert);
    // Computed for every event, stored by commit_batch for the last one.
    const auto hash = chain_hash(m_batch_last_hash, event);

    m_projector->apply(event);

    m_batch_last_seq = event.seq;
    ++m_batch_counts.events;
    if (event.type == EventType::message_published || event.type == EventType::message_sent) ++m_batch_counts.messages;
    m_batch_last_hash = hash;
    it->second.stream_seq = event.stream_seq;
    it->second.seq = event.seq;
    const Appended result{event.stream, event.seq, event.stream_seq, event.ts_us, false};
    appended.push_back(std::move(event));
    return result;
}

std::optional<Appended> SqliteStore::find_idempotent_in_batch(const std::string& producer, const std::string& key) {
    return find_by_idem_key(producer, key);
}

void SqliteStore::put_lease_in_batch(const std::string& run_id, std::int64_t expires_at) {
    m_workflows->leases().put(run_id, expires_at);
}

void SqliteStore::drop_lease_in_batch(const std::string& run_id) { m_workflows->leases().drop(run_id); }

void SqliteStore::grant_lease_grace_in_batch(std::int64_t expires_at) { m_workflows->leases().grant_grace(expires_at); }

void SqliteStore::record_deliveries_in_batch(const DeliveryRecord& record) {
    check_transaction();
    m_projector->record_deliveries(record);
}

void SqliteStore::commit_batch() {
    check_transaction();
    for (const auto& [stream, head] : m_batch_heads) {
        if (head.seq == 0 || head.listed) continue;  // only looked up, or listed already
        m_log->list_stream(stream);
    }
    const auto last_hash = m_batch_last_hash;
    if (m_batch_last_seq != m_last_seq) {
        m_store_hash->bind(1, static_cast<std::int64_t>(m_batch_last_seq));
        m_store_hash->bind(2, last_hash.data(), static_cast<int>(last_hash.size()));
        exec_and_reset(*m_store_hash);
        m_update_head->bind(1, static_cast<std::int64_t>(m_batch_last_seq));
        m_update_head->bind(2, last_hash.data(), static_cast<int>(last_hash.size()));
        m_update_head->bind(3, m_batch_counts.events);
        m_update_head->bind(4, m_batch_counts.messages);
        exec_and_reset(*m_update_head);
    }
    m_db->exec("COMMIT");
    m_batch_open = false;
    m_last_seq = m_batch_last_seq;
    m_last_hash = last_hash;
    m_counts = m_batch_counts;
    m_committed_seq.store(m_last_seq, std::memory_order_release);
    for (const auto& [stream, head] : m_batch_heads) m_streams[stream] = KnownStream{head.stream_seq, true};
    m_batch_heads.clear();
}

}  // namespace botbus::store
