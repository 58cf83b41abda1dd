// The SQL seam (connection.hpp) on a PostgreSQL server, through libpq.
// Statements are prepared on the server once per distinct SQL text and
// connection (the first time one runs; the name is kept for the session),
// parameters are sent as text or, for blobs, binary, and results come back as
// text (bytea in its hex form, decoded when read). A statement runs when it is
// first stepped and holds its whole result: every query the store makes is
// bounded by a LIMIT or a key.
// Errors throw sql::Error with the server's message and SQLSTATE. A lost
// connection is an error like any other; the store decides what to do.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "store/sql/connection.hpp"

struct pg_conn;

namespace botbus::store::sql {

class PostgresConnection final : public Connection {
public:
    // Connects (a libpq connection string or postgresql:// URI); throws
    // sql::Error naming the server's complaint when it cannot.
    explicit PostgresConnection(const std::string& conninfo);
    ~PostgresConnection() override;

    Dialect dialect() const override { return Dialect::postgresql; }
    void exec(const std::string& sql) override;
    std::unique_ptr<StatementImpl> prepare(std::string_view sql) override;

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
    pg_conn* m_conn = nullptr;
    std::unordered_map<std::string, std::string> m_prepared;  // SQL -> statement name
};

// `?` and `?N` placeholders as `$N` (quoted strings and identifiers left as
// they are); `parameters` gets the highest number used, and `used`, if given,
// which numbers appear.
std::string to_postgres_placeholders(std::string_view sql, int& parameters, std::vector<bool>* used = nullptr);

}  // namespace botbus::store::sql
