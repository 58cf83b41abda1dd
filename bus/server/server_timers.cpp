// Server's own work, beside the requests: retention trimming and lease
// expiry, each on a timer and each as a small daemon batch that commits,
// is held for the sync and released like a batch of requests (so a crash
// mark or a trim is durable before anyone sees it).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>

#include "bus/server/server.hpp"

namespace botbus::bus {

bool Server::run_daemon_batch(const std::function<void(store::Batch&)>& work, const char* what) {
    Release out;
    try {
        auto tx = m_store.begin();
        work(tx);
        tx.commit_unsynced();
        out.events = tx.take_events();
    } catch (const std::exception& e) {
        spdlog::error("{} failed and was rolled back: {}", what, e.what());
        return false;
    }
    const bool appended = !out.events.empty();
    m_committer.hold(std::move(out), appended);
    on_readable();  // sends may have happened outside the drain loop
    return true;
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

void Server::trim() {
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
    const auto next = m_handler.next_lease_expiry();
    if (!next) return;
    if (m_lease_check_at && *m_lease_check_at <= *next) return;  // already set early enough
    m_lease_check_at = *next;
    const auto delay = std::max<std::int64_t>(0, *next - now());
    m_lease_timer.expires_after(std::chrono::microseconds(delay));
    m_lease_timer.async_wait([this](boost::system::error_code ec) {
        if (ec) return;  // cancelled: rescheduled earlier, or stopping
        m_lease_check_at.reset();
        expire_leases();
    });
}

void Server::expire_leases() {
    if (!m_running) return;
    std::size_t crashed = 0;
    const bool ok =
        run_daemon_batch([&](store::Batch& tx) { crashed = m_handler.expire_leases(tx, now()); }, "lease check");
    if (!ok) {
        spdlog::error("retrying the lease check in 1 s");
        m_lease_check_at = now() + 1'000'000;
        m_lease_timer.expires_after(std::chrono::seconds(1));
        m_lease_timer.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            m_lease_check_at.reset();
            expire_leases();
        });
        return;
    }
    if (crashed > 0) spdlog::warn("{} run(s) lost their lease and were marked crashed", crashed);
    schedule_lease_check();
}

}  // namespace botbus::bus
