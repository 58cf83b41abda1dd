// botbus's embedded store: the SQLite event log and its projections.
//
// Operation: opens (creating if needed) one SQLite file in WAL mode, migrates
// it, and serves batches. A Batch is one write transaction: every append
// assigns the next global seq and stream seq, records the event, and applies
// it to the projections in the same transaction; nothing is durable (or may
// be shown to anyone) until Batch::commit returns. Reads made inside an open
// batch see that batch's appends.
// Durability: with Durability::full, a batch is durable once its commit and a
// WAL sync after it have both completed. Batch::commit does both; the daemon
// uses commit_unsynced and runs Store::sync on another thread, so the next
// batch executes while the previous one reaches the disk (see wal_file.hpp).
// Checkpoints run on a background thread with their own connection
// (checkpointer.hpp).
// Concurrency: single-threaded, except sync(). A Store and everything it
// hands out belong to the thread that created it; at most one Batch is open
// at a time.
// Limitations: the store never deletes on its own: retention (trimmer.hpp)
// deletes old messages in small logged steps, and log_head and streams keep
// seqs from being reused whatever is deleted.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/checkpointer.hpp"
#include "store/consumer_queries.hpp"
#include "store/event.hpp"
#include "store/mailbox_queries.hpp"
#include "store/message_queries.hpp"
#include "store/migrator.hpp"
#include "store/projector.hpp"
#include "store/wal_file.hpp"

namespace botbus::store {

enum class Durability {
    full,    // the WAL is synced before a batch counts as durable: it survives power loss
    normal,  // no sync before that: survives a process crash, may lose the last commits on power loss
};

struct StoreOptions {
    std::string path;  // a file path, or ":memory:" for tests
    Durability durability = Durability::full;
};

class Store;

// One write transaction. Rolls back on destruction unless committed.
class Batch {
public:
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    Batch(Batch&& other) noexcept;
    Batch& operator=(Batch&&) = delete;
    ~Batch();

    // Appends the event and applies it to the projections, or, when the
    // producer already appended an event under the same idempotency key,
    // returns that event's position and appends nothing. When it throws, the
    // whole batch is rolled back and closed.
    Appended append(EventDraft draft);

    // The position of the event the producer appended under this key, if any
    // (committed, or earlier in this batch).
    std::optional<Appended> find_idempotent(const std::string& producer, const std::string& key);

    // Commits and, under Durability::full, syncs the WAL: the batch is
    // durable when this returns. Throws SQLite::Exception (and rolls back)
    // when the commit fails, std::system_error when the sync fails (the batch
    // is then committed but must not be taken as durable).
    void commit();

    // Commits without syncing: later reads on this Store see the batch, but
    // nothing of it may be shown outside until a Store::sync() that started
    // after this returned has completed. Throws like commit().
    void commit_unsynced();

    // The events this batch appended, in order.
    const std::vector<Event>& events() const { return m_events; }
    // The same, moved out: for after the commit.
    std::vector<Event> take_events() { return std::move(m_events); }

private:
    friend class Store;
    explicit Batch(Store& store);
    Appended append_open(EventDraft draft);
    void rollback() noexcept;

    Store* m_store;
    bool m_open = true;
    Seq m_last_seq;
    struct StreamHead {
        Seq stream_seq = 0;  // the stream's last stream seq
        Seq seq = 0;         // the log seq of its last event (0: untouched by this batch)
    };
    // Streams touched by this batch; their rows in `streams` are written once
    // each at commit rather than once per event.
    std::unordered_map<std::string, StreamHead> m_stream_heads;
    std::vector<Event> m_events;
};

struct LogStats {
    Seq last_seq = 0;
    std::int64_t event_count = 0;
    std::int64_t channel_count = 0;
    std::int64_t subscription_count = 0;
    std::int64_t message_count = 0;
    std::int64_t db_bytes = 0;
};

class Store {
public:
    // Throws StartupError when the file cannot be opened, is not a botbus
    // database, or fails its migrations.
    explicit Store(const StoreOptions& options);
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    ~Store();

    Batch begin();

    // Events with seq > after, oldest first, at most `limit`.
    std::vector<Event> read_range(Seq after, std::size_t limit);

    // Makes every batch committed so far durable (Durability::full; a no-op
    // otherwise and for in-memory databases). The one Store method that may
    // be called from another thread, concurrently with batches.
    void sync() const;
    // Whether sync() does anything: false for Durability::normal and for
    // in-memory databases, whose commits are as durable as they get.
    bool needs_sync() const { return m_wal && m_durability == Durability::full; }

    // Background checkpoints completed so far (0 for in-memory databases),
    // and a wait for them (tests).
    std::uint64_t checkpoints() const { return m_checkpointer ? m_checkpointer->completed() : 0; }
    bool wait_for_checkpoints(std::uint64_t count, std::chrono::steady_clock::time_point deadline) const {
        return m_checkpointer && m_checkpointer->wait_completed(count, deadline);
    }

    Seq last_seq() const { return m_last_seq; }
    LogStats stats();
    MessageQueries& messages() { return *m_messages; }
    MailboxQueries& mailboxes() { return *m_mailboxes; }
    ConsumerQueries& consumers() { return *m_consumers; }
    SQLite::Database& database() { return m_db; }
    const std::string& path() const { return m_path; }

    // WAL sizes (in 4 KiB frames): past the soft limit the background
    // checkpointer is asked once to copy the WAL, and the committing thread
    // then finishes the job (see on_wal_commit); past the hard limit it
    // checkpoints whether or not the background one is done.
    static constexpr int k_checkpoint_soft_frames = 1000;
    static constexpr int k_checkpoint_hard_frames = 16000;

private:
    friend class Batch;
    static int on_wal_commit(void* store, sqlite3* db, const char* schema, int frames);
    Seq stream_seq_of(const std::string& stream);
    std::optional<Appended> find_by_idem_key(const std::string& producer, const std::string& key);

    std::string m_path;
    Durability m_durability;
    SQLite::Database m_db;
    std::unique_ptr<WalFile> m_wal;                 // file databases only
    std::unique_ptr<Checkpointer> m_checkpointer;  // file databases only
    // Set when this WAL generation's background checkpoint was requested: the
    // checkpointer's completed() count at that moment.
    std::optional<std::uint64_t> m_checkpoint_requested;
    Seq m_last_seq = 0;
    std::unordered_map<std::string, Seq> m_stream_seqs;  // committed; filled lazily
    bool m_batch_open = false;

    std::unique_ptr<SQLite::Statement> m_insert_event;
    std::unique_ptr<SQLite::Statement> m_find_idem;
    std::unique_ptr<SQLite::Statement> m_find_stream;
    std::unique_ptr<SQLite::Statement> m_upsert_stream;
    std::unique_ptr<SQLite::Statement> m_update_head;
    std::unique_ptr<SQLite::Statement> m_read_range;
    std::unique_ptr<Projector> m_projector;
    std::unique_ptr<MessageQueries> m_messages;
    std::unique_ptr<MailboxQueries> m_mailboxes;
    std::unique_ptr<ConsumerQueries> m_consumers;
};

// Opens the SQLite connection with botbus's pragmas; shared by Store and the
// offline tools. Throws StartupError with the path on failure.
SQLite::Database open_database(const std::string& path, Durability durability);

}  // namespace botbus::store
