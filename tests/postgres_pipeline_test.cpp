// The PostgreSQL connection's pipeline against a real server: writes sent
// without waiting run in order before the next statement that waits; a
// failure among them is reported there (or at settle) and marks the
// transaction lost, while a waited statement's own failure does not; any
// number of sends stay bounded; and the pipeline leaves no trace for the
// simple protocol after it.
#include <gtest/gtest.h>

#include <string>

#include "postgres_test_server.hpp"
#include "store/postgresql/postgres_connection.hpp"
#include "store/sql/statement.hpp"

namespace sql = botbus::store::sql;

namespace {

class PostgresPipeline : public ::testing::Test {
protected:
    void SetUp() override {
        BOTBUS_NEEDS_POSTGRES();
        m_db.emplace(botbus::testing::fresh_postgres_schema());
        m_db->exec("CREATE TABLE t (k bigint PRIMARY KEY, v text)");
    }
    std::int64_t count() {
        sql::Statement c(*m_db, "SELECT COUNT(*) FROM t");
        EXPECT_TRUE(c.executeStep());
        return c.getColumn(0).getInt64();
    }
    std::optional<sql::PostgresConnection> m_db;
};

TEST_F(PostgresPipeline, SentWritesHaveRunInOrderWhenTheNextQueryAnswers) {
    sql::Statement insert(*m_db, "INSERT INTO t (k, v) VALUES (?, ?)");
    sql::Statement update(*m_db, "UPDATE t SET v = ? WHERE k = ?");
    m_db->send("BEGIN");
    for (int k = 1; k <= 1000; ++k) {  // beyond the unread bound, several times
        insert.bind(1, k);
        insert.bind(2, "first");
        insert.send();
        insert.reset();
    }
    update.bind(1, "second");
    update.bind(2, 1000);
    update.send();
    update.reset();
    sql::Statement last(*m_db, "SELECT v FROM t WHERE k = 1000");
    ASSERT_TRUE(last.executeStep());
    EXPECT_EQ(last.getColumn(0).getString(), "second");  // the update ran after its insert
    EXPECT_EQ(count(), 1000);
    EXPECT_EQ(m_db->run_command("COMMIT"), "COMMIT");
    EXPECT_FALSE(m_db->sent_failed());
    m_db->exec("SELECT 1; SELECT 2");  // the simple protocol works again after the pipeline
}

TEST_F(PostgresPipeline, ASentWriteThatFailsIsReportedByTheNextWaitAndLosesTheTransaction) {
    sql::Statement insert(*m_db, "INSERT INTO t (k, v) VALUES (?, 'x')");
    sql::Statement probe(*m_db, "SELECT COUNT(*) FROM t");  // prepared before: preparing waits too
    m_db->send("BEGIN");
    insert.bind(1, 1);
    insert.send();
    insert.reset();
    insert.send();  // the same key again: fails on the server, not here
    insert.reset();
    insert.bind(1, 2);
    insert.send();
    insert.reset();
    try {
        probe.executeStep();
        FAIL() << "the duplicate key was not reported";
    } catch (const sql::Error& e) {
        EXPECT_EQ(e.sqlstate(), "23505") << e.what();
    }
    EXPECT_TRUE(m_db->sent_failed());
    // What follows ran in an aborted transaction; COMMIT there is a ROLLBACK.
    EXPECT_EQ(m_db->run_command("COMMIT"), "ROLLBACK");
    EXPECT_EQ(count(), 0);
    m_db->forget_sent_failure();
    EXPECT_FALSE(m_db->sent_failed());
}

TEST_F(PostgresPipeline, AWaitedStatementsOwnFailureLeavesWhatWasSentBeforeIt) {
    sql::Statement insert(*m_db, "INSERT INTO t (k, v) VALUES (?, 'x')");
    m_db->send("BEGIN");
    insert.bind(1, 1);
    insert.send();
    insert.reset();
    m_db->send("SAVEPOINT request");
    sql::Statement bad(*m_db, "SELECT 1 / (k - 1) FROM t WHERE k = 1");
    EXPECT_THROW(bad.executeStep(), sql::Error);
    bad.reset();
    EXPECT_FALSE(m_db->sent_failed());  // the failure was the waited statement's own
    m_db->exec("ROLLBACK TO SAVEPOINT request");
    EXPECT_EQ(m_db->run_command("COMMIT"), "COMMIT");
    EXPECT_EQ(count(), 1);
}

TEST_F(PostgresPipeline, SettleReportsAFailureWithNothingToWaitFor) {
    m_db->send("BEGIN");
    m_db->send("INSERT INTO t (k, v) VALUES (1, 'x')");
    m_db->send("INSERT INTO t (k, v) VALUES (1, 'x')");
    EXPECT_THROW(m_db->settle(), sql::Error);
    EXPECT_TRUE(m_db->sent_failed());
    m_db->exec("ROLLBACK");
    EXPECT_EQ(count(), 0);
    m_db->settle();  // nothing sent: nothing to do
}

}  // namespace
