// Unit tests of bus::Committer, the server's group commit, without sockets,
// Asio or a disk: the sync is a fake the test completes by hand, and each
// batch is known by the body of its one reply.
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bus/server/committer.hpp"

using namespace botbus::bus;

namespace {

class CommitterTest : public ::testing::Test {
protected:
    std::vector<std::string> m_released;           // batches shown, in order
    std::vector<std::uint64_t> m_requested;        // tickets the fake sync thread was asked for
    int m_inline = 0;                              // syncs run on the loop
    bool m_requests_waiting = true;                // by default the sync overlaps with more requests
    bool m_sync_fails = false;

    Committer::Hooks hooks(bool needs_sync = true) {
        Committer::Hooks h;
        h.sync_here = [this] {
            if (m_sync_fails) throw std::runtime_error("disk on fire");
            ++m_inline;
        };
        if (needs_sync) h.request_sync = [this](std::uint64_t ticket) { m_requested.push_back(ticket); };
        h.release = [this](Release& batch) {
            for (const auto& reply : batch.replies) m_released.push_back(reply.body);
        };
        h.requests_waiting = [this] { return m_requests_waiting; };
        return h;
    }

    static Release batch(const std::string& name) {
        Release r;
        r.replies.push_back({"peer", false, name});
        return r;
    }

    Committer m_committer{hooks()};
};

using Names = std::vector<std::string>;

TEST_F(CommitterTest, HeldBatchesAreReleasedInTicketOrderOnceASyncCoversThem) {
    m_committer.hold(batch("a"), true);
    m_committer.hold(batch("b"), true);
    m_committer.hold(batch("c"), true);
    EXPECT_TRUE(m_released.empty()) << "released before any sync";
    EXPECT_EQ(m_requested, (std::vector<std::uint64_t>{1, 2, 3}));

    EXPECT_TRUE(m_committer.on_synced(2, nullptr));
    EXPECT_EQ(m_released, (Names{"a", "b"})) << "c is not covered by a sync through 2";
    EXPECT_EQ(m_committer.held(), 1u);

    EXPECT_TRUE(m_committer.on_synced(3, nullptr));
    EXPECT_EQ(m_released, (Names{"a", "b", "c"}));
    EXPECT_EQ(m_committer.inline_syncs(), 0u);
}

TEST_F(CommitterTest, NothingIsReleasedBeforeASyncThatCoversIt) {
    m_committer.hold(batch("a"), true);
    m_committer.hold(batch("b"), true);
    EXPECT_TRUE(m_committer.on_synced(1, nullptr));
    EXPECT_EQ(m_released, (Names{"a"}));
    EXPECT_FALSE(m_committer.on_synced(1, nullptr)) << "a repeated report released something";
    EXPECT_FALSE(m_committer.release_synced(0)) << "an older report released something";
    EXPECT_EQ(m_released, (Names{"a"}));
    EXPECT_EQ(m_committer.synced_ticket(), 1u) << "the synced ticket went backwards";
}

TEST_F(CommitterTest, ABatchThatAppendedNothingWaitsBehindEarlierHeldBatches) {
    m_committer.hold(batch("write"), true);
    m_committer.hold(batch("read"), false);  // its reply may have read what "write" wrote
    EXPECT_TRUE(m_released.empty());
    EXPECT_EQ(m_requested, (std::vector<std::uint64_t>{1})) << "a batch that appended nothing asked for a sync";
    EXPECT_EQ(m_committer.committed_ticket(), 1u);

    m_committer.on_synced(1, nullptr);
    EXPECT_EQ(m_released, (Names{"write", "read"}));
}

TEST_F(CommitterTest, ABatchThatAppendedNothingIsReleasedAtOnceWhenNothingIsHeld) {
    m_committer.hold(batch("write"), true);
    m_committer.on_synced(1, nullptr);
    m_committer.hold(batch("read"), false);
    EXPECT_EQ(m_released, (Names{"write", "read"}));
    EXPECT_EQ(m_requested.size(), 1u);
}

TEST_F(CommitterTest, WithNothingToOverlapTheSyncRunsOnTheLoopAndReleasesAtOnce) {
    m_requests_waiting = false;
    m_committer.hold(batch("a"), true);
    EXPECT_EQ(m_released, (Names{"a"}));
    EXPECT_EQ(m_inline, 1);
    EXPECT_EQ(m_committer.inline_syncs(), 1u);
    EXPECT_TRUE(m_requested.empty()) << "the sync thread was asked although the loop synced";
    EXPECT_EQ(m_committer.synced_ticket(), 1u);
}

TEST_F(CommitterTest, WhileASyncIsInFlightTheNextBatchWaitsForItEvenWithNoRequestsWaiting) {
    m_committer.hold(batch("a"), true);  // requests waiting: handed to the sync thread
    m_requests_waiting = false;
    m_committer.hold(batch("b"), true);
    EXPECT_TRUE(m_released.empty());
    EXPECT_EQ(m_inline, 0) << "synced on the loop while a sync was in flight";
    EXPECT_EQ(m_requested, (std::vector<std::uint64_t>{1, 2}));
    m_committer.on_synced(2, nullptr);
    EXPECT_EQ(m_released, (Names{"a", "b"}));
}

TEST_F(CommitterTest, AFailedSyncThrowsAndReleasesNothing) {
    m_committer.hold(batch("a"), true);
    m_committer.hold(batch("b"), true);
    const auto failure = std::make_exception_ptr(std::runtime_error("EIO"));
    try {
        m_committer.on_synced(2, failure);
        FAIL() << "a failed sync did not throw";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("cannot make committed batches durable"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("EIO"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(m_released.empty());
    EXPECT_EQ(m_committer.held(), 2u);
}

TEST_F(CommitterTest, AFailedInlineSyncThrowsAndReleasesNothing) {
    m_requests_waiting = false;
    m_sync_fails = true;
    EXPECT_THROW(m_committer.hold(batch("a"), true), std::runtime_error);
    EXPECT_TRUE(m_released.empty());
    EXPECT_EQ(m_committer.synced_ticket(), 0u);
}

TEST_F(CommitterTest, SyncAndReleaseAllReleasesEverythingHeldInOrder) {
    m_committer.hold(batch("a"), true);
    m_committer.hold(batch("b"), false);
    m_committer.hold(batch("c"), true);
    m_committer.sync_and_release_all();
    EXPECT_EQ(m_released, (Names{"a", "b", "c"}));
    EXPECT_EQ(m_inline, 1);
    EXPECT_EQ(m_committer.held(), 0u);
    // A late report of the thread's sync changes nothing.
    EXPECT_FALSE(m_committer.on_synced(2, nullptr));
    EXPECT_EQ(m_released.size(), 3u);
}

TEST_F(CommitterTest, SyncAndReleaseAllWithNothingHeldDoesNotSync) {
    m_committer.sync_and_release_all();
    EXPECT_EQ(m_inline, 0);
}

TEST_F(CommitterTest, AFailedFinalSyncThrowsAndReleasesNothing) {
    m_committer.hold(batch("a"), true);
    m_sync_fails = true;
    EXPECT_THROW(m_committer.sync_and_release_all(), std::runtime_error);
    EXPECT_TRUE(m_released.empty());
}

TEST_F(CommitterTest, ASyncReportedFromAnotherThreadIsReleasedByTheLoop) {
    m_committer.hold(batch("a"), true);
    m_committer.hold(batch("b"), true);
    std::thread syncer([this] { m_committer.sync_reported(1); });
    syncer.join();
    EXPECT_TRUE(m_released.empty()) << "released on the reporting thread";
    EXPECT_TRUE(m_committer.release_reported());
    EXPECT_EQ(m_released, (Names{"a"}));
    EXPECT_FALSE(m_committer.release_reported());
}

TEST(Committer, AStoreThatNeedsNoSyncReleasesEveryBatchAtOnce) {
    std::vector<std::string> released;
    int syncs = 0;
    Committer committer(Committer::Hooks{
        .sync_here = [&] { ++syncs; },
        .request_sync = nullptr,
        .release = [&](Release& batch) { released.push_back(batch.replies.at(0).body); },
        .requests_waiting = [] { return true; },
    });
    Release a;
    a.replies.push_back({"peer", false, "a"});
    Release b;
    b.replies.push_back({"peer", false, "b"});
    committer.hold(std::move(a), true);
    committer.hold(std::move(b), false);
    EXPECT_EQ(released, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(syncs, 0);
    committer.sync_and_release_all();
    EXPECT_EQ(syncs, 0) << "nothing was held, so nothing needed a sync";
}

}  // namespace
