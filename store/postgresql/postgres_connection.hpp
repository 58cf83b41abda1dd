// The SQL seam (connection.hpp) on a PostgreSQL server, through libpq.
// Statements are prepared on the server once per distinct SQL text and
// connection (the first time one runs; the name is kept for the session),
// parameters are sent as text or, for blobs, binary, and results come back as
// text (bytea in its hex form, decoded when read). A statement runs when it is
// first stepped and holds its whole result: every query the store makes is
// bounded by a LIMIT or a key.
// Errors throw sql::Error with the server's message and SQLSTATE. A lost
// connection is an error like any other; the store decides what to do.
// Writes whose outcome nobody reads (send) go out in libpq's pipeline mode
// without waiting; the next statement that needs a result travels with them
// and one round trip returns them all. A batch of appends costs a round trip
// per batch, not one per statement (docs/PERFORMANCE.md).
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/sql/connection.hpp"

struct pg_conn;
struct pg_result;

namespace botbus::store::sql {

class PostgresConnection final : public Connection {
public:
    // Connects (a libpq connection string or postgresql:// URI); throws
    // sql::Error naming the server's complaint when it cannot.
    explicit PostgresConnection(const std::string& conninfo);
    ~PostgresConnection() override;

    Dialect dialect() const override { return Dialect::postgresql; }
    void exec(const std::string& sql) override;
    void send(const std::string& sql) override;
    std::unique_ptr<StatementImpl> prepare(std::string_view sql) override;

    // A prepared statement into the pipeline, its outcome not read.
    void send_prepared(const std::string& name, int count, const char* const* values, const int* lengths,
                       const int* formats);
    // Runs a prepared statement behind whatever was sent before it, in the
    // same round trip: its result (the caller frees it), or sql::Error with
    // the first failure among them.
    pg_result* run_prepared(const std::string& name, int count, const char* const* values, const int* lengths,
                            const int* formats);
    // One statement without parameters, behind whatever was sent before it
    // and in the same round trip: its command tag ("COMMIT"), or sql::Error.
    std::string run_command(const std::string& sql);
    // Waits until everything sent has run; throws the first failure.
    void settle();
    // A statement sent without waiting failed (since forget_sent_failure):
    // the transaction it was in is lost as a whole, not to a savepoint,
    // because what failed may be an earlier request's write.
    bool sent_failed() const { return m_sent_failed; }
    void forget_sent_failure() { m_sent_failed = false; }

    // The server-side name of the statement prepared for `sql` (already in
    // $N form; `used[i]`: $i+1 appears in it), preparing it the first time.
    const std::string& prepared_name(const std::string& sql, const std::vector<bool>& used);
    pg_conn* handle() const { return m_conn; }
    // The server's process id for this session (pg_backend_pid), for logs.
    int backend_pid() const;
    // The server's side of the connection is gone (PQstatus CONNECTION_BAD):
    // libpq's last message, or nullopt while the connection is good.
    std::optional<std::string> broken() const;

private:
    void enter_pipeline();
    // Into the pipeline, unread (m_unread counts it); fail_send if libpq cannot.
    void queue_text(const std::string& sql);
    void queue_prepared(const std::string& name, int count, const char* const* values, const int* lengths,
                        const int* formats);
    [[noreturn]] void fail_send();
    // Syncs the pipeline and reads every result; the last statement's is
    // returned if `keep_last` (and it succeeded). Leaves pipeline mode.
    pg_result* finish_pipeline(bool keep_last);

    pg_conn* m_conn = nullptr;
    // Statements in the pipeline whose results are not read yet. Bounded: a
    // blocking connection that sends without reading could fill both
    // directions' socket buffers, so every k_max_unread it settles.
    int m_unread = 0;
    bool m_sent_failed = false;
    std::unordered_map<std::string, std::string> m_prepared;  // SQL -> statement name
};

// `?` and `?N` placeholders as `$N` (quoted strings and identifiers left as
// they are); `parameters` gets the highest number used, and `used`, if given,
// which numbers appear.
std::string to_postgres_placeholders(std::string_view sql, int& parameters, std::vector<bool>* used = nullptr);

}  // namespace botbus::store::sql
