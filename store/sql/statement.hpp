// A prepared statement on a sql::Connection (connection.hpp), with the calls
// SQLiteCpp's Statement has, so the store's code reads the same on either
// engine: bind by 1-based index, executeStep() through the rows,
// getColumn(i) for a 0-based column, exec() for writes, reset().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "store/sql/connection.hpp"

namespace botbus::store::sql {

class Column {
public:
    Column(const StatementImpl& statement, int index) : m_statement(&statement), m_index(index) {}
    bool isNull() const { return m_statement->is_null(m_index); }
    std::int64_t getInt64() const { return m_statement->int64(m_index); }
    int getInt() const { return static_cast<int>(m_statement->int64(m_index)); }
    std::string getString() const { return std::string(m_statement->bytes(m_index)); }
    std::string_view getView() const { return m_statement->bytes(m_index); }
    const void* getBlob() const { return m_statement->bytes(m_index).data(); }
    int getBytes() const { return static_cast<int>(m_statement->bytes(m_index).size()); }
    StatementImpl::Kind getKind() const { return m_statement->kind(m_index); }

private:
    const StatementImpl* m_statement;
    int m_index;
};

class Statement {
public:
    Statement(Connection& connection, std::string_view sql) : m_impl(connection.prepare(sql)) {}

    void bind(int index, std::int64_t value) { m_impl->bind_int64(index, value); }
    void bind(int index, int value) { m_impl->bind_int64(index, value); }
    void bind(int index, std::uint32_t value) { m_impl->bind_int64(index, value); }
    void bind(int index, const std::string& value) { m_impl->bind_text(index, value, true); }
    void bind(int index, std::string_view value) { m_impl->bind_text(index, value, true); }
    void bind(int index, const char* value) { m_impl->bind_text(index, value, true); }
    void bind(int index, const void* data, int size) {
        m_impl->bind_blob(index, data, static_cast<std::size_t>(size), true);
    }
    void bind(int index) { m_impl->bind_null(index); }
    // The value must stay put until the statement is stepped or executed.
    void bindNoCopy(int index, const std::string& value) { m_impl->bind_text(index, value, false); }
    void bindNoCopy(int index, const char* value) { m_impl->bind_text(index, value, false); }
    void bindNoCopy(int index, const void* data, int size) {
        m_impl->bind_blob(index, data, static_cast<std::size_t>(size), false);
    }

    bool executeStep() { return m_impl->step(); }
    int exec() { return m_impl->exec(); }
    void send() { m_impl->send(); }
    void reset() { m_impl->reset(); }
    Column getColumn(int index) const { return Column(*m_impl, index); }
    // Known once the statement has run (its first executeStep).
    int getColumnCount() const { return m_impl->column_count(); }
    std::string getColumnName(int index) const { return m_impl->column_name(index); }

private:
    std::unique_ptr<StatementImpl> m_impl;
};

}  // namespace botbus::store::sql
