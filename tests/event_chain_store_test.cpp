// The log's integrity records on a file store: the hash chain each event
// carries and `botbusd verify`'s walk of it (store::check_log) through
// appends, retention and tampering; the chain of a database that predates it;
// and botbus.seq, the highest durable seq kept outside the WAL, with the
// refusal to open a log that ends below it.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "migrations/embedded_migrations.hpp"
#include "store/errors.hpp"
#include "store/payloads.hpp"
#include "store/sql/event_hash.hpp"
#include "store/sqlite/log_check.hpp"
#include "store/sql/migrator.hpp"
#include "store/sqlite/sqlite_connection.hpp"
#include "store/sqlite/seq_record.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "store/trimmer.hpp"
#include "temp_dir.hpp"

namespace store = botbus::store;
using store::Seq;

namespace {

std::string packed_body(const std::string& text) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, text);
    return std::string(buffer.data(), buffer.size());
}

store::EventDraft channel_created(const std::string& name) {
    return {std::string(store::stream::k_channels), store::EventType::channel_created, "alice", std::nullopt,
            store::encode_payload(store::ChannelCreated{name, std::nullopt})};
}

store::EventDraft published(const std::string& channel, const std::string& text,
                            std::optional<std::string> key = std::nullopt) {
    const auto body = packed_body(text);
    store::MessagePayload p;
    p.channel = channel;
    p.type = "text";
    p.body = body;
    return {store::stream::channel(channel), store::EventType::message_published, "alice", std::move(key),
            store::encode_message_payload(p)};
}

class EventChain : public ::testing::Test {
protected:
    botbus::testing::TempDir m_dir;
    std::string m_path = m_dir.file("botbus.db");

    // Appends each draft in a batch of its own; returns their seqs.
    std::vector<Seq> append_all(std::vector<store::EventDraft> drafts, store::Durability durability =
                                                                           store::Durability::full) {
        store::SqliteStore s({m_path, durability});
        std::vector<Seq> seqs;
        for (auto& draft : drafts) {
            auto batch = s.begin();
            seqs.push_back(batch.append(std::move(draft)).seq);
            batch.commit();
        }
        return seqs;
    }
    void sql(const std::string& statement) {
        SQLite::Database db(m_path, SQLite::OPEN_READWRITE);
        db.exec(statement);
    }
};

TEST_F(EventChain, AnIntactLogVerifiesWithEveryLinkChecked) {
    const auto seqs = append_all({channel_created("lobby"), published("lobby", "a"), published("lobby", "b", "k1"),
                                  published("lobby", "c")});
    const auto check = store::check_log(m_path);
    EXPECT_TRUE(check.intact) << check.problem;
    EXPECT_EQ(check.chained, seqs.size());
    EXPECT_EQ(check.last_seq, seqs.back());
    EXPECT_EQ(check.chain_start, 0U);
    ASSERT_TRUE(check.recorded_seq);
    EXPECT_EQ(*check.recorded_seq, seqs.back()) << "a clean close records the last seq exactly";
}

TEST_F(EventChain, EditingAStoredFieldIsReportedAtThatSeq) {
    const auto seqs = append_all({channel_created("lobby"), published("lobby", "a"), published("lobby", "b"),
                                  published("lobby", "c")});
    sql("UPDATE events SET payload = x'a0' WHERE seq = " + std::to_string(seqs[2]));
    const auto check = store::check_log(m_path);
    EXPECT_FALSE(check.intact);
    EXPECT_NE(check.problem.find("seq " + std::to_string(seqs[2]) + " ("), std::string::npos) << check.problem;
    EXPECT_NE(check.problem.find("does not match"), std::string::npos) << check.problem;
    EXPECT_EQ(check.chained, 2U) << "the links before it held";
}

TEST_F(EventChain, ADeletedRowIsReportedAsTheGapItLeaves) {
    const auto seqs = append_all({channel_created("lobby"), published("lobby", "a"), published("lobby", "b"),
                                  published("lobby", "c")});
    sql("DELETE FROM events WHERE seq = " + std::to_string(seqs[1]));
    const auto check = store::check_log(m_path);
    EXPECT_FALSE(check.intact);
    EXPECT_NE(check.problem.find("seq " + std::to_string(seqs[1]) + " missing from the log and not recorded as trimmed"),
              std::string::npos)
        << check.problem;
}

TEST_F(EventChain, TheLastRowDeletedIsReportedAtTheEnd) {
    const auto seqs = append_all({channel_created("lobby"), published("lobby", "a"), published("lobby", "b")});
    sql("DELETE FROM events WHERE seq = " + std::to_string(seqs.back()));
    const auto check = store::check_log(m_path);
    EXPECT_FALSE(check.intact);
    EXPECT_NE(check.problem.find("seq " + std::to_string(seqs.back()) + " missing at the end of the log"),
              std::string::npos)
        << check.problem;
}

TEST_F(EventChain, RetentionKeepsTheChainVerifiableAndAGapItDidNotMakeIsStillFound) {
    std::vector<Seq> seqs;
    {
        store::SqliteStore s({m_path, store::Durability::full});
        auto append = [&](store::EventDraft draft) {
            auto batch = s.begin();
            seqs.push_back(batch.append(std::move(draft)).seq);
            batch.commit();
        };
        append(channel_created("a"));
        append(channel_created("b"));
        // Interleaved, so each channel's trimmed messages are scattered
        // seqs until both are trimmed and the runs merge.
        for (int i = 0; i < 10; ++i) {
            append(published("a", "a" + std::to_string(i)));
            append(published("b", "b" + std::to_string(i)));
        }
        store::Trimmer trimmer(s, {0, 2});
        for (int step = 0; step < 100; ++step) {
            auto batch = s.begin();
            const auto trimmed = trimmer.step(batch, store::now_us(), 3);  // a few at a time
            batch.commit();
            if (trimmed == 0) break;
        }
    }
    auto check = store::check_log(m_path);
    EXPECT_TRUE(check.intact) << check.problem;
    EXPECT_EQ(check.trimmed, 16U);
    EXPECT_EQ(check.ranges, 1U) << "the trimmed messages of both channels were one run of seqs";
    {
        SQLite::Database db(m_path, SQLite::OPEN_READONLY);
        EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM trimmed_ranges").getInt(), 1);
    }

    // A channel.created event is never trimmed: its absence is damage.
    sql("DELETE FROM events WHERE seq = " + std::to_string(seqs[1]));
    check = store::check_log(m_path);
    EXPECT_FALSE(check.intact);
    EXPECT_NE(check.problem.find("seq " + std::to_string(seqs[1]) + " missing"), std::string::npos) << check.problem;
}

// Only a commit's last event stores its hash; the events before it in the
// commit are verified through it, and retention and a rolled-back request
// inside a commit follow the chain to the seq they need.
class CommitChain : public EventChain {
protected:
    // Appends each group of drafts as one batch; returns every seq.
    std::vector<Seq> append_batches(std::vector<std::vector<store::EventDraft>> batches) {
        store::SqliteStore s({m_path, store::Durability::full});
        std::vector<Seq> seqs;
        for (auto& drafts : batches) {
            auto batch = s.begin();
            for (auto& draft : drafts) seqs.push_back(batch.append(std::move(draft)).seq);
            batch.commit();
        }
        return seqs;
    }
    std::vector<Seq> seqs_with_stored_hash() {
        SQLite::Database db(m_path, SQLite::OPEN_READONLY);
        SQLite::Statement q(db, "SELECT seq FROM events WHERE hash IS NOT NULL ORDER BY seq");
        std::vector<Seq> seqs;
        while (q.executeStep()) seqs.push_back(static_cast<Seq>(q.getColumn(0).getInt64()));
        return seqs;
    }
};

TEST_F(CommitChain, OnlyTheLastEventOfACommitStoresItsHashAndEveryEventIsChecked) {
    const auto seqs = append_batches({{channel_created("lobby"), published("lobby", "a"), published("lobby", "b")},
                                      {published("lobby", "c"), published("lobby", "d")},
                                      {published("lobby", "e")}});
    EXPECT_EQ(seqs_with_stored_hash(), (std::vector<Seq>{seqs[2], seqs[4], seqs[5]}));
    const auto check = store::check_log(m_path);
    EXPECT_TRUE(check.intact) << check.problem;
    EXPECT_EQ(check.chained, seqs.size());
}

TEST_F(CommitChain, EditingAnEventInsideACommitIsReportedAtTheCommitsStoredHashWithItsRange) {
    const auto seqs = append_batches({{channel_created("lobby"), published("lobby", "a")},
                                      {published("lobby", "b"), published("lobby", "c"), published("lobby", "d")}});
    sql("UPDATE events SET payload = x'a0' WHERE seq = " + std::to_string(seqs[3]));
    const auto check = store::check_log(m_path);
    EXPECT_FALSE(check.intact);
    EXPECT_NE(check.problem.find("seq " + std::to_string(seqs[4]) + " ("), std::string::npos) << check.problem;
    EXPECT_NE(check.problem.find("seqs " + std::to_string(seqs[2]) + ".." + std::to_string(seqs[4])),
              std::string::npos)
        << "the commit that holds the change: " << check.problem;
}

TEST_F(CommitChain, EditingAnEventOfTheLastCommitIsFoundThroughLogHead) {
    const auto seqs = append_batches({{channel_created("lobby"), published("lobby", "a")},
                                      {published("lobby", "b"), published("lobby", "c")}});
    // The stored hash goes too, so only log_head's copy is left to catch it.
    sql("UPDATE events SET payload = x'a0', hash = NULL WHERE seq = " + std::to_string(seqs[3]));
    const auto check = store::check_log(m_path);
    EXPECT_FALSE(check.intact);
    EXPECT_NE(check.problem.find("log_head's chain hash"), std::string::npos) << check.problem;
    EXPECT_NE(check.problem.find("seqs " + std::to_string(seqs[2]) + ".." + std::to_string(seqs[3])),
              std::string::npos)
        << check.problem;
}

TEST_F(CommitChain, RetentionInsideCommitsRecordsTheHashOfEveryDeletedSeq) {
    // Two channels interleaved inside each commit: the deleted seqs of one
    // channel are runs inside commits, whose hashes are not stored.
    std::vector<std::vector<store::EventDraft>> batches{{channel_created("a"), channel_created("b")}};
    for (int commit = 0; commit < 4; ++commit) {
        std::vector<store::EventDraft> drafts;
        for (int i = 0; i < 5; ++i) {
            drafts.push_back(published("a", "a" + std::to_string(commit * 5 + i)));
            drafts.push_back(published("b", "b" + std::to_string(commit * 5 + i)));
        }
        batches.push_back(std::move(drafts));
    }
    append_batches(std::move(batches));
    {
        store::SqliteStore s({m_path, store::Durability::full});
        store::Trimmer trimmer(s, {0, 3});
        auto batch = s.begin();
        // Channel a only first (retention per channel below), then the rest.
        EXPECT_GT(trimmer.step(batch, store::now_us(), 7), 0U);
        batch.commit();
        for (int step = 0; step < 100; ++step) {
            auto more = s.begin();
            const auto trimmed = trimmer.step(more, store::now_us(), 7);
            more.commit();
            if (trimmed == 0) break;
        }
    }
    const auto check = store::check_log(m_path);
    EXPECT_TRUE(check.intact) << check.problem;
    EXPECT_EQ(check.trimmed, 34U) << "each channel keeps its last 3 of 20";
    SQLite::Database db(m_path, SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM events WHERE type = 'message.published'").getInt(), 6);
}

TEST_F(CommitChain, ARequestRolledBackInsideACommitLeavesTheChainOfWhatStayed) {
    {
        store::SqliteStore s({m_path, store::Durability::full});
        auto batch = s.begin();
        batch.append(channel_created("lobby"));
        batch.append(published("lobby", "kept"));
        batch.savepoint();
        batch.append(published("lobby", "undone 1"));
        batch.append(published("lobby", "undone 2"));
        ASSERT_TRUE(batch.rollback_to_savepoint());
        batch.append(published("lobby", "after"));
        batch.commit();
        auto next = s.begin();
        next.append(published("lobby", "next commit"));
        next.commit();
    }
    const auto check = store::check_log(m_path);
    EXPECT_TRUE(check.intact) << check.problem;
    EXPECT_EQ(check.chained, 4U);
    EXPECT_EQ(seqs_with_stored_hash(), (std::vector<Seq>{3, 4}));
}

TEST_F(CommitChain, ALogWrittenWithAHashOnEveryEventUpgradesAndVerifiesAcrossTheChange) {
    {
        // Schema 0011, as the previous botbusd left it: every event hashed.
        SQLite::Database db(m_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        std::vector<botbus::migrations::MigrationSource> before;
        for (const auto& m : botbus::migrations::all()) {
            if (m.version <= 11) before.push_back(m);
        }
        {
            store::sql::SqliteConnection connection(db);
            store::migrate(connection, before, m_path);
        }
        SQLite::Statement insert(db,
                                 "INSERT INTO events (seq, ts_us, stream, stream_seq, type, producer, idem_key,"
                                 " payload, hash) VALUES (?, 1, 'sys/channels', ?, 'channel.created', 'alice', NULL,"
                                 " x'80', ?)");
        store::EventHash previous = store::k_chain_genesis;
        for (Seq seq = 1; seq <= 3; ++seq) {
            const std::string payload("\x80", 1);
            previous = store::chain_hash(
                previous, store::StoredEventFields{seq, 1, "sys/channels", seq, "channel.created", "alice",
                                                   std::nullopt, payload});
            insert.bind(1, static_cast<std::int64_t>(seq));
            insert.bind(2, static_cast<std::int64_t>(seq));
            insert.bind(3, previous.data(), static_cast<int>(previous.size()));
            insert.exec();
            insert.reset();
        }
        db.exec("INSERT INTO streams (stream, floor_stream_seq, floor_seq) VALUES ('sys/channels', 0, 0)");
        SQLite::Statement head(db, "UPDATE log_head SET last_seq = 3, last_hash = ?, event_count = 3");
        head.bind(1, previous.data(), static_cast<int>(previous.size()));
        head.exec();
    }
    ASSERT_TRUE(store::check_log(m_path).intact);
    const auto seqs = append_batches({{channel_created("lobby"), published("lobby", "a"), published("lobby", "b")}});
    EXPECT_EQ(seqs.front(), 4U);
    EXPECT_EQ(seqs_with_stored_hash(), (std::vector<Seq>{1, 2, 3, 6}));
    const auto check = store::check_log(m_path);
    EXPECT_TRUE(check.intact) << check.problem;
    EXPECT_EQ(check.chained, 6U);
    SQLite::Database db(m_path, SQLite::OPEN_READONLY);
    EXPECT_EQ(db.execAndGet("SELECT MAX(version) FROM schema_migrations").getInt(),
              botbus::migrations::all().back().version);
}

TEST_F(EventChain, ADatabaseFromBeforeTheChainStartsItAtTheFirstNewEvent) {
    {
        // Schema 0007, as an older botbusd left it, with two events.
        SQLite::Database db(m_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        std::vector<botbus::migrations::MigrationSource> before;
        for (const auto& m : botbus::migrations::all()) {
            if (m.version <= 7) before.push_back(m);
        }
        {
            store::sql::SqliteConnection connection(db);
            store::migrate(connection, before, m_path);
        }
        db.exec(
            "INSERT INTO events (seq, ts_us, stream, stream_seq, type, producer, idem_key, payload) VALUES"
            " (1, 1, 'sys/channels', 1, 'channel.created', 'alice', NULL, x'80'),"
            " (2, 2, 'sys/channels', 2, 'channel.created', 'alice', NULL, x'80')");
        db.exec("INSERT INTO streams (stream, last_stream_seq, last_seq) VALUES ('sys/channels', 2, 2)");
        db.exec("UPDATE log_head SET last_seq = 2");
    }
    const auto seqs = append_all({channel_created("lobby"), published("lobby", "a")});
    EXPECT_EQ(seqs.front(), 3U);
    const auto check = store::check_log(m_path);
    EXPECT_TRUE(check.intact) << check.problem;
    EXPECT_EQ(check.chain_start, 2U);
    EXPECT_EQ(check.chained, 2U);
}

TEST_F(EventChain, EachSyncAdvancesTheSeqRecordBeforeItsBatchIsShown) {
    store::SqliteStore s({m_path, store::Durability::full});
    const auto record = store::SeqRecord::path_for(m_path);
    EXPECT_EQ(record, m_dir.file("botbus.seq"));
    for (int i = 0; i < 3; ++i) {
        auto batch = s.begin();
        const auto seq = batch.append(channel_created("c" + std::to_string(i))).seq;
        batch.commit();  // commits and syncs, as the daemon's sync thread does
        // Read while the store is open: the record of a process that dies now.
        EXPECT_EQ(store::SeqRecord::read_file(record), seq);
    }
}

TEST_F(EventChain, UnderNormalDurabilityTheRecordMovesAtStartAndCleanCloseOnly) {
    const auto record = store::SeqRecord::path_for(m_path);
    Seq seq = 0;
    {
        store::SqliteStore s({m_path, store::Durability::normal});
        auto batch = s.begin();
        seq = batch.append(channel_created("lobby")).seq;
        batch.commit();
        EXPECT_EQ(store::SeqRecord::read_file(record), 0U) << "nothing is synced, so nothing is promised";
    }
    EXPECT_EQ(store::SeqRecord::read_file(record), seq) << "a clean close syncs the WAL, then records";
}

TEST_F(EventChain, ALogEndingBelowTheSeqRecordIsRefusedWithTheMissingRange) {
    append_all({channel_created("lobby"), published("lobby", "a"), published("lobby", "b"), published("lobby", "c"),
                published("lobby", "d")});
    // What a WAL whose recovery stopped early leaves: the log and its head
    // both end at an earlier commit.
    sql("DELETE FROM events WHERE seq > 2");
    sql("UPDATE log_head SET last_seq = 2, last_hash = (SELECT hash FROM events WHERE seq = 2)");
    try {
        store::SqliteStore reopened({m_path, store::Durability::full});
        FAIL() << "a log below the record was opened";
    } catch (const store::StartupError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("the log ends at seq 2"), std::string::npos) << what;
        EXPECT_NE(what.find("seqs 3..5 are missing"), std::string::npos) << what;
        EXPECT_NE(what.find(m_dir.file("botbus.seq")), std::string::npos) << what;
    }
    const auto check = store::check_log(m_path);
    EXPECT_FALSE(check.intact);
    EXPECT_NE(check.problem.find("seqs 3..5 missing"), std::string::npos) << check.problem;
}

TEST_F(EventChain, ADamagedSeqRecordIsRefusedRatherThanGuessed) {
    append_all({channel_created("lobby")});
    {
        std::FILE* f = std::fopen(store::SeqRecord::path_for(m_path).c_str(), "r+b");
        ASSERT_NE(f, nullptr);
        std::fseek(f, 9, SEEK_SET);
        std::fputc(0x5a, f);
        std::fclose(f);
    }
    EXPECT_THROW(store::SqliteStore({m_path, store::Durability::full}), store::StartupError);
}

}  // namespace
