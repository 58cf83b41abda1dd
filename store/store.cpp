#include "store/store.hpp"

#include <SQLiteCpp/Transaction.h>
#include <sqlite3.h>

#include <filesystem>

#include "store/statement_helpers.hpp"

namespace botbus::store {

using detail::exec_and_reset;
using detail::ResetOnExit;

namespace {

void check_integrity(SQLite::Database& db, const std::string& path) {
    // quick_check reads every page: a damaged file stops start-up here, with
    // SQLite's own description, instead of failing a batch later.
    SQLite::Statement check(db, "PRAGMA quick_check(5)");
    std::string problems;
    while (check.executeStep()) {
        const auto line = check.getColumn(0).getString();
        if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
    }
    if (!problems.empty()) {
        throw StartupError(path + ": database is damaged (" + problems + ")");
    }
}

}  // namespace

SQLite::Database open_database(const std::string& path, Durability durability) {
    // Process-wide and only possible before SQLite initialises: memory
    // statistics take a global mutex on every allocation, and nothing reads
    // them. Failing (SQLite already initialised by someone else) is harmless.
    static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    (void)memstatus_off;
    try {
        SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX);
        db.setBusyTimeout(5000);
        // Reading the schema is the first access: "file is not a database"
        // and similar surface here.
        db.exec("PRAGMA schema_version");
        if (path != ":memory:") {
            SQLite::Statement wal(db, "PRAGMA journal_mode=WAL");
            wal.executeStep();
            if (wal.getColumn(0).getString() != "wal") {
                throw StartupError(path + ": cannot switch the database to WAL mode");
            }
            check_integrity(db, path);
        }
        db.exec(durability == Durability::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        db.exec("PRAGMA foreign_keys=ON");
        return db;
    } catch (const SQLite::Exception& e) {
        throw StartupError(path + ": cannot open database: " + e.what());
    }
}

Store::Store(const StoreOptions& options)
    : m_path(options.path),
      m_durability(options.durability),
      m_db(open_database(options.path, options.durability)) {
    migrate(m_db, migrations::all(), m_path);
    if (m_path != ":memory:") {
        // Commits stop syncing by themselves: sync() does it, off the
        // executing thread (see wal_file.hpp). NORMAL still syncs around
        // checkpoints, so the file stays consistent whatever happens.
        m_db.exec("PRAGMA synchronous=NORMAL");
        m_wal = std::make_unique<WalFile>(m_path);
        m_checkpointer = std::make_unique<Checkpointer>(m_path);
        // Replaces SQLite's automatic checkpoints, which ran inside COMMIT.
        sqlite3_wal_hook(m_db.getHandle(), &Store::on_wal_commit, this);
    }
    try {
        SQLite::Statement head(m_db, "SELECT last_seq FROM log_head WHERE id = 1");
        if (!head.executeStep()) throw StartupError(m_path + ": log_head row is missing");
        m_last_seq = static_cast<Seq>(head.getColumn(0).getInt64());
        SQLite::Statement max_seq(m_db, "SELECT COALESCE(MAX(seq), 0) FROM events");
        max_seq.executeStep();
        if (static_cast<Seq>(max_seq.getColumn(0).getInt64()) > m_last_seq) {
            throw StartupError(m_path + ": events table is ahead of log_head; the file was modified outside botbusd");
        }

        m_insert_event = std::make_unique<SQLite::Statement>(
            m_db,
            "INSERT INTO events (seq, ts_us, stream, stream_seq, type, producer, idem_key, payload)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
        m_find_idem = std::make_unique<SQLite::Statement>(
            m_db, "SELECT seq, stream_seq, ts_us, stream FROM events WHERE producer = ? AND idem_key = ?");
        m_find_stream =
            std::make_unique<SQLite::Statement>(m_db, "SELECT last_stream_seq FROM streams WHERE stream = ?");
        m_upsert_stream = std::make_unique<SQLite::Statement>(
            m_db,
            "INSERT INTO streams (stream, last_stream_seq, last_seq) VALUES (?, ?, ?)"
            " ON CONFLICT (stream) DO UPDATE SET last_stream_seq = excluded.last_stream_seq,"
            " last_seq = excluded.last_seq");
        m_update_head = std::make_unique<SQLite::Statement>(m_db, "UPDATE log_head SET last_seq = ? WHERE id = 1");
        m_read_range = std::make_unique<SQLite::Statement>(
            m_db,
            "SELECT seq, ts_us, stream, stream_seq, type, producer, idem_key, payload FROM events"
            " WHERE seq > ? ORDER BY seq LIMIT ?");
        m_projector = std::make_unique<Projector>(m_db);
        m_messages = std::make_unique<MessageQueries>(m_db);
        m_mailboxes = std::make_unique<MailboxQueries>(m_db);
        m_consumers = std::make_unique<ConsumerQueries>(m_db);
    } catch (const SQLite::Exception& e) {
        throw StartupError(m_path + ": unexpected schema: " + e.what());
    }
}

Store::~Store() {
    if (m_wal) sqlite3_wal_hook(m_db.getHandle(), nullptr, nullptr);
}

int Store::on_wal_commit(void* store, sqlite3* db, const char* schema, int frames) {
    auto& self = *static_cast<Store*>(store);
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

void Store::sync() const {
    if (needs_sync()) m_wal->sync();
}

Batch Store::begin() { return Batch(*this); }

Seq Store::stream_seq_of(const std::string& stream) {
    if (const auto it = m_stream_seqs.find(stream); it != m_stream_seqs.end()) return it->second;
    ResetOnExit reset{*m_find_stream};
    m_find_stream->bind(1, stream);
    Seq last = 0;
    if (m_find_stream->executeStep()) last = static_cast<Seq>(m_find_stream->getColumn(0).getInt64());
    m_stream_seqs.emplace(stream, last);
    return last;
}

std::optional<Appended> Store::find_by_idem_key(const std::string& producer, const std::string& key) {
    ResetOnExit reset{*m_find_idem};
    m_find_idem->bind(1, producer);
    m_find_idem->bind(2, key);
    std::optional<Appended> found;
    if (m_find_idem->executeStep()) {
        found = Appended{m_find_idem->getColumn(3).getString(),
                         static_cast<Seq>(m_find_idem->getColumn(0).getInt64()),
                         static_cast<Seq>(m_find_idem->getColumn(1).getInt64()), m_find_idem->getColumn(2).getInt64(),
                         true};
    }
    return found;
}

std::vector<Event> Store::read_range(Seq after, std::size_t limit) {
    auto& s = *m_read_range;
    ResetOnExit reset{s};
    s.bind(1, static_cast<std::int64_t>(after));
    s.bind(2, static_cast<std::int64_t>(limit));
    std::vector<Event> events;
    while (s.executeStep()) {
        Event e;
        e.seq = static_cast<Seq>(s.getColumn(0).getInt64());
        e.ts_us = s.getColumn(1).getInt64();
        e.stream = s.getColumn(2).getString();
        e.stream_seq = static_cast<Seq>(s.getColumn(3).getInt64());
        e.type = s.getColumn(4).getString();
        e.producer = s.getColumn(5).getString();
        if (!s.getColumn(6).isNull()) e.idem_key = s.getColumn(6).getString();
        const auto payload = s.getColumn(7);
        e.payload.assign(static_cast<const char*>(payload.getBlob()), static_cast<std::size_t>(payload.getBytes()));
        events.push_back(std::move(e));
    }
    return events;
}

LogStats Store::stats() {
    LogStats stats;
    stats.last_seq = m_last_seq;
    auto count = [this](const char* sql) {
        SQLite::Statement s(m_db, sql);
        s.executeStep();
        return s.getColumn(0).getInt64();
    };
    stats.event_count = count("SELECT COUNT(*) FROM events");
    stats.channel_count = count("SELECT COUNT(*) FROM bot_channels");
    stats.subscription_count = count("SELECT COUNT(*) FROM bot_subscriptions");
    // Channel streams hold only message.published and mailbox streams only
    // message.sent: counting index ranges avoids reading the events.
    stats.message_count = count(
        "SELECT COUNT(*) FROM events WHERE (stream >= 'ch/' AND stream < 'ch0') OR (stream >= 'dm/' AND stream < 'dm0')");
    stats.db_bytes = count("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()");
    return stats;
}

Batch::Batch(Store& store) : m_store(&store), m_last_seq(store.m_last_seq) {
    if (store.m_batch_open) throw std::logic_error("botbus::store: a batch is already open");
    store.m_db.exec("BEGIN IMMEDIATE");
    store.m_batch_open = true;
}

Batch::Batch(Batch&& other) noexcept
    : m_store(other.m_store),
      m_open(other.m_open),
      m_last_seq(other.m_last_seq),
      m_stream_heads(std::move(other.m_stream_heads)),
      m_events(std::move(other.m_events)) {
    other.m_open = false;
}

Batch::~Batch() { rollback(); }

void Batch::rollback() noexcept {
    if (!m_open) return;
    m_open = false;
    m_store->m_batch_open = false;
    // The committed seq caches never saw this batch's seqs; channels it
    // created may be remembered as existing.
    m_store->m_messages->forget_channels();
    try {
        m_store->m_db.exec("ROLLBACK");
    } catch (...) {  // SQLite rolls back by itself when a COMMIT fails
    }
}

Appended Batch::append(EventDraft draft) {
    if (!m_open) throw std::logic_error("botbus::store: append on a closed batch");
    try {
        return append_open(std::move(draft));
    } catch (...) {
        // The event row may be written while the head and the projections
        // are not: committing the rest would corrupt the log.
        rollback();
        throw;
    }
}

Appended Batch::append_open(EventDraft draft) {
    Store& s = *m_store;
    if (draft.idem_key) {
        if (auto first = s.find_by_idem_key(draft.producer, *draft.idem_key)) return *first;
    }

    auto [it, inserted] = m_stream_heads.try_emplace(draft.stream);
    if (inserted) it->second.stream_seq = s.stream_seq_of(draft.stream);
    Event event;
    event.seq = m_last_seq + 1;
    event.stream_seq = it->second.stream_seq + 1;
    event.ts_us = now_us();
    event.stream = std::move(draft.stream);
    event.type = std::move(draft.type);
    event.producer = std::move(draft.producer);
    event.idem_key = std::move(draft.idem_key);
    event.payload = std::move(draft.payload);

    auto& insert = *s.m_insert_event;
    insert.bind(1, static_cast<std::int64_t>(event.seq));
    insert.bind(2, event.ts_us);
    insert.bindNoCopy(3, event.stream);
    insert.bind(4, static_cast<std::int64_t>(event.stream_seq));
    insert.bindNoCopy(5, event.type);
    insert.bindNoCopy(6, event.producer);
    if (event.idem_key) {
        insert.bindNoCopy(7, *event.idem_key);
    } else {
        insert.bind(7);
    }
    insert.bindNoCopy(8, event.payload.data(), static_cast<int>(event.payload.size()));
    exec_and_reset(insert);

    s.m_projector->apply(event);
    if (event.type == event_type::k_channel_deleted) s.m_messages->forget_channels();

    m_last_seq = event.seq;
    it->second = StreamHead{event.stream_seq, event.seq};
    const Appended appended{event.stream, event.seq, event.stream_seq, event.ts_us, false};
    m_events.push_back(std::move(event));
    return appended;
}

std::optional<Appended> Batch::find_idempotent(const std::string& producer, const std::string& key) {
    return m_store->find_by_idem_key(producer, key);
}

void Batch::commit() {
    commit_unsynced();
    m_store->sync();
}

void Batch::commit_unsynced() {
    if (!m_open) throw std::logic_error("botbus::store: commit on a closed batch");
    Store& s = *m_store;
    try {
        for (const auto& [stream, head] : m_stream_heads) {
            if (head.seq == 0) continue;  // only looked up
            auto& upsert = *s.m_upsert_stream;
            upsert.bindNoCopy(1, stream);
            upsert.bind(2, static_cast<std::int64_t>(head.stream_seq));
            upsert.bind(3, static_cast<std::int64_t>(head.seq));
            exec_and_reset(upsert);
        }
        if (m_last_seq != s.m_last_seq) {
            s.m_update_head->bind(1, static_cast<std::int64_t>(m_last_seq));
            exec_and_reset(*s.m_update_head);
            s.m_projector->record_position(m_last_seq);
        }
        s.m_db.exec("COMMIT");
    } catch (...) {
        rollback();
        throw;
    }
    m_open = false;
    s.m_batch_open = false;
    s.m_last_seq = m_last_seq;
    for (auto& [stream, head] : m_stream_heads) s.m_stream_seqs[stream] = head.stream_seq;
}

}  // namespace botbus::store
