// botbus's embedded store: the SQLite event log and its projections.
//
// Operation: opens (creating if needed) one SQLite file in WAL mode, migrates
// it, and serves batches. A Batch is one write transaction: every append
// assigns the next global seq and stream seq, records the event, and applies
// it to the projections in the same transaction; nothing is durable (or may
// be shown to anyone) until Batch::commit returns. Reads made inside an open
// batch see that batch's appends.
// Concurrency: single-threaded. A Store and everything it hands out belong to
// the thread that created it; at most one Batch is open at a time.
// Limitations: trimming the log is not implemented yet; log_head and streams
// already keep seqs from being reused once it is.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/event.hpp"
#include "store/message_queries.hpp"
#include "store/migrator.hpp"
#include "store/projector.hpp"

namespace botbus::store {

enum class Durability {
    full,    // synchronous=FULL: a committed batch survives power loss
    normal,  // synchronous=NORMAL: survives a process crash, may lose the last commits on power loss
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

    // Commits; throws SQLite::Exception (and rolls back) on failure.
    void commit();

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

    Seq last_seq() const { return m_last_seq; }
    LogStats stats();
    MessageQueries& messages() { return *m_messages; }
    SQLite::Database& database() { return m_db; }
    const std::string& path() const { return m_path; }

private:
    friend class Batch;
    Seq stream_seq_of(const std::string& stream);
    std::optional<Appended> find_by_idem_key(const std::string& producer, const std::string& key);

    std::string m_path;
    SQLite::Database m_db;
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
};

// Opens the SQLite connection with botbus's pragmas; shared by Store and the
// offline tools. Throws StartupError with the path on failure.
SQLite::Database open_database(const std::string& path, Durability durability);

}  // namespace botbus::store
