// The SQL seam (connection.hpp) on an open SQLiteCpp database, which the
// caller owns and keeps open. Statements are sqlite3 statements prepared as
// persistent; errors throw SQLite::Exception, as SQLiteCpp's own do.
#pragma once

#include <SQLiteCpp/Database.h>

#include "store/sql/connection.hpp"

namespace botbus::store::sql {

class SqliteConnection final : public Connection {
public:
    explicit SqliteConnection(SQLite::Database& db) : m_db(db) {}

    Dialect dialect() const override { return Dialect::sqlite; }
    void exec(const std::string& sql) override { m_db.exec(sql); }
    std::unique_ptr<StatementImpl> prepare(std::string_view sql) override;

    SQLite::Database& database() { return m_db; }

private:
    SQLite::Database& m_db;
};

}  // namespace botbus::store::sql
