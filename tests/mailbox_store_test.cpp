// Unit tests of the mailbox projections on a :memory: store: settling direct
// messages one by one (mailbox.acked with seqs, message.expired,
// message.dead_lettered), the floor moving over them, the dead letters and
// their replays, the message payload format, and a rebuild from the log.
#include <gtest/gtest.h>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/mailbox_queries.hpp"
#include "store/payloads.hpp"
#include "store/sqlite/rebuild.hpp"
#include "store/sqlite/sqlite_store.hpp"
#include "temp_dir.hpp"

namespace store = botbus::store;
using store::Appended;
using store::Durability;
using store::EventDraft;
using store::Seq;
using store::SqliteStore;

namespace {

// A packed msgpack string, as a message body.
std::string packed_body(const std::string& text) {
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, text);
    return std::string(buffer.data(), buffer.size());
}

EventDraft sent(const std::string& from, const std::string& to, const std::string& body,
                std::optional<std::uint64_t> replay_of = std::nullopt) {
    store::MessagePayload p;
    p.to = to;
    p.type = "note";
    p.body = body;
    p.replay_of = replay_of;
    if (replay_of) p.replayed_by = "ops";
    return EventDraft{store::stream::mailbox(to), store::EventType::message_sent, from, std::nullopt,
                      store::encode_message_payload(p)};
}

EventDraft published(const std::string& from, const std::string& channel, const std::string& body) {
    store::MessagePayload p;
    p.channel = channel;
    p.type = "text";
    p.body = body;
    return EventDraft{store::stream::channel(channel), store::EventType::message_published, from,
                      std::nullopt, store::encode_message_payload(p)};
}

EventDraft channel_created(const std::string& name) {
    return EventDraft{std::string(store::stream::k_channels), store::EventType::channel_created,
                      "alice", std::nullopt, store::encode_payload(store::ChannelCreated{name, std::nullopt})};
}

// Payloads are filled in field by field, as the server does, so fields
// added later keep their defaults.
EventDraft acked(const std::string& bot, std::optional<std::uint64_t> upto,
                 std::optional<std::vector<std::uint64_t>> seqs = std::nullopt) {
    store::MailboxAcked p;
    p.upto = upto;
    p.seqs = std::move(seqs);
    return EventDraft{std::string(store::stream::k_mailboxes), store::EventType::mailbox_acked, bot,
                      std::nullopt, store::encode_payload(p)};
}

EventDraft expired(const std::string& bot, std::vector<std::uint64_t> seqs) {
    store::MessagesExpired p;
    p.bot = bot;
    p.seqs = std::move(seqs);
    return EventDraft{std::string(store::stream::k_mailboxes), store::EventType::message_expired,
                      "botbusd", std::nullopt, store::encode_payload(p)};
}

EventDraft dead_lettered(const std::string& bot, Seq message_seq, const std::string& reason,
                         std::uint32_t deliveries) {
    store::MessageDeadLettered p;
    p.bot = bot;
    p.message_seq = message_seq;
    p.reason = reason;
    p.deliveries = deliveries;
    return EventDraft{std::string(store::stream::k_dead_letters),
                      store::EventType::message_dead_lettered, "botbusd", std::nullopt,
                      store::encode_payload(p)};
}

std::vector<Seq> dead_letter_seqs(const std::vector<store::DeadLetterRow>& rows) {
    std::vector<Seq> seqs;
    for (const auto& r : rows) seqs.push_back(r.message_seq);
    return seqs;
}

class MailboxStore : public ::testing::Test {
protected:
    SqliteStore m_store{{":memory:", Durability::full}};

    // Appends one event in a batch of its own.
    Appended append(EventDraft draft) {
        auto batch = m_store.begin();
        const auto appended = batch.append(std::move(draft));
        batch.commit();
        return appended;
    }

    // `count` direct messages from alice to `to`; their seqs.
    std::vector<Seq> send_many(const std::string& to, int count) {
        std::vector<Seq> seqs;
        for (int i = 0; i < count; ++i) seqs.push_back(append(sent("alice", to, packed_body(std::to_string(i)))).seq);
        return seqs;
    }

    Seq floor_of(const std::string& bot) { return m_store.messages().mailbox_acked(bot); }
    bool settled(const std::string& bot, Seq seq) { return m_store.mailboxes().is_settled(bot, seq); }
    std::int64_t unsettled(const std::string& bot) { return m_store.mailboxes().unsettled_count(bot); }

    // mailbox_settled rows of `bot`: seq -> outcome.
    std::map<Seq, std::string> settled_rows(const std::string& bot) {
        SQLite::Statement q(m_store.database(), "SELECT seq, outcome FROM mailbox_settled WHERE bot_id = ? ORDER BY seq");
        q.bind(1, bot);
        std::map<Seq, std::string> rows;
        while (q.executeStep()) rows[static_cast<Seq>(q.getColumn(0).getInt64())] = q.getColumn(1).getString();
        return rows;
    }

    std::vector<store::DeadLetterRow> dead_letters(std::optional<std::string> bot = std::nullopt, Seq after = 0,
                                                   std::size_t limit = 100) {
        store::DeadLetterQuery q;
        q.bot = std::move(bot);
        q.after = after;
        q.limit = limit;
        return m_store.mailboxes().dead_letters(q);
    }
};

// ---- settling by seq and the floor

TEST_F(MailboxStore, AckBySeqsSettlesOnlyThoseMessages) {
    const auto m = send_many("bob", 3);
    append(acked("bob", std::nullopt, std::vector<std::uint64_t>{m[1]}));

    EXPECT_FALSE(settled("bob", m[0]));
    EXPECT_TRUE(settled("bob", m[1]));
    EXPECT_FALSE(settled("bob", m[2]));
    EXPECT_FALSE(settled("carol", m[1])) << "settlement is per mailbox";
    EXPECT_EQ(floor_of("bob"), 0U) << "the first message is unsettled: the floor cannot move";
    EXPECT_EQ(settled_rows("bob"), (std::map<Seq, std::string>{{m[1], "acked"}}));
    EXPECT_EQ(unsettled("bob"), 2);
}

TEST_F(MailboxStore, FloorMovesOverContiguousSettledMessagesAndDropsTheirRows) {
    const auto m = send_many("bob", 4);
    append(acked("bob", std::nullopt, std::vector<std::uint64_t>{m[1], m[2]}));
    EXPECT_EQ(floor_of("bob"), 0U);
    EXPECT_EQ(settled_rows("bob").size(), 2U);

    append(acked("bob", std::nullopt, std::vector<std::uint64_t>{m[0]}));
    EXPECT_EQ(floor_of("bob"), m[2]) << "the floor moves over the first three, stops before the unsettled fourth";
    EXPECT_TRUE(settled_rows("bob").empty()) << "rows at or below the floor are deleted";
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(settled("bob", m[static_cast<std::size_t>(i)])) << i;
    EXPECT_FALSE(settled("bob", m[3]));
    EXPECT_EQ(unsettled("bob"), 1);
}

TEST_F(MailboxStore, OutOfOrderAcksEndWithTheFloorAtTheLastMessage) {
    // Bob's messages interleaved with carol's and a channel message: the
    // floor moves over bob's mailbox only.
    append(channel_created("general"));
    const auto b1 = append(sent("alice", "bob", packed_body("b1"))).seq;
    append(sent("alice", "carol", packed_body("c1")));
    const auto b2 = append(sent("alice", "bob", packed_body("b2"))).seq;
    append(published("alice", "general", packed_body("p")));
    const auto b3 = append(sent("alice", "bob", packed_body("b3"))).seq;

    append(acked("bob", std::nullopt, std::vector<std::uint64_t>{b3}));
    EXPECT_EQ(floor_of("bob"), 0U);
    EXPECT_EQ(settled_rows("bob"), (std::map<Seq, std::string>{{b3, "acked"}}));

    append(acked("bob", std::nullopt, std::vector<std::uint64_t>{b1}));
    EXPECT_EQ(floor_of("bob"), b1) << "b2 is still unsettled";
    EXPECT_EQ(settled_rows("bob"), (std::map<Seq, std::string>{{b3, "acked"}}));
    EXPECT_FALSE(settled("bob", b2));

    const auto last_ack = append(acked("bob", std::nullopt, std::vector<std::uint64_t>{b2}));
    EXPECT_EQ(floor_of("bob"), b3) << "the floor is a message seq, not the ack event's";
    EXPECT_LT(floor_of("bob"), last_ack.seq);
    EXPECT_TRUE(settled_rows("bob").empty());
    EXPECT_EQ(unsettled("bob"), 0);
    EXPECT_EQ(unsettled("carol"), 1);
    EXPECT_EQ(floor_of("carol"), 0U);
}

TEST_F(MailboxStore, UptoAndSeqsTogetherInOneAck) {
    const auto m = send_many("bob", 5);
    append(acked("bob", m[1], std::vector<std::uint64_t>{m[3]}));
    EXPECT_EQ(floor_of("bob"), m[1]);
    EXPECT_FALSE(settled("bob", m[2]));
    EXPECT_TRUE(settled("bob", m[3]));
    EXPECT_EQ(settled_rows("bob"), (std::map<Seq, std::string>{{m[3], "acked"}}));
    EXPECT_EQ(unsettled("bob"), 2);

    // upto up to the gap: the floor moves over it and the settled one after.
    append(acked("bob", m[2], std::vector<std::uint64_t>{}));
    EXPECT_EQ(floor_of("bob"), m[3]);
    EXPECT_TRUE(settled_rows("bob").empty());
    EXPECT_EQ(unsettled("bob"), 1);
}

TEST_F(MailboxStore, UptoNeverLowersTheFloor) {
    const auto m = send_many("bob", 5);
    append(acked("bob", m[3]));
    EXPECT_EQ(floor_of("bob"), m[3]);

    append(acked("bob", m[0]));
    EXPECT_EQ(floor_of("bob"), m[3]);
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(settled("bob", m[static_cast<std::size_t>(i)])) << i;

    // A lower upto with a seq above the floor still settles that seq.
    append(acked("bob", m[0], std::vector<std::uint64_t>{m[4]}));
    EXPECT_EQ(floor_of("bob"), m[4]);
    EXPECT_EQ(unsettled("bob"), 0);
}

TEST_F(MailboxStore, SeqsAtOrBelowTheFloorLeaveNoRow) {
    const auto m = send_many("bob", 3);
    append(acked("bob", m[1]));
    append(acked("bob", std::nullopt, std::vector<std::uint64_t>{m[0], m[1]}));
    EXPECT_TRUE(settled_rows("bob").empty());
    EXPECT_EQ(floor_of("bob"), m[1]);
    EXPECT_EQ(unsettled("bob"), 1);
}

TEST_F(MailboxStore, ExpiredMessagesAreSettled) {
    const auto m = send_many("bob", 3);
    append(expired("bob", {m[1]}));
    EXPECT_TRUE(settled("bob", m[1]));
    EXPECT_EQ(settled_rows("bob"), (std::map<Seq, std::string>{{m[1], "expired"}}));
    EXPECT_EQ(floor_of("bob"), 0U);
    EXPECT_EQ(unsettled("bob"), 2);

    append(expired("bob", {m[0], m[2]}));
    EXPECT_EQ(floor_of("bob"), m[2]);
    EXPECT_TRUE(settled_rows("bob").empty());
    EXPECT_EQ(unsettled("bob"), 0);
    EXPECT_TRUE(dead_letters().empty()) << "expiry is no dead letter";
}

TEST_F(MailboxStore, DeadLetteredMessageIsSettledAndListed) {
    const auto m = send_many("bob", 2);
    const auto dead = append(dead_lettered("bob", m[1], "max_deliveries: delivered 3 times", 3));

    EXPECT_TRUE(settled("bob", m[1]));
    EXPECT_FALSE(settled("bob", m[0]));
    EXPECT_EQ(settled_rows("bob"), (std::map<Seq, std::string>{{m[1], "dead_lettered"}}));
    EXPECT_EQ(unsettled("bob"), 1);

    const auto row = m_store.mailboxes().dead_letter(m[1]);
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->seq, dead.seq);
    EXPECT_EQ(row->message_seq, m[1]);
    EXPECT_EQ(row->bot, "bob");
    EXPECT_EQ(row->reason, "max_deliveries: delivered 3 times");
    EXPECT_EQ(row->deliveries, 3U);
    EXPECT_EQ(row->dead_at, dead.ts_us);
    EXPECT_FALSE(row->replayed_seq.has_value());
    EXPECT_FALSE(m_store.mailboxes().dead_letter(m[0]).has_value());
    EXPECT_FALSE(m_store.mailboxes().dead_letter(dead.seq).has_value()) << "keyed by the message's seq";

    // The first message dead too: the floor moves over both.
    append(dead_lettered("bob", m[0], "max_deliveries", 3));
    EXPECT_EQ(floor_of("bob"), m[1]);
    EXPECT_TRUE(settled_rows("bob").empty());
    EXPECT_EQ(dead_letters().size(), 2U) << "dead letters stay when the floor passes them";
}

TEST_F(MailboxStore, SecondDeadLetterForTheSameMessageKeepsTheFirst) {
    const auto m = send_many("bob", 1);
    const auto first = append(dead_lettered("bob", m[0], "first", 2));
    append(dead_lettered("bob", m[0], "second", 5));
    const auto rows = dead_letters();
    ASSERT_EQ(rows.size(), 1U);
    EXPECT_EQ(rows[0].seq, first.seq);
    EXPECT_EQ(rows[0].reason, "first");
    EXPECT_EQ(rows[0].deliveries, 2U);
}

TEST_F(MailboxStore, DeadLettersFilterByBotAndPageAfterWithALimit) {
    const auto b = send_many("bob", 3);
    const auto c = send_many("carol", 2);
    const auto d1 = append(dead_lettered("bob", b[0], "r", 1)).seq;
    const auto d2 = append(dead_lettered("carol", c[1], "r", 1)).seq;
    const auto d3 = append(dead_lettered("bob", b[2], "r", 1)).seq;
    const auto d4 = append(dead_lettered("carol", c[0], "r", 1)).seq;
    ASSERT_LT(d1, d2);
    ASSERT_LT(d3, d4);

    EXPECT_EQ(dead_letter_seqs(dead_letters()), (std::vector<Seq>{b[0], c[1], b[2], c[0]})) << "oldest first";
    EXPECT_EQ(dead_letter_seqs(dead_letters("bob")), (std::vector<Seq>{b[0], b[2]}));
    EXPECT_EQ(dead_letter_seqs(dead_letters("carol")), (std::vector<Seq>{c[1], c[0]}));
    EXPECT_TRUE(dead_letters("dave").empty());

    // `after` is a dead-letter event seq, exclusive.
    EXPECT_EQ(dead_letter_seqs(dead_letters(std::nullopt, d1)), (std::vector<Seq>{c[1], b[2], c[0]}));
    EXPECT_EQ(dead_letter_seqs(dead_letters(std::nullopt, d2, 1)), (std::vector<Seq>{b[2]}));
    EXPECT_EQ(dead_letter_seqs(dead_letters(std::nullopt, 0, 2)), (std::vector<Seq>{b[0], c[1]}));
    EXPECT_EQ(dead_letter_seqs(dead_letters("carol", d2)), (std::vector<Seq>{c[0]}));
    EXPECT_EQ(dead_letter_seqs(dead_letters("bob", d1, 1)), (std::vector<Seq>{b[2]}));
    EXPECT_TRUE(dead_letters(std::nullopt, d4).empty());
}

TEST_F(MailboxStore, ReplayedCopyMarksItsDeadLetter) {
    const auto m = send_many("bob", 2);
    append(dead_lettered("bob", m[0], "r", 4));
    append(dead_lettered("bob", m[1], "r", 4));
    const auto copy = append(sent("alice", "bob", packed_body("0"), m[0]));

    const auto replayed = m_store.mailboxes().dead_letter(m[0]);
    ASSERT_TRUE(replayed.has_value());
    EXPECT_EQ(replayed->replayed_seq, std::optional<Seq>(copy.seq));
    const auto other = m_store.mailboxes().dead_letter(m[1]);
    ASSERT_TRUE(other.has_value());
    EXPECT_FALSE(other->replayed_seq.has_value());

    // The copy is a new unsettled message in the mailbox.
    EXPECT_FALSE(settled("bob", copy.seq));
    EXPECT_EQ(floor_of("bob"), m[1]);
    EXPECT_EQ(unsettled("bob"), 1);
    const auto message = m_store.messages().message(copy.seq);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->replay_of, std::optional<Seq>(m[0]));

    // A replay_of naming no dead letter marks nothing and appends fine.
    const auto stray = append(sent("alice", "bob", packed_body("x"), 999));
    EXPECT_GT(stray.seq, copy.seq);
    EXPECT_EQ(dead_letters().size(), 2U);
}

TEST_F(MailboxStore, UnsettledCountCountsOnlyTheBotsDirectMessages) {
    EXPECT_EQ(unsettled("bob"), 0);
    append(channel_created("general"));
    append(published("bob", "general", packed_body("not a DM")));
    const auto m = send_many("bob", 4);
    append(sent("bob", "carol", packed_body("from bob")));
    EXPECT_EQ(unsettled("bob"), 4);
    EXPECT_EQ(unsettled("carol"), 1);

    append(acked("bob", std::nullopt, std::vector<std::uint64_t>{m[2]}));
    EXPECT_EQ(unsettled("bob"), 3);
    append(expired("bob", {m[3]}));
    EXPECT_EQ(unsettled("bob"), 2);
    append(dead_lettered("bob", m[1], "r", 1));
    EXPECT_EQ(unsettled("bob"), 1);
    append(acked("bob", m[0]));
    EXPECT_EQ(unsettled("bob"), 0);
    EXPECT_EQ(floor_of("bob"), m[3]);
    EXPECT_EQ(unsettled("carol"), 1);
}

TEST_F(MailboxStore, SettlingInsideTheSameBatchAsTheMessagesWorks) {
    auto batch = m_store.begin();
    const auto a = batch.append(sent("alice", "bob", packed_body("a"))).seq;
    const auto b = batch.append(sent("alice", "bob", packed_body("b"))).seq;
    batch.append(acked("bob", std::nullopt, std::vector<std::uint64_t>{b}));
    EXPECT_TRUE(m_store.mailboxes().is_settled("bob", b)) << "reads inside a batch see its appends";
    batch.append(acked("bob", std::nullopt, std::vector<std::uint64_t>{a}));
    EXPECT_EQ(m_store.messages().mailbox_acked("bob"), b);
    batch.commit();
    EXPECT_EQ(floor_of("bob"), b);
    EXPECT_EQ(unsettled("bob"), 0);
}

TEST_F(MailboxStore, RolledBackSettlementLeavesNothing) {
    const auto m = send_many("bob", 2);
    {
        auto batch = m_store.begin();
        batch.append(acked("bob", std::nullopt, std::vector<std::uint64_t>{m[0], m[1]}));
        batch.append(dead_lettered("bob", m[1], "r", 1));
    }  // rolled back
    EXPECT_EQ(floor_of("bob"), 0U);
    EXPECT_FALSE(settled("bob", m[0]));
    EXPECT_TRUE(settled_rows("bob").empty());
    EXPECT_TRUE(dead_letters().empty());
    EXPECT_EQ(unsettled("bob"), 2);
}

// ---- the message payload format

// The keys of a stored payload map.
std::set<std::string> keys_of(const std::string& payload) {
    const auto handle = msgpack::unpack(payload.data(), payload.size());
    const auto& root = handle.get();
    std::set<std::string> keys;
    if (root.type != msgpack::type::MAP) {
        ADD_FAILURE() << "payload is not a map";
        return keys;
    }
    for (std::uint32_t i = 0; i < root.via.map.size; ++i) keys.insert(root.via.map.ptr[i].key.as<std::string>());
    return keys;
}

TEST(MailboxPayload, AbsentOptionalFieldsAreLeftOutNotNil) {
    const auto body = packed_body("hi");
    store::MessagePayload p;
    p.to = "bob";
    p.type = "note";
    p.body = body;
    const auto bytes = store::encode_message_payload(p);
    EXPECT_EQ(keys_of(bytes), (std::set<std::string>{"to", "type", "body"}));

    store::MessageDecoder decoder;
    const auto f = decoder.decode(store::EventType::message_sent, bytes);
    EXPECT_FALSE(f.channel.has_value());
    EXPECT_EQ(f.to, std::optional<std::string_view>("bob"));
    EXPECT_EQ(f.type, "note");
    EXPECT_EQ(f.body, body);
    EXPECT_FALSE(f.reply_to.has_value());
    EXPECT_FALSE(f.conversation.has_value());
    EXPECT_FALSE(f.hop.has_value());
    EXPECT_FALSE(f.expires_at.has_value());
    EXPECT_FALSE(f.replay_of.has_value());
}

TEST(MailboxPayload, PresentFieldsRoundTripThroughTheDecoder) {
    const auto body = packed_body("answer");
    store::MessagePayload p;
    p.to = "bob";
    p.type = "reply";
    p.body = body;
    p.reply_to = 41;
    p.conversation = 7;
    p.hop = 0;  // present though zero
    p.expires_at = 1'700'000'000'000'000;
    p.replay_of = 12;
    p.replayed_by = "ops";
    const auto bytes = store::encode_message_payload(p);
    EXPECT_EQ(keys_of(bytes), (std::set<std::string>{"to", "type", "body", "reply_to", "conversation", "hop",
                                                     "expires_at", "replay_of", "replayed_by"}));

    store::MessageDecoder decoder;
    const auto f = decoder.decode(store::EventType::message_sent, bytes);
    EXPECT_FALSE(f.channel.has_value());
    EXPECT_EQ(f.to, std::optional<std::string_view>("bob"));
    EXPECT_EQ(f.type, "reply");
    EXPECT_EQ(f.body, body);
    EXPECT_EQ(f.reply_to, std::optional<std::uint64_t>(41));
    EXPECT_EQ(f.conversation, std::optional<std::uint64_t>(7));
    EXPECT_EQ(f.hop, std::optional<std::uint64_t>(0));
    EXPECT_EQ(f.expires_at, std::optional<std::int64_t>(1'700'000'000'000'000));
    EXPECT_EQ(f.replay_of, std::optional<std::uint64_t>(12));
}

TEST(MailboxPayload, ChannelMessageAndNegativeExpiryRoundTrip) {
    const auto body = packed_body("p");
    store::MessagePayload p;
    p.channel = "general";
    p.type = "text";
    p.body = body;
    p.hop = 3;
    p.conversation = 100;
    p.expires_at = -5;  // before the epoch: stored as a negative integer
    const auto bytes = store::encode_message_payload(p);
    EXPECT_EQ(keys_of(bytes), (std::set<std::string>{"channel", "type", "body", "conversation", "hop", "expires_at"}));

    store::MessageDecoder decoder;
    const auto f = decoder.decode(store::EventType::message_published, bytes);
    EXPECT_EQ(f.channel, std::optional<std::string_view>("general"));
    EXPECT_FALSE(f.to.has_value());
    EXPECT_EQ(f.hop, std::optional<std::uint64_t>(3));
    EXPECT_EQ(f.conversation, std::optional<std::uint64_t>(100));
    EXPECT_EQ(f.expires_at, std::optional<std::int64_t>(-5));
    EXPECT_FALSE(f.replay_of.has_value());
}

TEST(MailboxPayload, NilFieldsOfOlderPayloadsDecodeAsAbsent) {
    // The format before encode_message_payload: every optional key present,
    // nil when unset.
    const auto body = packed_body("old");
    msgpack::sbuffer out;
    msgpack::packer<msgpack::sbuffer> pk(out);
    pk.pack_map(9);
    pk.pack(std::string("channel"));
    pk.pack_nil();
    pk.pack(std::string("to"));
    pk.pack(std::string("bob"));
    pk.pack(std::string("type"));
    pk.pack(std::string("note"));
    pk.pack(std::string("body"));
    pk.pack_bin(static_cast<std::uint32_t>(body.size()));
    pk.pack_bin_body(body.data(), static_cast<std::uint32_t>(body.size()));
    for (const char* key : {"reply_to", "conversation", "hop", "expires_at", "replay_of"}) {
        pk.pack(std::string(key));
        pk.pack_nil();
    }
    store::MessageDecoder decoder;
    const auto f = decoder.decode(store::EventType::message_sent, std::string_view(out.data(), out.size()));
    EXPECT_FALSE(f.channel.has_value());
    EXPECT_EQ(f.to, std::optional<std::string_view>("bob"));
    EXPECT_EQ(f.body, body);
    EXPECT_FALSE(f.reply_to.has_value());
    EXPECT_FALSE(f.conversation.has_value());
    EXPECT_FALSE(f.hop.has_value());
    EXPECT_FALSE(f.expires_at.has_value());
    EXPECT_FALSE(f.replay_of.has_value());
}

TEST(MailboxPayload, WrongTypedNewFieldsAreRejected) {
    const auto body = packed_body("x");
    for (const char* key : {"conversation", "hop", "replay_of", "expires_at"}) {
        msgpack::sbuffer out;
        msgpack::packer<msgpack::sbuffer> pk(out);
        pk.pack_map(3);
        pk.pack(std::string("type"));
        pk.pack(std::string("note"));
        pk.pack(std::string("body"));
        pk.pack_bin(static_cast<std::uint32_t>(body.size()));
        pk.pack_bin_body(body.data(), static_cast<std::uint32_t>(body.size()));
        pk.pack(std::string(key));
        pk.pack(std::string("soon"));
        store::MessageDecoder decoder;
        EXPECT_THROW(decoder.decode(store::EventType::message_sent, std::string_view(out.data(), out.size())),
                     std::runtime_error)
            << key;
    }
}

TEST_F(MailboxStore, MessageQueryReturnsTheNewFields) {
    const auto body = packed_body("deep");
    store::MessagePayload p;
    p.to = "bob";
    p.type = "note";
    p.body = body;
    p.reply_to = 1;
    p.conversation = 1;
    p.hop = 4;
    p.expires_at = 123456789;
    p.replay_of = 2;
    p.replayed_by = "ops";
    const auto plain = append(sent("alice", "bob", body)).seq;
    const auto full = append(EventDraft{store::stream::mailbox("bob"), store::EventType::message_sent,
                                        "alice", std::nullopt, store::encode_message_payload(p)})
                          .seq;

    const auto row = m_store.messages().message(full);
    ASSERT_TRUE(row.has_value());
    EXPECT_EQ(row->from, "alice");
    EXPECT_EQ(row->to, std::optional<std::string>("bob"));
    EXPECT_EQ(row->body, body);
    EXPECT_EQ(row->reply_to, std::optional<Seq>(1));
    EXPECT_EQ(row->conversation, std::optional<Seq>(1));
    EXPECT_EQ(row->hop, std::optional<std::uint64_t>(4));
    EXPECT_EQ(row->expires_at, std::optional<std::int64_t>(123456789));
    EXPECT_EQ(row->replay_of, std::optional<Seq>(2));

    const auto bare = m_store.messages().message(plain);
    ASSERT_TRUE(bare.has_value());
    EXPECT_FALSE(bare->reply_to.has_value());
    EXPECT_FALSE(bare->conversation.has_value());
    EXPECT_FALSE(bare->hop.has_value());
    EXPECT_FALSE(bare->expires_at.has_value());
    EXPECT_FALSE(bare->replay_of.has_value());

    // History rows carry them too.
    store::HistoryQuery q;
    q.scope = store::HistoryQuery::Scope::inbox;
    q.bot_a = "bob";
    const auto rows = m_store.messages().history(q);
    ASSERT_EQ(rows.size(), 2U);
    EXPECT_EQ(rows[1].hop, std::optional<std::uint64_t>(4));
    EXPECT_EQ(rows[1].expires_at, std::optional<std::int64_t>(123456789));
    EXPECT_FALSE(rows[0].hop.has_value());
}

// ---- rebuild

std::int64_t count_rows(SQLite::Database& db, const std::string& sql) {
    SQLite::Statement q(db, sql);
    return q.executeStep() ? q.getColumn(0).getInt64() : -1;
}

TEST_F(MailboxStore, RebuildFromTheLogGivesIdenticalMailboxProjections) {
    append(channel_created("general"));
    append(published("alice", "general", packed_body("p")));
    const auto b = send_many("bob", 6);
    const auto c = send_many("carol", 3);
    append(acked("bob", std::nullopt, std::vector<std::uint64_t>{b[2], b[4]}));  // above the floor, kept
    append(expired("bob", {b[0]}));                                               // floor moves to b[0]
    append(dead_lettered("bob", b[1], "max_deliveries: delivered 2 times", 2));  // floor moves to b[2]
    append(acked("carol", c[0], std::vector<std::uint64_t>{c[2]}));
    append(dead_lettered("carol", c[1], "gone", 5));  // floor moves over all of carol's
    {
        // A batch mixing a copy and acks, as the daemon's batches do.
        auto batch = m_store.begin();
        batch.append(sent("alice", "bob", packed_body("1"), b[1]));
        batch.append(acked("bob", b[0]));  // lower than the floor: no change
        batch.commit();
    }
    ASSERT_EQ(floor_of("bob"), b[2]);
    ASSERT_EQ(floor_of("carol"), c[2]);
    ASSERT_EQ(settled_rows("bob"), (std::map<Seq, std::string>{{b[4], "acked"}}));
    const auto replayed = m_store.mailboxes().dead_letter(b[1]);
    ASSERT_TRUE(replayed.has_value());
    ASSERT_TRUE(replayed->replayed_seq.has_value());

    SQLite::Database rebuilt(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    EXPECT_EQ(store::rebuild_projections(m_store, rebuilt), static_cast<std::size_t>(m_store.last_seq()));
    const auto differences = store::compare_projections(m_store.database(), rebuilt);
    EXPECT_TRUE(differences.empty()) << differences.front();
    // The comparison covered non-empty mailbox tables.
    EXPECT_EQ(count_rows(rebuilt, "SELECT COUNT(*) FROM bot_mailboxes"), 2);
    EXPECT_EQ(count_rows(rebuilt, "SELECT COUNT(*) FROM mailbox_settled"), 1);
    EXPECT_EQ(count_rows(rebuilt, "SELECT COUNT(*) FROM dead_letters"), 2);
    EXPECT_EQ(count_rows(rebuilt, "SELECT COUNT(*) FROM dead_letters WHERE replayed_seq IS NOT NULL"), 1);
}

TEST_F(MailboxStore, CompareNoticesAMailboxProjectionThatDiffers) {
    const auto m = send_many("bob", 3);
    append(acked("bob", std::nullopt, std::vector<std::uint64_t>{m[2]}));
    append(dead_lettered("bob", m[1], "r", 1));
    SQLite::Database rebuilt(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    store::rebuild_projections(m_store, rebuilt);
    ASSERT_TRUE(store::compare_projections(m_store.database(), rebuilt).empty());

    rebuilt.exec("DELETE FROM mailbox_settled");
    rebuilt.exec("UPDATE dead_letters SET deliveries = 9");
    const auto differences = store::compare_projections(m_store.database(), rebuilt);
    ASSERT_EQ(differences.size(), 3U);  // two settled rows, one dead letter column
    EXPECT_NE(differences[0].find("mailbox_settled"), std::string::npos) << differences[0];
    EXPECT_NE(differences[2].find("dead_letters"), std::string::npos) << differences[2];
    EXPECT_NE(differences[2].find("deliveries"), std::string::npos) << differences[2];
}

}  // namespace

namespace {

// ---- delivery attempts beside the log (issue 15)

TEST_F(MailboxStore, DeliveryAttemptsAreKeptBesideTheLogUntilTheirMessagesSettle) {
    const auto m = send_many("bob", 4);
    const auto last_seq = m_store.last_seq();
    {
        auto batch = m_store.begin();
        batch.record_deliveries({"bob", "", m[2], {{m[0], 3}, {m[1], 2}}});
        batch.record_deliveries({"bob", "", m[1], {{m[0], 2}}});  // never lowers what is there
        batch.commit();
    }
    EXPECT_EQ(m_store.last_seq(), last_seq) << "attempts are not events";
    EXPECT_EQ(m_store.mailboxes().delivered_upto("bob", ""), m[2]);
    EXPECT_EQ(m_store.mailboxes().delivery_count("bob", "", m[0]), 3U);
    EXPECT_EQ(m_store.mailboxes().delivery_count("bob", "", m[1]), 2U);
    EXPECT_EQ(m_store.mailboxes().delivery_count("bob", "", m[2]), 0U) << "delivered once: the mark says so";
    EXPECT_EQ(m_store.mailboxes().delivered_upto("bob", "news"), 0U) << "another reader of bob's";

    // Settling a message takes its count with it: by seq, up to a floor, or given up on.
    append(acked("bob", std::nullopt, std::vector<std::uint64_t>{m[1]}));
    EXPECT_EQ(m_store.mailboxes().delivery_count("bob", "", m[1]), 0U);
    EXPECT_EQ(m_store.mailboxes().delivery_count("bob", "", m[0]), 3U);
    append(dead_lettered("bob", m[0], "max_deliveries", 3));
    EXPECT_EQ(m_store.mailboxes().delivery_count("bob", "", m[0]), 0U);
    SQLite::Statement rows(m_store.database(), "SELECT COUNT(*) FROM delivery_counts");
    ASSERT_TRUE(rows.executeStep());
    EXPECT_EQ(rows.getColumn(0).getInt(), 0);
    // A rebuild from the log does not see them, and need not: they are not a projection.
    EXPECT_TRUE(m_store.verify_projections().differences.empty());
}

}  // namespace

namespace {

// ---- the expiry index (issue 15)

EventDraft sent_with_ttl(const std::string& to, std::uint64_t ttl_ms) {
    const auto body = packed_body("stale soon");
    store::MessagePayload p;
    p.to = to;
    p.type = "note";
    p.body = body;
    p.ttl_ms = ttl_ms;
    return EventDraft{store::stream::mailbox(to), store::EventType::message_sent, "alice", std::nullopt,
                      store::encode_message_payload(p)};
}

TEST_F(MailboxStore, UnsettledDirectMessagesWithATimeToLiveAreIndexedByWhenTheyExpire) {
    const auto a = append(sent_with_ttl("bob", 1000));
    const auto b = append(sent_with_ttl("carol", 500));
    append(sent("alice", "bob", packed_body("forever")));
    const auto next = m_store.mailboxes().next_expiry();
    ASSERT_TRUE(next);
    EXPECT_EQ(*next, b.ts_us + 500'000);
    using Due = std::vector<std::pair<std::string, Seq>>;
    EXPECT_EQ(m_store.mailboxes().due_expiries(a.ts_us + 1'000'000, 10), (Due{{"carol", b.seq}, {"bob", a.seq}}));
    EXPECT_EQ(m_store.mailboxes().due_expiries(a.ts_us + 1'000'000, 1), (Due{{"carol", b.seq}})) << "a page";
    EXPECT_TRUE(m_store.mailboxes().due_expiries(b.ts_us + 499'999, 10).empty()) << "not before the deadline";
    // Settled, however it happens: out of the index.
    append(acked("carol", b.seq));
    append(expired("bob", {a.seq}));
    EXPECT_FALSE(m_store.mailboxes().next_expiry());
    EXPECT_TRUE(m_store.verify_projections().differences.empty());
}

TEST(MailboxExpiryFill, ADatabaseFromBeforeTheIndexGetsItFilledFromTheLogWhenOpened) {
    botbus::testing::TempDir dir;
    const auto path = dir.file("botbus.db");
    Seq waiting = 0;
    {
        SqliteStore s({path, Durability::full});
        for (const auto& draft : {sent_with_ttl("bob", 60'000), sent_with_ttl("bob", 60'000)}) {
            auto batch = s.begin();
            const auto appended = batch.append(draft);
            batch.commit();
            waiting = appended.seq;
        }
        auto batch = s.begin();
        batch.append(acked("bob", waiting - 1));
        batch.commit();
        // As a database migrated to 0013 holds it before the store fills it.
        s.database().exec("DELETE FROM mailbox_expiries");
        s.database().exec("INSERT INTO projection_fills (name) VALUES ('mailbox_expiries')");
    }
    SqliteStore s({path, Durability::full});
    SQLite::Statement rows(s.database(), "SELECT seq FROM mailbox_expiries");
    ASSERT_TRUE(rows.executeStep());
    EXPECT_EQ(static_cast<Seq>(rows.getColumn(0).getInt64()), waiting) << "only the unsettled one";
    EXPECT_FALSE(rows.executeStep());
    EXPECT_EQ(s.database().execAndGet("SELECT COUNT(*) FROM projection_fills").getInt(), 0);
    EXPECT_TRUE(s.verify_projections().differences.empty());
}

}  // namespace
