// The Store (store/store.hpp) on a PostgreSQL server, which several botbusd
// nodes may share: one log, one set of projections.
//
// Operation: the schema is migrations/postgresql/ (migrated under an
// advisory lock at start). A batch is one transaction that begins by
// locking log_head's row (SELECT ... FOR UPDATE): batches of every node run
// one at a time, so each reads the projections as the previous one left
// them, seqs (global and per stream) are handed out gap-free, and seq order
// is commit order — a reader tailing the log by seq never skips a row that
// commits later. Appends, the projections (store/sql/, the same code SQLite
// runs), savepoints, the hash chain and the kept counts work as in
// SqliteStore. What this node remembers between batches (stream heads, which
// channels exist) is dropped when a batch finds that another node committed
// since this one last did.
// A batch that appended announces its commit (pg_notify on the channel
// botbus_log, naming the schema, in the COMMIT's own round trip); every node
// LISTENs, so the others show it at once rather than at their next poll.
// Durability: COMMIT returns once the server has made the transaction as
// durable as its synchronous_commit says (on: flushed to its WAL; with a
// synchronous standby: on that standby too). sync() has nothing to add.
// Concurrency: as Store. Other nodes' batches wait for the row lock, never
// fail on it.
// verify_projections replays the log into a scratch schema (created and
// dropped on a connection of its own) from one REPEATABLE READ snapshot.
// Limitations: backup is not served here (a PostgreSQL database is backed up
// with PostgreSQL's tools: pg_basebackup, pg_dump); it throws saying so.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "store/sql/chain_check.hpp"
#include "store/store.hpp"

namespace botbus::store {

namespace sql {
class PostgresConnection;
class Statement;
}  // namespace sql
class ChainFollower;
class LogTable;
class Projector;
class TrimmedRanges;
class SqlConsumerQueries;
class SqlMailboxQueries;
class SqlMessageQueries;
class SqlWorkflowQueries;

class PostgresStore final : public Store {
public:
    // `conninfo`: a libpq connection string or postgresql:// URI. Throws
    // StartupError when the server cannot be reached or its schema cannot be
    // migrated.
    explicit PostgresStore(const std::string& conninfo);
    ~PostgresStore() override;

    std::vector<Event> read_range(Seq after, std::size_t limit) override;
    // The last seq this node committed or saw at a batch's start (other
    // nodes may have appended since).
    Seq last_seq() const override { return m_last_seq; }
    LogStats stats() override;

    void sync() const override {}
    bool needs_sync() const override { return false; }
    std::uint64_t checkpoints() const override { return 0; }

    MessageQueries& messages() override;
    MailboxQueries& mailboxes() override;
    ConsumerQueries& consumers() override;
    WorkflowQueries& workflows() override;
    std::vector<AclRule> acl_rules() override;

    std::vector<MessageStream> message_streams_after(const std::string& after, std::size_t limit) override;
    std::vector<MessagePosition> oldest_messages(const std::string& stream, std::size_t limit) override;
    Appended trim_messages(Batch& batch, const std::string& stream, Seq through, std::uint64_t count) override;

    ProjectionCheck verify_projections(std::size_t max_differences = 100) override;
    // `botbusd verify`: the log's hash chain (store/sql/chain_check.hpp),
    // walked in one REPEATABLE READ snapshot beside nodes that append.
    LogCheck check_log();
    BackupResult backup(const std::string& target, const std::atomic<bool>& cancel) override;

    // The server, as named in messages (no password).
    const std::string& label() const { return m_label; }
    bool shared() const override { return true; }
    Seq committed_last_seq() override;
    bool leads() override;
    int wake_descriptor() const override;
    bool take_wake() override;
    bool claim_reader(const std::string& channel, const std::string& bot) override;
    void release_reader(const std::string& channel, const std::string& bot) override;
    std::optional<std::string> lost() const override;

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

    void prepare_statements();
    struct StreamHead {
        Seq stream_seq = 0;   // the stream's last stream seq
        Seq seq = 0;          // the log seq of its last event (0: untouched by this batch)
        bool listed = false;  // `streams` has its row (else the commit adds it)
    };
    StreamHead known_stream(const std::string& stream);
    std::optional<Appended> find_by_idem_key(const std::string& producer, const std::string& key);
    void forget_remembered();

    struct LogCounts {
        std::int64_t events = 0;
        std::int64_t messages = 0;
    };
    struct Head {
        Seq last_seq = 0;
        std::array<unsigned char, 32> last_hash{};
        Seq chain_start = 0;
        LogCounts counts;
    };

    std::string m_conninfo;
    std::string m_label;  // the server, for messages (no password)
    std::unique_ptr<sql::PostgresConnection> m_db;
    Seq m_last_seq = 0;
    Seq m_chain_start = 0;
    // Committed stream heads this node read; valid while no other node commits.
    std::unordered_map<std::string, StreamHead> m_streams;

    bool m_leading = false;  // holds the cluster advisory lock (session-level: for good)
    bool m_batch_open = false;
    Head m_batch;  // the head as the open batch leaves it
    std::unordered_map<std::string, StreamHead> m_batch_heads;
    struct SavepointMark {
        Head head;
        std::unordered_map<std::string, StreamHead> heads;
    };
    std::optional<SavepointMark> m_savepoint;

    std::unique_ptr<sql::Statement> m_lock_head;
    std::unique_ptr<sql::Statement> m_read_head;
    std::unique_ptr<sql::Statement> m_claim_reader;
    std::string m_schema;  // current_schema(): the commits announced to this node's cluster name it
    std::unique_ptr<sql::Statement> m_release_reader;
    std::unique_ptr<sql::Statement> m_insert_event;
    std::unique_ptr<sql::Statement> m_store_hash;
    std::unique_ptr<sql::Statement> m_update_head;
    std::unique_ptr<sql::Statement> m_projection_count;
    std::unique_ptr<LogTable> m_log;
    std::unique_ptr<ChainFollower> m_chain;
    std::unique_ptr<TrimmedRanges> m_trimmed;
    std::unique_ptr<Projector> m_projector;
    std::unique_ptr<SqlMessageQueries> m_messages;
    std::unique_ptr<SqlMailboxQueries> m_mailboxes;
    std::unique_ptr<SqlConsumerQueries> m_consumers;
    std::unique_ptr<SqlWorkflowQueries> m_workflows;
};

}  // namespace botbus::store
