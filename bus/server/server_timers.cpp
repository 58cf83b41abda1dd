// Server's own work, beside the requests: retention trimming and lease
// expiry, each on a timer and each as a small daemon batch that commits,
// is held for the sync and released like a batch of requests (so a crash
// mark or a trim is durable before anyone sees it).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bus/server/server.hpp"
#include "store/payloads.hpp"

namespace botbus::bus {

void Server::stop_if_store_lost() {
    // Thrown out of the loop: botbusd exits non-zero, its supervisor
    // restarts it, its clients move to other nodes meanwhile (SCALING.md).
    if (const auto why = m_store.lost()) throw std::runtime_error(*why + "; stopping");
}

bool Server::run_daemon_batch(const std::function<void(store::Batch&)>& work, const char* what) {
    Release out;
    try {
        auto tx = m_store.begin();
        work(tx);
        tx.commit_unsynced();
        out.events = tx.take_events();
    } catch (const std::exception& e) {
        spdlog::error("{} failed and was rolled back: {}", what, e.what());
        stop_if_store_lost();
        return false;
    }
    const bool appended = !out.events.empty();
    m_committer.hold(std::move(out), appended);
    on_readable();  // sends may have happened outside the drain loop
    return true;
}

void Server::schedule_tail() {
    if (!m_running || !m_store.shared()) return;
    // Another node's commit wakes this one at once (watch_other_nodes); the
    // poll is the backstop for a wake-up lost on the way, and what a store
    // without one (none yet) would run on.
    constexpr auto k_tail_interval = std::chrono::milliseconds(1000);
    m_tail_timer.expires_after(k_tail_interval);
    m_tail_timer.async_wait([this](boost::system::error_code ec) {
        if (ec || !m_running) return;
        show_what_others_appended();
        schedule_tail();
    });
}

void Server::watch_other_nodes() {
    if (!m_wake) {
        const int fd = m_store.wake_descriptor();
        if (fd < 0) return;
        m_wake.emplace(m_io, fd);
    }
    m_wake->async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
        if (ec || !m_running) return;
        // Waiting again first: whatever arrives from now on is a new edge,
        // whatever arrived before is read by take_wake below (or was, into
        // libpq's queue, by a batch's statements meanwhile).
        watch_other_nodes();
        if (m_store.take_wake()) show_what_others_appended();
    });
}

void Server::stop_watching_other_nodes() {
    if (!m_wake) return;
    m_wake->cancel();
    m_wake->release();  // the store's connection: not closed here
    m_wake.reset();
}

void Server::show_what_others_appended() {
    try {
        const auto head = m_store.committed_last_seq();
        if (head > m_shown_seq) show_others(head);
    } catch (const std::exception& e) {
        stop_if_store_lost();
        spdlog::error("reading what other nodes appended failed: {}; trying again", e.what());
    }
    on_readable();  // pushes were sent outside the drain loop
}

void Server::show_others(store::Seq upto) {
    // A page at a time; each page shown as one batch of this node's would be.
    constexpr std::size_t k_page = 1000;
    while (m_shown_seq < upto) {
        auto events = m_store.read_range(m_shown_seq, k_page);
        std::erase_if(events, [upto](const store::Event& e) { return e.seq > upto; });
        if (events.empty()) {  // trimmed meanwhile: nothing left to show below upto
            m_shown_seq = upto;
            m_router.set_visible(upto);
            return;
        }
        bool sent = false;
        bool rules = false;
        for (const auto& event : events) {
            sent = sent || event.type == store::EventType::message_sent;
            rules = rules || event.type == store::EventType::acl_granted || event.type == store::EventType::acl_revoked;
        }
        // This node's permission rules are the log's: another node's grant
        // or revoke applies here before its fan-out checks readers.
        if (rules) m_handler.reload_acl();
        Touched touched;
        show_events(events, touched);
        m_router.park({}, touched.channels, now());
        if (sent) schedule_expiry_sweep();
    }
}

void Server::schedule_trim() {
    if (!m_running) return;
    // Retention is configured per channel at run time, so the timer always runs.
    m_trim_timer.expires_after(std::chrono::microseconds(m_options.trim_interval_us));
    m_trim_timer.async_wait([this](boost::system::error_code ec) {
        if (ec || !m_running) return;
        trim();
        schedule_trim();
    });
}

void Server::schedule_expiry_sweep() {
    if (!m_running) return;
    std::optional<std::int64_t> next;
    try {
        next = m_store.mailboxes().next_expiry();
    } catch (const std::exception& e) {
        spdlog::error("reading when direct messages expire failed: {}; looking again in 1 s", e.what());
        next = now() + 1'000'000;
    }
    if (!next || (m_expiry_sweep_at && *m_expiry_sweep_at <= *next)) return;
    m_expiry_sweep_at = *next;
    m_expiry_timer.expires_after(std::chrono::microseconds(std::max<std::int64_t>(0, *next - now())));
    m_expiry_timer.async_wait([this](boost::system::error_code ec) {
        if (ec || !m_running) return;  // set earlier meanwhile, or stopping
        m_expiry_sweep_at.reset();
        sweep_expiries();
    });
}

void Server::sweep_expiries() {
    // Bounded work per tick: a page of due messages, then the loop serves
    // others before the next page.
    constexpr std::size_t k_page = 256;
    std::vector<std::pair<std::string, store::Seq>> due;
    // On a shared log one node sweeps; the others look again in a second,
    // in case it stops.
    bool failed = false;
    try {
        failed = !m_store.leads();
        if (!failed) due = m_store.mailboxes().due_expiries(now(), k_page);
    } catch (const std::exception& e) {
        spdlog::error("reading the expired direct messages failed: {}", e.what());
        failed = true;
    }
    if (!due.empty()) {
        std::map<std::string, std::vector<std::uint64_t>> by_bot;
        for (auto& [bot, seq] : due) by_bot[bot].push_back(seq);
        failed = !run_daemon_batch(
            [&](store::Batch& tx) {
                for (auto& entry : by_bot) {
                    const auto& bot = entry.first;
                    auto& seqs = entry.second;
                    // Settled meanwhile by a batch not released yet: nothing to expire.
                    std::erase_if(seqs, [&](std::uint64_t seq) { return m_store.mailboxes().is_settled(bot, seq); });
                    if (seqs.empty()) continue;
                    tx.append({std::string(store::stream::k_mailboxes), store::EventType::message_expired,
                               std::string(k_daemon_producer), std::nullopt,
                               store::encode_payload(store::MessagesExpired{bot, std::move(seqs)})});
                }
            },
            "expiring direct messages");
    }
    if (!failed && due.size() < k_page) {
        schedule_expiry_sweep();
        return;
    }
    // More are due (the next page, after what waits on the loop), or the
    // store failed (again in a second, not in a spin).
    const auto delay = failed ? std::chrono::milliseconds(1000) : std::chrono::milliseconds(0);
    m_expiry_sweep_at = now() + std::chrono::duration_cast<std::chrono::microseconds>(delay).count();
    m_expiry_timer.expires_after(delay);
    m_expiry_timer.async_wait([this](boost::system::error_code ec) {
        if (ec || !m_running) return;
        m_expiry_sweep_at.reset();
        sweep_expiries();
    });
}

void Server::trim() {
    if (!m_store.leads()) return;  // another node trims the shared log
    std::size_t trimmed = 0;
    // A small transaction per step (at most 1000 messages), then back to serving.
    const bool committed =
        run_daemon_batch([&](store::Batch& tx) { trimmed = m_trimmer.step(tx, now()); }, "trimming old messages");
    if (committed) m_metrics.retention_deleted += trimmed;
    if (trimmed > 0) spdlog::debug("retention trimmed {} messages", trimmed);
}

void Server::enable_backlog_gauges() {
    m_backlog_gauges_on = true;
    schedule_backlog_scan();
}

void Server::schedule_backlog_scan() {
    if (!m_running || !m_backlog_gauges_on) return;
    m_backlog_timer.expires_after(std::chrono::milliseconds(100));
    m_backlog_timer.async_wait([this](boost::system::error_code ec) {
        if (ec || !m_running) return;
        try {
            m_backlog_gauges.step(now());
        } catch (const std::exception& e) {
            spdlog::warn("reading mailbox and subscription backlogs for the metrics failed: {}", e.what());
        }
        schedule_backlog_scan();
    });
}

void Server::schedule_lease_check() {
    if (!m_running) return;
    auto next = m_handler.next_lease_expiry();
    if (m_store.shared()) {
        // Leases are granted and renewed through every node: the leader
        // (and whoever may become it) looks again at least this often.
        const auto poll = now() + k_shared_lease_poll_us;
        if (!next || *next > poll) next = poll;
    }
    if (!next) return;
    if (m_lease_check_at && *m_lease_check_at <= *next) return;  // already set early enough
    set_lease_timer(*next);
}

void Server::set_lease_timer(std::int64_t at_us) {
    m_lease_check_at = at_us;
    const auto delay = std::max<std::int64_t>(0, at_us - now());
    m_lease_timer.expires_after(std::chrono::microseconds(delay));
    m_lease_timer.async_wait([this](boost::system::error_code ec) {
        if (ec) return;  // cancelled: rescheduled earlier, or stopping
        m_lease_check_at.reset();
        expire_leases();
    });
}

void Server::expire_leases() {
    if (!m_running) return;
    if (!m_store.leads()) {
        // Another node runs the cluster's lease check; ask again later, to
        // take over if it goes.
        m_leads_lease_check = false;
        set_lease_timer(now() + k_shared_lease_poll_us);
        return;
    }
    // Nobody watched the leases before this node took the check on (a
    // restart, or the previous leader's death): a full period for every run first.
    const bool grace = !m_leads_lease_check;
    std::size_t crashed = 0;
    const bool ok = run_daemon_batch(
        [&](store::Batch& tx) {
            if (grace) m_handler.grant_grace(tx, now());
            crashed = m_handler.expire_leases(tx, now());
        },
        "lease check");
    if (!ok) {
        spdlog::error("retrying the lease check in 1 s");
        set_lease_timer(now() + 1'000'000);
        return;
    }
    m_leads_lease_check = true;
    if (crashed > 0) spdlog::warn("{} run(s) lost their lease and were marked crashed", crashed);
    schedule_lease_check();
}

}  // namespace botbus::bus
