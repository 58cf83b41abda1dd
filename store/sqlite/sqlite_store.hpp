// The Store (store/store.hpp) on an embedded SQLite file: the event log in
// `events` (plus `streams` and `log_head`, which keep seqs from being
// reused), the projections in their own tables, all in one database.
// Each event row carries its link in the log's hash chain (event_hash.hpp);
// trimming records the ranges it deletes (`trimmed_ranges`) so the chain
// still verifies (log_check.hpp). Beside the file, `<stem>.seq`
// (seq_record.hpp) records the highest durable seq outside the WAL.
//
// Operation: opens (creating if needed) one SQLite file in WAL mode, checks
// that it and its directory take writes, migrates it, refuses a log that
// ends below the seq record, and serves batches. A batch is one BEGIN IMMEDIATE
// transaction; each append inserts the event row and applies it through the
// Projector in that transaction. `log_head` is written once per batch, at
// commit; a stream's head is its newest event, and its `streams` row is
// written only when it first appears or is trimmed (its floor), so a commit
// rewrites three pages (events, events_by_stream, log_head) however few
// events it holds. Every event's chain hash is computed as it is appended;
// only the commit's last event stores it (chain_follower.hpp). The projections' position is log_head's: they commit in
// the same transaction. Savepoints (one request's part of a batch) are in
// sqlite_store_savepoints.cpp.
// Durability: commits run with synchronous=NORMAL and sync() fdatasyncs the
// WAL itself (wal_file.hpp), so the sync can run off the executing thread;
// then it advances the seq record to what the sync covered. Durability::normal
// never syncs, so the record moves only at start-up and clean shutdown.
// Checkpoints run on a background thread with their own connection
// (checkpointer.hpp), and inline only past a hard WAL size.
// Concurrency: as Store; other processes may read the file meanwhile (WAL),
// and `botbusd rebuild` may verify a database a daemon is writing.
// Limitations: this header names SQLite types only as forward declarations,
// for database(), which is for tests and store/ alone.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/store.hpp"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite
struct sqlite3;

namespace botbus::store::sql {
class SqliteConnection;
class Statement;
}  // namespace botbus::store::sql

namespace botbus::store {

class ChainFollower;
class Checkpointer;
class LogTable;
class Projector;
class SeqRecord;
class TrimmedRanges;
class SqlConsumerQueries;
class SqlMailboxQueries;
class SqlMessageQueries;
class SqlWorkflowQueries;
class WalFile;

struct StoreOptions {
    std::string path;  // a file path, or ":memory:" for tests
    Durability durability = Durability::full;
};

class SqliteStore final : public Store {
public:
    // Throws StartupError when the file cannot be opened or written, is not a
    // botbus database, fails its integrity check, fails its migrations, or
    // its log ends below the seq record (acknowledged events are missing).
    explicit SqliteStore(const StoreOptions& options);
    // Syncs the WAL and the seq record (a clean shutdown's exact record),
    // unless a sync has failed.
    ~SqliteStore() override;

    std::vector<Event> read_range(Seq after, std::size_t limit) override;
    Seq last_seq() const override { return m_last_seq; }
    LogStats stats() override;

    void sync() const override;
    bool needs_sync() const override;
    std::uint64_t checkpoints() const override;
    // Waits until `count` background checkpoints have completed; false at
    // the deadline or for an in-memory database (tests).
    bool wait_for_checkpoints(std::uint64_t count, std::chrono::steady_clock::time_point deadline) const;

    MessageQueries& messages() override;
    MailboxQueries& mailboxes() override;
    ConsumerQueries& consumers() override;
    WorkflowQueries& workflows() override;
    std::vector<AclRule> acl_rules() override;

    std::vector<MessageStream> message_streams_after(const std::string& after, std::size_t limit) override;
    std::vector<MessagePosition> oldest_messages(const std::string& stream, std::size_t limit) override;
    Appended trim_messages(Batch& batch, const std::string& stream, Seq through, std::uint64_t count) override;

    // Rebuilds into an in-memory database (rebuild.hpp), inside one read
    // transaction on this connection.
    ProjectionCheck verify_projections(std::size_t max_differences = 100) override;
    // VACUUM INTO on a connection of its own (backup.hpp).
    BackupResult backup(const std::string& target, const std::atomic<bool>& cancel) override;

    const std::string& path() const { return m_path; }
    // The connection itself: for tests (row-level checks, rebuild equality)
    // and store/ only. Everything else goes through the Store interface.
    SQLite::Database& database() { return *m_db; }

    // WAL sizes (in 4 KiB frames): past the soft limit the background
    // checkpointer is asked once to copy the WAL, and the committing thread
    // then finishes the job (see on_wal_commit); past the hard limit it
    // checkpoints whether or not the background one is done.
    static constexpr int k_checkpoint_soft_frames = 1000;
    static constexpr int k_checkpoint_hard_frames = 16000;

private:
    void open_batch() override;
    Appended append_to_batch(EventDraft draft, std::vector<Event>& appended) override;
    std::optional<Appended> find_idempotent_in_batch(const std::string& producer, const std::string& key) override;
    void record_deliveries_in_batch(const DeliveryRecord& record) override;
    void put_lease_in_batch(const std::string& run_id, std::int64_t expires_at) override;
    void drop_lease_in_batch(const std::string& run_id) override;
    void grant_lease_grace_in_batch(std::int64_t expires_at) override;
    void commit_batch() override;
    void rollback_batch() noexcept override;
    void open_savepoint() override;
    void release_savepoint() override;
    bool rollback_to_savepoint() noexcept override;

    static int on_wal_commit(void* store, sqlite3* db, const char* schema, int frames);
    // Throws when SQLite has rolled the open batch's transaction back by itself.
    void check_transaction() const;
    void prepare_savepoint_statements();
    // Takes the SQL SAVEPOINT before an append of this type, if it needs one.
    void before_savepoint_append(EventType type);
    void prepare_statements();
    // A stream's last stream seq, committed, and whether `streams` lists it.
    struct KnownStream {
        Seq stream_seq = 0;
        bool listed = false;
    };
    KnownStream known_stream(const std::string& stream);
    void check_seq_record();
    std::optional<Appended> find_by_idem_key(const std::string& producer, const std::string& key);

    std::string m_path;
    Durability m_durability;
    std::unique_ptr<SeqRecord> m_seq_record;  // file databases only; opened before the database
    std::unique_ptr<SQLite::Database> m_db;
    std::unique_ptr<sql::SqliteConnection> m_sql;  // m_db, for the SQL both engines run (store/sql/)
    std::unique_ptr<WalFile> m_wal;                 // file databases only
    std::unique_ptr<Checkpointer> m_checkpointer;  // file databases only
    // Set when this WAL generation's background checkpoint was requested: the
    // checkpointer's completed() count at that moment.
    std::optional<std::uint64_t> m_checkpoint_requested;
    Seq m_last_seq = 0;
    Seq m_chain_start = 0;  // events at or below it predate the chain (migration 0008)
    std::array<unsigned char, 32> m_last_hash{};  // the chain hash of m_last_seq (zero before the chain)
    // m_last_seq, for sync() on the sync thread: every seq up to it was
    // committed before a sync that reads it starts.
    std::atomic<Seq> m_committed_seq{0};
    mutable std::atomic<bool> m_sync_failed{false};
    std::unordered_map<std::string, KnownStream> m_streams;  // committed; filled lazily
    // What stats reports of the log, committed (log_head keeps them on disk).
    struct LogCounts {
        std::int64_t events = 0;
        std::int64_t messages = 0;
    };
    LogCounts m_counts;

    // The open batch, if any.
    bool m_batch_open = false;
    Seq m_batch_last_seq = 0;
    LogCounts m_batch_counts;  // with the batch's appends and deletions
    std::array<unsigned char, 32> m_batch_last_hash{};  // the chain's head within the batch
    struct StreamHead {
        Seq stream_seq = 0;   // the stream's last stream seq
        Seq seq = 0;          // the log seq of its last event (0: untouched by this batch)
        bool listed = false;  // `streams` has its row (else the commit adds it)
    };
    // Streams touched by the batch. Their heads are their newest events;
    // `streams` gets a row only for a stream that appears for the first time.
    std::unordered_map<std::string, StreamHead> m_batch_heads;
    // The batch's open savepoint (sqlite_store_savepoints.cpp). Whatever
    // appends change in memory is remembered here and put back on a rollback
    // to it, or the next append would take a seq or stream seq that is not
    // the next one; anything per-batch added to appends must be too.
    struct SavepointMark {
        Seq last_seq = 0;  // m_batch_last_seq then
        std::array<unsigned char, 32> last_hash{};  // m_batch_last_hash then
        LogCounts counts;  // m_batch_counts then
        // Each stream head first changed since then, with its value then
        // (none: it was not in m_batch_heads). The key points into its node,
        // which stays put until the node is erased.
        std::vector<std::pair<const std::string*, std::optional<StreamHead>>> heads;
        // The SQL SAVEPOINT is taken only before the first append whose
        // projection writes: until then the request wrote log rows alone,
        // which a rollback deletes (seq > last_seq) instead.
        bool sql_taken = false;
    };
    std::optional<SavepointMark> m_savepoint;

    std::unique_ptr<sql::Statement> m_insert_event;
    std::unique_ptr<sql::Statement> m_update_head;
    std::unique_ptr<sql::Statement> m_projection_count;
    std::unique_ptr<sql::Statement> m_store_hash;
    std::unique_ptr<LogTable> m_log;
    std::unique_ptr<ChainFollower> m_chain;
    std::unique_ptr<TrimmedRanges> m_trimmed;
    std::unique_ptr<sql::Statement> m_savepoint_begin;
    std::unique_ptr<sql::Statement> m_savepoint_release;
    std::unique_ptr<sql::Statement> m_savepoint_rollback;
    std::unique_ptr<sql::Statement> m_delete_events_after;  // a rolled-back request's log rows
    std::unique_ptr<Projector> m_projector;
    std::unique_ptr<SqlMessageQueries> m_messages;
    std::unique_ptr<SqlMailboxQueries> m_mailboxes;
    std::unique_ptr<SqlConsumerQueries> m_consumers;
    std::unique_ptr<SqlWorkflowQueries> m_workflows;
};

}  // namespace botbus::store
