#include "store/sqlite/sqlite_connection.hpp"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

namespace botbus::store::sql {
namespace {

class SqliteStatement final : public StatementImpl {
public:
    SqliteStatement(sqlite3* db, std::string_view sql) : m_db(db) {
        const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                          &m_statement, nullptr);
        if (rc != SQLITE_OK) throw SQLite::Exception(db, rc);
    }
    ~SqliteStatement() override { sqlite3_finalize(m_statement); }

    void bind_int64(int index, std::int64_t value) override {
        check(sqlite3_bind_int64(m_statement, index, value));
    }
    void bind_text(int index, std::string_view value, bool copy) override {
        check(sqlite3_bind_text(m_statement, index, value.data(), static_cast<int>(value.size()),
                                copy ? SQLITE_TRANSIENT : SQLITE_STATIC));
    }
    void bind_blob(int index, const void* data, std::size_t size, bool copy) override {
        check(sqlite3_bind_blob(m_statement, index, data, static_cast<int>(size), copy ? SQLITE_TRANSIENT : SQLITE_STATIC));
    }
    void bind_null(int index) override { check(sqlite3_bind_null(m_statement, index)); }

    bool step() override {
        if (m_done) throw SQLite::Exception("Statement needs to be reseted.");
        const int rc = sqlite3_step(m_statement);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) {
            m_done = true;
            return false;
        }
        throw SQLite::Exception(m_db, rc);
    }
    int exec() override {
        const int rc = sqlite3_step(m_statement);
        if (rc == SQLITE_DONE) {
            m_done = true;
            return sqlite3_changes(m_db);
        }
        if (rc == SQLITE_ROW) throw SQLite::Exception("exec() does not expect results. Use executeStep.");
        throw SQLite::Exception(m_db, rc);
    }
    void reset() override {
        m_done = false;
        const int rc = sqlite3_reset(m_statement);
        if (rc != SQLITE_OK) throw SQLite::Exception(m_db, rc);
    }

    int column_count() const override { return sqlite3_column_count(m_statement); }
    std::string column_name(int column) const override {
        const char* name = sqlite3_column_name(m_statement, column);
        return name ? name : "";
    }
    bool is_null(int column) const override { return sqlite3_column_type(m_statement, column) == SQLITE_NULL; }
    std::int64_t int64(int column) const override { return sqlite3_column_int64(m_statement, column); }
    std::string_view bytes(int column) const override {
        // The pointer first, then the size: SQLite's order for a value it may convert.
        const auto* data = sqlite3_column_blob(m_statement, column);
        const auto size = static_cast<std::size_t>(sqlite3_column_bytes(m_statement, column));
        return data == nullptr ? std::string_view() : std::string_view(static_cast<const char*>(data), size);
    }
    Kind kind(int column) const override {
        switch (sqlite3_column_type(m_statement, column)) {
        case SQLITE_INTEGER: return Kind::integer;
        case SQLITE_TEXT: return Kind::text;
        case SQLITE_BLOB: return Kind::blob;
        case SQLITE_NULL: return Kind::null;
        default: return Kind::other;
        }
    }

private:
    void check(int rc) const {
        if (rc != SQLITE_OK) throw SQLite::Exception(m_db, rc);
    }

    sqlite3* m_db;
    sqlite3_stmt* m_statement = nullptr;
    bool m_done = false;
};

}  // namespace

std::unique_ptr<StatementImpl> SqliteConnection::prepare(std::string_view sql) {
    return std::make_unique<SqliteStatement>(m_db.getHandle(), sql);
}

}  // namespace botbus::store::sql
