// The SQL seam under the store: one connection to a database and the
// statements prepared on it, with the same calls whichever engine runs them
// (SQLite in the process, or a PostgreSQL server). The projections, the
// queries and the migration runner are written once against it; what only
// one engine has (SQLite's WAL and VFS, PostgreSQL's row locks and
// notifications) stays in that engine's store.
//
// SQL text: placeholders are written `?` or `?N` (SQLite's forms; the
// PostgreSQL connection rewrites them to `$N`), and statements use what both
// engines accept (ON CONFLICT, RETURNING, COALESCE, CASE; no two-argument
// MAX). Where they differ, the caller asks dialect().
// Concurrency: a Connection and its statements belong to one thread.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace botbus::store::sql {

enum class Dialect { sqlite, postgresql };

// A statement failed on the server (PostgreSQL). SQLite reports its errors
// as SQLite::Exception, as it always has.
class Error : public std::runtime_error {
public:
    Error(const std::string& message, std::string sqlstate)
        : std::runtime_error(message), m_sqlstate(std::move(sqlstate)) {}
    // The five-character SQLSTATE ("23505": unique violation), or "" when
    // the connection itself failed.
    const std::string& sqlstate() const { return m_sqlstate; }

private:
    std::string m_sqlstate;
};

// What a prepared statement is to its engine; Statement is the handle.
class StatementImpl {
public:
    virtual ~StatementImpl() = default;
    // Parameters are 1-based. Text and blobs are copied unless `copy` is
    // false, when they must outlive the next step or exec.
    virtual void bind_int64(int index, std::int64_t value) = 0;
    virtual void bind_text(int index, std::string_view value, bool copy) = 0;
    virtual void bind_blob(int index, const void* data, std::size_t size, bool copy) = 0;
    virtual void bind_null(int index) = 0;
    // The next row (the statement runs at the first call); false when done.
    virtual bool step() = 0;
    // Runs a statement that returns no rows; the rows it changed.
    virtual int exec() = 0;
    // Runs a write whose outcome nobody reads. An engine may send it and go
    // on without waiting (PostgreSQL queues it in a pipeline): it has run by
    // the time the next statement that waits for a result returns, and if
    // it failed, that statement (or the commit) throws its error.
    virtual void send() { exec(); }
    // Ready to run again; bindings stay.
    virtual void reset() = 0;
    // Columns of the current row, 0-based.
    virtual int column_count() const = 0;
    virtual std::string column_name(int column) const = 0;
    virtual bool is_null(int column) const = 0;
    virtual std::int64_t int64(int column) const = 0;
    // A text or blob column's bytes, valid until the next step or reset.
    virtual std::string_view bytes(int column) const = 0;
    // The column's declared kind: for comparing rows (rebuild).
    enum class Kind { integer, text, blob, null, other };
    virtual Kind kind(int column) const = 0;
};

class Connection {
public:
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    virtual ~Connection() = default;

    virtual Dialect dialect() const = 0;
    // Runs SQL without parameters (one or more statements).
    virtual void exec(const std::string& sql) = 0;
    // One statement without parameters whose outcome nobody reads: as
    // StatementImpl::send.
    virtual void send(const std::string& sql) { exec(sql); }
    virtual std::unique_ptr<StatementImpl> prepare(std::string_view sql) = 0;

protected:
    Connection() = default;
};

}  // namespace botbus::store::sql
