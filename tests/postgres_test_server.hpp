// The PostgreSQL server the test script starts (scripts/postgres.sh): its
// connection string is in BOTBUS_TEST_POSTGRES. Each test gets a schema of
// its own on it, so tests never see each other's rows and need no cleanup
// beyond the server's.
//
// Without the variable the PostgreSQL tests skip, unless
// BOTBUS_REQUIRE_POSTGRES=1 (set by scripts/test.sh), when they fail: the
// suite the README runs must never pass by skipping them.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace botbus::testing {

inline std::optional<std::string> postgres_server() {
    const char* conninfo = std::getenv("BOTBUS_TEST_POSTGRES");
    if (conninfo == nullptr || *conninfo == '\0') return std::nullopt;
    return std::string(conninfo);
}

inline bool postgres_required() {
    const char* required = std::getenv("BOTBUS_REQUIRE_POSTGRES");
    return required != nullptr && std::string(required) == "1";
}

// Runs one SQL command (a test's own, never a request's) on a connection of
// its own; throws with the server's message when it fails.
inline void exec_sql(const std::string& conninfo, const std::string& sql) {
    PGconn* conn = PQconnectdb(conninfo.c_str());
    if (PQstatus(conn) != CONNECTION_OK) {
        const std::string message = PQerrorMessage(conn);
        PQfinish(conn);
        throw std::runtime_error("cannot reach the test PostgreSQL server: " + message);
    }
    PGresult* result = PQexec(conn, sql.c_str());
    const auto status = PQresultStatus(result);
    const std::string message = PQerrorMessage(conn);
    PQclear(result);
    PQfinish(conn);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) throw std::runtime_error(sql + ": " + message);
}

// A schema on the test server (created if missing); the URI (search_path set
// to it) is what a store or a daemon is given.
inline std::string postgres_schema(const std::string& name) {
    const auto server = postgres_server();
    if (!server) throw std::logic_error("no BOTBUS_TEST_POSTGRES");
    exec_sql(*server, "CREATE SCHEMA IF NOT EXISTS " + name);
    return *server + (server->find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name;
}

// A schema no other test uses.
inline std::string fresh_postgres_schema() {
    static std::atomic<int> counter{0};
    return postgres_schema("t" + std::to_string(::getpid()) + "_" + std::to_string(counter.fetch_add(1)));
}

}  // namespace botbus::testing

// Skips the test without a server (fails instead when one is required).
#define BOTBUS_NEEDS_POSTGRES()                                                                \
    do {                                                                                       \
        if (!::botbus::testing::postgres_server()) {                                           \
            if (::botbus::testing::postgres_required()) {                                      \
                FAIL() << "BOTBUS_REQUIRE_POSTGRES=1 but BOTBUS_TEST_POSTGRES is not set";     \
            }                                                                                  \
            GTEST_SKIP() << "no PostgreSQL server (BOTBUS_TEST_POSTGRES; scripts/postgres.sh)"; \
        }                                                                                      \
    } while (false)
