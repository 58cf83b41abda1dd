#include "store/postgresql/postgres_connection.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <optional>
#include <utility>
#include <vector>

namespace botbus::store::sql {
namespace {

// ~30 bytes of replies each (BindComplete, CommandComplete): 256 stay far
// below any socket buffer.
constexpr int k_max_unread = 256;
constexpr unsigned k_bytea_oid = 17;
constexpr unsigned k_bool_oid = 16;
constexpr unsigned k_text_oids[] = {25, 1043, 1042, 19};  // text, varchar, bpchar, name
constexpr unsigned k_integer_oids[] = {20, 21, 23, 1700};  // int8, int2, int4, numeric

Error result_error(PGconn* conn, const PGresult* result) {
    const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
    std::string message = result ? PQresultErrorMessage(result) : "";
    if (message.empty()) message = PQerrorMessage(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return Error("postgresql: " + message, state ? state : "");
}

[[noreturn]] void throw_result_error(PGconn* conn, const PGresult* result) { throw result_error(conn, result); }

struct ResultDeleter {
    void operator()(PGresult* result) const { PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class PostgresStatement final : public StatementImpl {
public:
    PostgresStatement(PostgresConnection& connection, std::string_view sql) : m_connection(connection) {
        int parameters = 0;
        std::vector<bool> used;
        m_sql = to_postgres_placeholders(sql, parameters, &used);
        m_values.resize(static_cast<std::size_t>(parameters));
        m_pointers.resize(m_values.size(), nullptr);
        m_lengths.resize(m_values.size(), 0);
        m_formats.resize(m_values.size(), 0);
        // Prepared now, so a statement the server cannot plan fails where it
        // is made (at start-up, for the store's statements).
        m_name = &m_connection.prepared_name(m_sql, used);
    }

    void bind_int64(int index, std::int64_t value) override {
        auto& slot = param(index);
        char buffer[24];
        const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
        slot.assign(buffer, end);
        set(index, slot.data(), slot.size(), 0);
    }
    void bind_text(int index, std::string_view value, bool /*copy*/) override {
        // libpq takes NUL-terminated text: always copied.
        auto& slot = param(index);
        slot.assign(value);
        set(index, slot.c_str(), slot.size(), 0);
    }
    void bind_blob(int index, const void* data, std::size_t size, bool copy) override {
        auto& slot = param(index);
        if (copy) {
            slot.assign(static_cast<const char*>(data), size);
            set(index, slot.data(), size, 1);
        } else {
            set(index, static_cast<const char*>(data), size, 1);
        }
    }
    void bind_null(int index) override {
        param(index);
        const auto i = static_cast<std::size_t>(index - 1);
        m_pointers[i] = nullptr;
        m_lengths[i] = 0;
        m_formats[i] = 0;
    }

    bool step() override {
        if (!m_result) run();
        ++m_row;
        m_decoded.clear();
        return m_row < PQntuples(m_result.get());
    }
    void send() override {
        m_connection.send_prepared(*m_name, static_cast<int>(m_values.size()), m_pointers.data(), m_lengths.data(),
                                   m_formats.data());
    }
    int exec() override {
        run();
        const char* tuples = PQcmdTuples(m_result.get());
        int changed = 0;
        std::from_chars(tuples, tuples + std::char_traits<char>::length(tuples), changed);
        return changed;
    }
    void reset() override {
        m_result.reset();
        m_row = -1;
        m_decoded.clear();
    }

    int column_count() const override { return m_result ? PQnfields(m_result.get()) : 0; }
    std::string column_name(int column) const override {
        const char* name = m_result ? PQfname(m_result.get(), column) : nullptr;
        return name ? name : "";
    }
    bool is_null(int column) const override { return PQgetisnull(m_result.get(), m_row, column) != 0; }
    std::int64_t int64(int column) const override {
        if (is_null(column)) return 0;
        const char* text = PQgetvalue(m_result.get(), m_row, column);
        const auto length = static_cast<std::size_t>(PQgetlength(m_result.get(), m_row, column));
        if (PQftype(m_result.get(), column) == k_bool_oid) return text[0] == 't' ? 1 : 0;
        std::int64_t value = 0;
        std::from_chars(text, text + length, value);
        return value;
    }
    std::string_view bytes(int column) const override {
        if (is_null(column)) return {};
        const char* text = PQgetvalue(m_result.get(), m_row, column);
        const auto length = static_cast<std::size_t>(PQgetlength(m_result.get(), m_row, column));
        if (PQftype(m_result.get(), column) != k_bytea_oid) return {text, length};
        auto& decoded = m_decoded[column];
        if (decoded.empty() && length > 2) {
            // bytea's text form: \x and two hex digits a byte.
            decoded.resize((length - 2) / 2);
            for (std::size_t i = 0; i < decoded.size(); ++i) {
                decoded[i] = static_cast<char>(hex_value(text[2 + 2 * i]) * 16 + hex_value(text[3 + 2 * i]));
            }
        }
        return decoded;
    }
    Kind kind(int column) const override {
        if (is_null(column)) return Kind::null;
        const auto type = PQftype(m_result.get(), column);
        if (type == k_bytea_oid) return Kind::blob;
        for (const auto oid : k_integer_oids) {
            if (type == oid) return Kind::integer;
        }
        if (type == k_bool_oid) return Kind::integer;
        for (const auto oid : k_text_oids) {
            if (type == oid) return Kind::text;
        }
        return Kind::other;
    }

private:
    std::string& param(int index) {
        if (index < 1 || static_cast<std::size_t>(index) > m_values.size()) {
            throw Error("postgresql: parameter " + std::to_string(index) + " is out of range for: " + m_sql, "");
        }
        return m_values[static_cast<std::size_t>(index - 1)];
    }
    void set(int index, const char* data, std::size_t size, int format) {
        const auto i = static_cast<std::size_t>(index - 1);
        m_pointers[i] = data;
        m_lengths[i] = static_cast<int>(size);
        m_formats[i] = format;
    }
    void run() {
        m_row = -1;
        m_result.reset(m_connection.run_prepared(*m_name, static_cast<int>(m_values.size()), m_pointers.data(),
                                                 m_lengths.data(), m_formats.data()));
    }

    PostgresConnection& m_connection;
    std::string m_sql;
    const std::string* m_name = nullptr;  // in the connection's map, whose nodes stay put
    std::vector<std::string> m_values;
    std::vector<const char*> m_pointers;
    std::vector<int> m_lengths;
    std::vector<int> m_formats;
    ResultPtr m_result;
    int m_row = -1;
    mutable std::unordered_map<int, std::string> m_decoded;
};

}  // namespace

std::string to_postgres_placeholders(std::string_view sql, int& parameters, std::vector<bool>* used) {
    std::string out;
    out.reserve(sql.size() + 16);
    parameters = 0;
    if (used) used->clear();
    char quote = 0;
    for (std::size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (quote) {
            out += c;
            if (c == quote) quote = 0;  // a doubled quote reopens at once: same result
            continue;
        }
        if (c == '\'' || c == '"') {
            quote = c;
            out += c;
            continue;
        }
        if (c != '?') {
            out += c;
            continue;
        }
        std::size_t end = i + 1;
        while (end < sql.size() && sql[end] >= '0' && sql[end] <= '9') ++end;
        int number = 0;
        if (end > i + 1) {
            std::from_chars(sql.data() + i + 1, sql.data() + end, number);
        } else {
            number = parameters + 1;  // SQLite: one more than the largest so far
        }
        parameters = std::max(parameters, number);
        if (used) {
            if (used->size() < static_cast<std::size_t>(number)) used->resize(static_cast<std::size_t>(number), false);
            (*used)[static_cast<std::size_t>(number - 1)] = true;
        }
        out += '$';
        out += std::to_string(number);
        i = end - 1;
    }
    return out;
}

PostgresConnection::PostgresConnection(const std::string& conninfo) : m_conn(PQconnectdb(conninfo.c_str())) {
    if (PQstatus(m_conn) != CONNECTION_OK) {
        std::string message = m_conn ? PQerrorMessage(m_conn) : "out of memory";
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
        PQfinish(m_conn);
        m_conn = nullptr;
        throw Error("postgresql: cannot connect: " + message, "");
    }
    // Comparisons and sorting of text as bytes, whatever the database's
    // locale says, is done per column (COLLATE "C" in the migrations); the
    // session's notices (a table that exists already) are not for the log.
    PQsetNoticeProcessor(m_conn, [](void*, const char*) {}, nullptr);
}

PostgresConnection::~PostgresConnection() { PQfinish(m_conn); }

std::optional<std::string> PostgresConnection::broken() const {
    if (PQstatus(m_conn) == CONNECTION_OK) return std::nullopt;
    std::string message = PQerrorMessage(m_conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    return message.empty() ? "the connection to the server is closed" : message;
}

void PostgresConnection::exec(const std::string& sql) {
    settle();  // the simple protocol (several statements in one string) is not for pipelines
    ResultPtr result(PQexec(m_conn, sql.c_str()));
    const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw_result_error(m_conn, result.get());
}

void PostgresConnection::enter_pipeline() {
    if (m_unread > 0) return;
    if (PQenterPipelineMode(m_conn) != 1) throw_result_error(m_conn, nullptr);
}

void PostgresConnection::fail_send() {
    // libpq could not queue it (the connection is gone): what was queued
    // before is read out, and the transaction counts as lost.
    m_sent_failed = true;
    const auto failure = result_error(m_conn, nullptr);
    try {
        settle();
    } catch (const Error&) {  // the send's own failure says it
    }
    throw failure;
}

void PostgresConnection::queue_text(const std::string& sql) {
    enter_pipeline();
    if (PQsendQueryParams(m_conn, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) fail_send();
    ++m_unread;
}

void PostgresConnection::queue_prepared(const std::string& name, int count, const char* const* values,
                                        const int* lengths, const int* formats) {
    enter_pipeline();
    if (PQsendQueryPrepared(m_conn, name.c_str(), count, values, lengths, formats, 0) != 1) fail_send();
    ++m_unread;
}

std::string PostgresConnection::run_command(const std::string& sql) {
    queue_text(sql);
    const ResultPtr result(finish_pipeline(true));
    return PQcmdStatus(result.get());
}

void PostgresConnection::send(const std::string& sql) {
    queue_text(sql);
    if (m_unread >= k_max_unread) settle();
}

void PostgresConnection::send_prepared(const std::string& name, int count, const char* const* values,
                                       const int* lengths, const int* formats) {
    queue_prepared(name, count, values, lengths, formats);
    if (m_unread >= k_max_unread) settle();
}

pg_result* PostgresConnection::run_prepared(const std::string& name, int count, const char* const* values,
                                            const int* lengths, const int* formats) {
    if (m_unread == 0) {
        ResultPtr result(PQexecPrepared(m_conn, name.c_str(), count, values, lengths, formats, 0));
        const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) throw_result_error(m_conn, result.get());
        return result.release();
    }
    queue_prepared(name, count, values, lengths, formats);
    return finish_pipeline(true);
}

void PostgresConnection::settle() {
    if (m_unread == 0) return;
    PQclear(finish_pipeline(false));
}

pg_result* PostgresConnection::finish_pipeline(bool keep_last) {
    const int statements = std::exchange(m_unread, 0);
    std::optional<Error> failure;
    bool failure_was_sent = false;  // rather than the statement waited for
    ResultPtr last;
    if (PQpipelineSync(m_conn) != 1) {
        failure = result_error(m_conn, nullptr);
        failure_was_sent = true;
    } else {
        // Each statement's results end with a null; the sync's marker ends
        // the pipeline. A broken connection ends it early (nulls only).
        int statement = 0;
        int nulls_in_a_row = 0;
        for (;;) {
            ResultPtr result(PQgetResult(m_conn));
            if (!result) {
                ++statement;
                if (++nulls_in_a_row > 1 && PQstatus(m_conn) != CONNECTION_OK) break;
                if (statement > statements + 1) break;
                continue;
            }
            nulls_in_a_row = 0;
            const auto status = PQresultStatus(result.get());
            if (status == PGRES_PIPELINE_SYNC) break;
            if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR) {
                if (!failure) {
                    failure = result_error(m_conn, result.get());
                    failure_was_sent = !keep_last || statement < statements - 1;
                }
            } else if (keep_last && statement == statements - 1 && status != PGRES_PIPELINE_ABORTED) {
                last = std::move(result);
            }
        }
    }
    PQexitPipelineMode(m_conn);  // fails only on a broken connection, which the next call reports
    if (!failure && PQstatus(m_conn) != CONNECTION_OK) {
        failure = result_error(m_conn, nullptr);
        failure_was_sent = true;
    }
    if (failure) {
        if (failure_was_sent) m_sent_failed = true;
        throw *failure;
    }
    if (keep_last && !last) throw Error("postgresql: no result for a statement sent in a pipeline", "");
    return last.release();
}

std::unique_ptr<StatementImpl> PostgresConnection::prepare(std::string_view sql) {
    return std::make_unique<PostgresStatement>(*this, sql);
}

const std::string& PostgresConnection::prepared_name(const std::string& sql, const std::vector<bool>& used) {
    if (const auto it = m_prepared.find(sql); it != m_prepared.end()) return it->second;
    settle();  // PQprepare waits, which pipeline mode forbids
    auto name = "botbus_" + std::to_string(m_prepared.size() + 1);
    // The server infers each parameter's type from where it is used; one the
    // SQL does not use (a statement shared by callers that bind more) is text.
    constexpr Oid k_text = 25;
    std::vector<Oid> types(used.size(), 0);
    for (std::size_t i = 0; i < used.size(); ++i) {
        if (!used[i]) types[i] = k_text;
    }
    ResultPtr result(PQprepare(m_conn, name.c_str(), sql.c_str(), static_cast<int>(types.size()), types.data()));
    if (!result || PQresultStatus(result.get()) != PGRES_COMMAND_OK) {
        try {
            throw_result_error(m_conn, result.get());
        } catch (const Error& e) {
            throw Error(std::string(e.what()) + " (preparing: " + sql + ")", e.sqlstate());
        }
    }
    return m_prepared.emplace(sql, std::move(name)).first->second;
}

int PostgresConnection::backend_pid() const { return PQbackendPID(m_conn); }

}  // namespace botbus::store::sql
