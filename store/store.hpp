// The store seam: what the core and the server use of botbus's storage. An
// append-only event log of streams, the projections derived from it (read
// through the query interfaces), and the operations that keep it in shape
// (retention, verification). The SQLite implementation is store/sqlite/
// (SqliteStore); nothing in this header or the query headers names a backend.
//
// Operation: a Batch is one write transaction. Every append assigns the next
// global seq (gap-free, log order = seq order) and the next seq of its stream
// (gap-free per stream), records the event and applies it to the projections
// in the same transaction; nothing is durable, or may be shown to anyone,
// until the batch commits. Reads made while a batch is open see that batch's
// appends (read-your-writes); there is no other isolation level.
// Savepoints: inside a batch, savepoint() marks where it stands, so that one
// request's appends can be undone alone (rollback_to_savepoint) while the
// others' stay and commit. The daemon takes one per request.
// Durability: with Durability::full a batch is durable once its commit and a
// sync() that started after it have both completed. Batch::commit does both;
// the daemon uses commit_unsynced and runs sync() on another thread, so the
// next batch executes while the previous one reaches the disk.
// Concurrency: single-threaded, except sync(). A Store and everything it
// hands out (query objects, batches) belong to the thread that created it;
// at most one Batch is open at a time.
// Limitations: the store never deletes on its own: retention (trimmer.hpp)
// deletes old messages in small logged steps, and seqs (global and per
// stream) are never reused whatever is deleted.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/consumer_queries.hpp"
#include "store/errors.hpp"
#include "store/event.hpp"
#include "store/mailbox_queries.hpp"
#include "store/message_queries.hpp"
#include "store/workflow_queries.hpp"

namespace botbus::store {

enum class Durability {
    full,    // the log is synced before a batch counts as durable: it survives power loss
    normal,  // no sync before that: survives a process crash, may lose the last commits on power loss
};

class Store;
struct AclRule;  // payloads.hpp

// Delivery attempts to one reader (a bot's mailbox: channel "", or its
// durable subscription to `channel`), kept beside the log so that a restart
// does not reset delivery counts: every unsettled message of it at or below
// `upto` was delivered at least once; each of `counts` was delivered that
// many times (2 or more).
struct DeliveryRecord {
    std::string bot;
    std::string channel;
    std::optional<Seq> upto;
    std::vector<std::pair<Seq, std::uint32_t>> counts;
};

// One write transaction, as a move-only handle. Rolls back on destruction
// unless committed. append and the commits throw std::logic_error on a batch
// that is closed (committed, rolled back, or moved from).
class Batch {
public:
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    Batch(Batch&& other) noexcept;
    Batch& operator=(Batch&&) = delete;
    ~Batch();

    // Appends the event and applies it to the projections, or, when the
    // producer already appended an event under the same idempotency key
    // (committed, or earlier in this batch), returns that event's position
    // (Appended::duplicate) and appends nothing. The event's ts_us is the
    // store's clock at the append. When it throws, the whole batch is rolled
    // back and closed, unless a savepoint is open (see below). It throws
    // (std::runtime_error) rather than write outside a transaction that the
    // backend lost, by itself, to an earlier error (a failed read included):
    // such a batch can only be dropped, and commit throws too.
    Appended append(EventDraft draft);

    // The position of the event the producer appended under this key, if any
    // (committed, or earlier in this batch).
    std::optional<Appended> find_idempotent(const std::string& producer, const std::string& key);

    // Commits and, under Durability::full, syncs: the batch is durable when
    // this returns. A savepoint still open is std::logic_error (and the batch
    // rolls back). When the commit fails it rolls back and throws (the
    // backend's exception); when the sync fails it throws std::system_error
    // and the batch is committed but must not be taken as durable.
    void commit();

    // Commits without syncing: later reads on this Store see the batch, but
    // nothing of it may be shown outside until a Store::sync() that started
    // after this returned has completed. Throws like commit().
    void commit_unsynced();

    // ---- savepoints: one request's part of the batch, undone alone
    // Marks where the batch stands. At most one savepoint is open; it costs
    // nothing until the first append after it (reads need none). While one
    // is open, an append that throws leaves the batch open: the caller must
    // then roll back to the savepoint before anything else.
    // Throws std::logic_error on a closed batch or when one is already open.
    void savepoint();
    // Keeps what was appended since savepoint() as part of the batch; throws
    // std::logic_error when none is open or an append in it failed, the
    // backend's exception when the release fails (the batch must then be
    // dropped).
    void release_savepoint();
    // Undoes everything since savepoint(): its events leave events(), and the
    // log, the projections and whatever the store remembers in memory are as
    // they were at savepoint(). False when that is impossible because the
    // backend lost the whole transaction (SQLite rolls back by itself on some
    // I/O and memory errors): the batch is then rolled back and closed, and
    // none of it can be committed.
    bool rollback_to_savepoint() noexcept;

    // Writes delivery attempts in this batch's transaction (not an event:
    // nothing is appended to the log); durable with its commit.
    void record_deliveries(const DeliveryRecord& record);

    // The leases of running runs, written in this batch's transaction (not
    // events: heartbeats are not logged) and read through
    // WorkflowQueries::lease_expiry and kin. put_lease grants or renews one
    // until `expires_at`; grant_lease_grace holds every running run until at
    // least `expires_at` and drops the leases of runs that are not running.
    void put_lease(const std::string& run_id, std::int64_t expires_at);
    void drop_lease(const std::string& run_id);
    void grant_lease_grace(std::int64_t expires_at);

    // The events this batch appended, in order (duplicates not included).
    const std::vector<Event>& events() const { return m_events; }
    // The same, moved out: for after the commit.
    std::vector<Event> take_events() { return std::move(m_events); }

private:
    friend class Store;
    explicit Batch(Store& store) : m_store(&store) {}
    void rollback() noexcept;

    Store* m_store;
    bool m_open = true;
    std::vector<Event> m_events;
    // The open savepoint, if any.
    bool m_in_savepoint = false;
    bool m_savepoint_taken = false;   // the backend's savepoint exists (taken at the first append)
    bool m_savepoint_failed = false;  // an append in it threw
    std::size_t m_savepoint_events = 0;  // events() before it
};

struct LogStats {
    Seq last_seq = 0;
    std::int64_t event_count = 0;
    std::int64_t channel_count = 0;
    std::int64_t subscription_count = 0;
    std::int64_t message_count = 0;
    std::int64_t db_bytes = 0;
    std::int64_t wal_bytes = 0;  // the write-ahead log's size (0 for a backend without one)
};

// A stream that holds messages (a channel or a mailbox), and its newest
// stream seq as of the last commit.
struct MessageStream {
    std::string stream;
    Seq last_stream_seq = 0;
};

// Where one message sits in the log.
struct MessagePosition {
    Seq seq = 0;
    Seq stream_seq = 0;
    std::int64_t ts_us = 0;
};

// What verify_projections found.
struct ProjectionCheck {
    std::size_t replayed = 0;              // events replayed
    std::vector<std::string> differences;  // one line each; empty when the projections match
};

// What a backup wrote (backup.hpp).
struct BackupResult {
    std::string path;
    std::uint64_t bytes = 0;
    Seq last_seq = 0;          // the copy's log ends here: every event acknowledged before it began
    std::uint64_t events = 0;  // rows in the copy's log (retention may have deleted older ones)
};

class Store {
public:
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    virtual ~Store() = default;

    // Opens the write transaction. Throws std::logic_error when a batch is
    // already open, the backend's exception when the transaction cannot start.
    Batch begin();

    // Committed and, inside an open batch, that batch's events with
    // seq > after, in seq order, at most `limit`. Events deleted by retention
    // are not returned (the seqs then have gaps).
    virtual std::vector<Event> read_range(Seq after, std::size_t limit) = 0;

    // The seq of the last committed event (0 for an empty log); a rolled-back
    // batch leaves it unchanged.
    virtual Seq last_seq() const = 0;
    // Counts over the committed log and projections (and, inside a batch,
    // its appends); last_seq as last_seq().
    virtual LogStats stats() = 0;

    // Makes every batch committed so far durable (Durability::full; a no-op
    // otherwise). The one Store method that may be called from another
    // thread, concurrently with batches. Throws std::system_error when the
    // system reports a write-back failure: nothing committed since the last
    // successful sync may then be taken as durable.
    virtual void sync() const = 0;
    // Whether sync() does anything: false for Durability::normal and for
    // stores whose commits are as durable as they get.
    virtual bool needs_sync() const = 0;
    // Whether other botbusd nodes may append to this log (PostgreSQL): the
    // server then tails it for their events. False for SQLite's own file.
    virtual bool shared() const { return false; }
    // The last seq committed by anyone, read now (for a shared log: what
    // other nodes appended shows here before this node's last_seq()).
    virtual Seq committed_last_seq() { return last_seq(); }
    // Whether this node runs the work that must happen once however many
    // nodes share the log (retention, the expiry sweep). Always true for an
    // unshared log; on PostgreSQL the node holding the cluster's advisory
    // lock, taken when free (a node that dies frees it with its session).
    virtual bool leads() { return true; }
    // A shared log's wake-up: a descriptor that turns readable when another
    // node may have committed (PostgreSQL: the connection's socket, which
    // LISTENs), or -1. The caller only waits on it; it stays the store's.
    virtual int wake_descriptor() const { return -1; }
    // Reads what has arrived for the wake-up; true when another node of
    // this log announced a commit since the last call. Never throws (a
    // broken connection shows at the next read, and in lost()).
    virtual bool take_wake() { return false; }
    // Whether this node delivers the durable reader's messages (a bot's
    // mailbox: `channel` empty; or its durable subscription to `channel`):
    // on a shared log one node at a time does, so two nodes never hand the
    // same message to two consumers. Takes the reader when no node has it
    // (PostgreSQL: a session-level advisory lock, freed with a node that
    // dies) and keeps it until release_reader. Always true for an unshared log.
    virtual bool claim_reader(const std::string& channel, const std::string& bot) {
        (void)channel;
        (void)bot;
        return true;
    }
    // Lets another node take a reader this node claimed.
    virtual void release_reader(const std::string& channel, const std::string& bot) {
        (void)channel;
        (void)bot;
    }
    // Why the store can serve no more batches, once it cannot (PostgreSQL:
    // the connection to the server broke); nullopt while it can. The
    // daemon then stops, so that its supervisor restarts it against a
    // server that answers while its clients move to other nodes.
    virtual std::optional<std::string> lost() const { return std::nullopt; }
    // Background maintenance runs completed so far (SQLite: WAL checkpoints;
    // 0 for a backend without any). For stats.
    virtual std::uint64_t checkpoints() const = 0;

    // The read side of the projections. Each answers from the committed
    // state plus, inside an open batch, that batch's appends; see each header.
    virtual MessageQueries& messages() = 0;
    virtual MailboxQueries& mailboxes() = 0;
    virtual ConsumerQueries& consumers() = 0;
    virtual WorkflowQueries& workflows() = 0;
    // Every permission rule in force (the acl_rules projection), ordered by
    // bot, permission, channel: the core loads them once at start and again
    // after a rolled-back batch, and keeps them in memory.
    virtual std::vector<AclRule> acl_rules() = 0;

    // Retention primitives, for Trimmer (trimmer.hpp), which decides what to
    // delete. The first two are reads, like the query interfaces.
    // Channel and mailbox streams named after `after` (byte order), in name
    // order, at most `limit`, with their newest stream seqs as of the last
    // commit (a batch's appends count from its commit on).
    virtual std::vector<MessageStream> message_streams_after(const std::string& after, std::size_t limit) = 0;
    // The oldest messages still in `stream`, oldest first, at most `limit`.
    virtual std::vector<MessagePosition> oldest_messages(const std::string& stream, std::size_t limit) = 0;
    // Deletes the messages of `stream` at or below seq `through` (`count` of
    // them, as the caller counted) and appends the stream.trimmed event that
    // logs it, both in `batch`: the deletion commits or rolls back with it.
    // Only message events go; the stream's seqs stay taken. Throws
    // std::logic_error without an open batch; on a storage error throws, and
    // the batch must then be dropped (it rolls back), not committed.
    virtual Appended trim_messages(Batch& batch, const std::string& stream, Seq through, std::uint64_t count) = 0;

    // Replays the whole log into fresh projections and compares them, table
    // by table, row by row, with the live ones (which is what `botbusd
    // rebuild` reports), at most `max_differences` lines. Reads the log and
    // the live projections from one snapshot, so a daemon appending to the
    // same database meanwhile causes no differences. Must not be called with
    // a batch open (std::logic_error); throws on a damaged log.
    virtual ProjectionCheck verify_projections(std::size_t max_differences = 100) = 0;

    // Writes a consistent copy of the whole database to `target` (which must
    // not exist) while batches go on. Any thread, one call at a time; blocks
    // for as long as the copy takes. `cancel` stops it (an exception).
    virtual BackupResult backup(const std::string& target, const std::atomic<bool>& cancel) = 0;

protected:
    Store() = default;

    // The batch protocol, called by Batch alone; at most one batch is open,
    // so the implementation keeps the per-batch state.
    // Opens the transaction; throws std::logic_error when one is open.
    virtual void open_batch() = 0;
    // Batch::append's work; a new event is moved onto `appended`.
    virtual Appended append_to_batch(EventDraft draft, std::vector<Event>& appended) = 0;
    virtual std::optional<Appended> find_idempotent_in_batch(const std::string& producer, const std::string& key) = 0;
    virtual void record_deliveries_in_batch(const DeliveryRecord& record) = 0;
    virtual void put_lease_in_batch(const std::string& run_id, std::int64_t expires_at) = 0;
    virtual void drop_lease_in_batch(const std::string& run_id) = 0;
    virtual void grant_lease_grace_in_batch(std::int64_t expires_at) = 0;
    // Commits without syncing; on failure throws, and Batch then calls
    // rollback_batch.
    virtual void commit_batch() = 0;
    // Discards the batch (and whatever the implementation remembered of it).
    virtual void rollback_batch() noexcept = 0;
    // Batch's savepoint, at the first append after Batch::savepoint(): marks
    // the database and every piece of per-batch and cached state that
    // appends change, so rollback_to_savepoint can put all of it back.
    virtual void open_savepoint() = 0;
    virtual void release_savepoint() = 0;
    // Undoes the open savepoint, if any. False when the transaction itself
    // is gone, savepoint or not (Batch then calls rollback_batch).
    virtual bool rollback_to_savepoint() noexcept = 0;

private:
    friend class Batch;
};

}  // namespace botbus::store
