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
#include "store/sqlite/log_check.hpp"
#include "store/sqlite/migrator.hpp"
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

TEST_F(EventChain, ADatabaseFromBeforeTheChainStartsItAtTheFirstNewEvent) {
    {
        // Schema 0007, as an older botbusd left it, with two events.
        SQLite::Database db(m_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        std::vector<botbus::migrations::MigrationSource> before;
        for (const auto& m : botbus::migrations::all()) {
            if (m.version <= 7) before.push_back(m);
        }
        store::migrate(db, before, m_path);
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
