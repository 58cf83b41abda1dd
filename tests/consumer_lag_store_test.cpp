// Unit tests of the index-probe reads (store/sql/stream_positions.hpp) on
// a :memory: store: a mailbox's unsettled count and a durable subscription's
// lag equal a full count after out-of-order settlements, retention and a
// rolled-back request; subscribe's "last N" start equals stepping back N
// messages; and a lag of 20,000 messages reads a few dozen pages, not the
// messages.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/payloads.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/trimmer.hpp"
#include "message_drafts.hpp"

namespace store = botbus::store;
using store::EventDraft;
using store::Seq;

namespace {

class ConsumerLag : public ::testing::Test {
protected:
    store::SqliteStore m_store{{":memory:", store::Durability::full}};

    Seq append(EventDraft draft) {
        auto batch = m_store.begin();
        const auto seq = batch.append(std::move(draft)).seq;
        batch.commit();
        return seq;
    }
    EventDraft published(const std::string& channel, int n) {
        return botbus::testing::published_draft(channel, n);
    }
    EventDraft sent(const std::string& to, int n) {
        return botbus::testing::sent_draft(to, n);
    }
    std::int64_t count(const std::string& sql, const std::string& a, std::int64_t b = 0) {
        SQLite::Statement s(m_store.database(), sql);
        s.bind(1, a);
        if (s.getBindParameterCount() > 1) s.bind(2, b);
        s.executeStep();
        return s.getColumn(0).getInt64();
    }
    // The old full counts, for comparison.
    std::int64_t full_unsettled(const std::string& bot) {
        return count("SELECT COUNT(*) FROM events WHERE stream = 'dm/' || ?1 AND seq > COALESCE((SELECT acked_seq"
                     " FROM bot_mailboxes WHERE bot_id = ?1), 0) AND seq NOT IN (SELECT seq FROM mailbox_settled"
                     " WHERE bot_id = ?1)",
                     bot);
    }
    std::int64_t full_lag(const std::string& bot, const std::string& channel) {
        const auto floor = *m_store.consumers().floor(bot, channel);
        return count("SELECT COUNT(*) FROM events WHERE stream = 'ch/' || ?1 AND seq > ?2", channel,
                     static_cast<std::int64_t>(floor)) -
               count("SELECT COUNT(*) FROM consumer_settled WHERE channel = ?1 AND bot_id = 'bob' AND seq > ?2",
                     channel, static_cast<std::int64_t>(floor));
    }
    Seq stepped_back(const std::string& channel, std::int64_t n) {
        SQLite::Statement s(m_store.database(),
                            "SELECT seq FROM events WHERE stream = 'ch/' || ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2");
        s.bind(1, channel);
        s.bind(2, n - 1);
        return s.executeStep() ? static_cast<Seq>(s.getColumn(0).getInt64()) - 1 : 0;
    }
};

TEST_F(ConsumerLag, UnsettledAndLagEqualAFullCountAfterSettlementsTrimsAndARollback) {
    append({std::string(store::stream::k_consumers), store::EventType::consumer_created, "bob", std::nullopt,
            store::encode_payload(store::ConsumerCreated{"bob", "jobs", 0})});
    std::vector<Seq> jobs;
    std::vector<Seq> mail;
    for (int i = 0; i < 30; ++i) {
        jobs.push_back(append(published("jobs", i)));
        mail.push_back(append(sent("bob", i)));
    }
    EXPECT_EQ(m_store.mailboxes().unsettled_count("bob"), 30);
    EXPECT_EQ(m_store.consumers().consumer("bob", "jobs")->unsettled, 30);

    append({std::string(store::stream::k_mailboxes), store::EventType::mailbox_acked, "bob", std::nullopt,
            store::encode_payload(store::MailboxAcked{mail[4], std::vector<std::uint64_t>{mail[9], mail[20]}})});
    append({std::string(store::stream::k_consumers), store::EventType::consumer_acked, "bob", std::nullopt,
            store::encode_payload(store::ConsumerAcked{"bob", "jobs", jobs[2], std::vector<std::uint64_t>{jobs[3 + 2]}})});
    EXPECT_EQ(m_store.mailboxes().unsettled_count("bob"), 30 - 5 - 2);
    EXPECT_EQ(m_store.mailboxes().unsettled_count("bob"), full_unsettled("bob"));
    EXPECT_EQ(m_store.consumers().consumer("bob", "jobs")->unsettled, full_lag("bob", "jobs"));

    store::Trimmer trimmer(m_store, {0, 10});
    auto batch = m_store.begin();
    trimmer.step(batch, store::now_us());
    batch.commit();
    EXPECT_EQ(m_store.consumers().consumer("bob", "jobs")->unsettled, full_lag("bob", "jobs"));
    EXPECT_EQ(m_store.consumers().consumer("bob", "jobs")->unsettled, 10);
    EXPECT_EQ(m_store.mailboxes().unsettled_count("bob"), full_unsettled("bob"));

    {
        // Inside a batch, its appends count; a request rolled back gives its stream seqs back.
        auto open = m_store.begin();
        open.append(published("jobs", 100));
        open.savepoint();
        open.append(published("jobs", 101));
        EXPECT_EQ(m_store.consumers().consumer("bob", "jobs")->unsettled, 12);
        ASSERT_TRUE(open.rollback_to_savepoint());
        open.append(published("jobs", 102));
        EXPECT_EQ(m_store.consumers().consumer("bob", "jobs")->unsettled, 12);
        open.commit();
    }
    EXPECT_EQ(m_store.consumers().consumer("bob", "jobs")->unsettled, full_lag("bob", "jobs"));
}

TEST_F(ConsumerLag, TheLastNStartEqualsSteppingBackNMessages) {
    for (int i = 0; i < 40; ++i) {
        append(published("jobs", i));
        if (i % 3 == 0) append(published("other", i));  // seqs of another stream in between
    }
    store::Trimmer trimmer(m_store, {0, 25});
    auto batch = m_store.begin();
    trimmer.step(batch, store::now_us());
    batch.commit();
    for (const std::int64_t n : {1, 2, 7, 24, 25, 26, 1000}) {
        EXPECT_EQ(m_store.consumers().before_last("jobs", static_cast<std::uint64_t>(n)), stepped_back("jobs", n))
            << "last " << n;
    }
    EXPECT_EQ(m_store.consumers().before_last("jobs", 0), m_store.consumers().head("jobs"));
    EXPECT_EQ(m_store.consumers().before_last("nothing-here", 3), 0U);
}

TEST_F(ConsumerLag, ALongLagReadsAFewPagesNotTheMessages) {
    append({std::string(store::stream::k_consumers), store::EventType::consumer_created, "bob", std::nullopt,
            store::encode_payload(store::ConsumerCreated{"bob", "jobs", 0})});
    for (int b = 0; b < 20; ++b) {
        auto batch = m_store.begin();
        for (int i = 0; i < 1000; ++i) {
            batch.append(published("jobs", i));
            batch.append(sent("bob", i));
        }
        batch.commit();
    }
    auto* db = m_store.database().getHandle();
    const auto pages_read = [&](const auto& read) {
        int current = 0;
        int high = 0;
        sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_HIT, &current, &high, 1);
        sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &current, &high, 1);
        read();
        int hits = 0;
        int misses = 0;
        sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_HIT, &hits, &high, 0);
        sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_MISS, &misses, &high, 0);
        return hits + misses;
    };
    // 20,000 messages of ~60 bytes fill hundreds of pages: a count over them reads them all.
    EXPECT_LT(pages_read([&] { EXPECT_EQ(m_store.consumers().consumer("bob", "jobs")->unsettled, 20'000); }), 60);
    EXPECT_LT(pages_read([&] { EXPECT_EQ(m_store.mailboxes().unsettled_count("bob"), 20'000); }), 60);
    EXPECT_LT(pages_read([&] { EXPECT_GT(m_store.consumers().before_last("jobs", 15'000), 0U); }), 200);
}

}  // namespace
