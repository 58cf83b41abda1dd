// botbusd: wires the store, the wire server, signals and systemd together;
// its maintenance commands are in maintenance.cpp.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>
#include <malloc.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>

#include "bus/server/metrics_endpoint.hpp"
#include "bus/server/server.hpp"
#include "client/curve_keys.hpp"
#include "daemon/config.hpp"
#include "daemon/data_dir_lock.hpp"
#include "store/postgresql/postgres_store.hpp"
#include "daemon/maintenance.hpp"
#include "daemon/signal_stream.hpp"
#include "store/sqlite/sqlite_store.hpp"

namespace {

void configure_logging(const std::string& level) {
    // stderr, so journald captures it; colour only on a terminal.
    auto logger = spdlog::stderr_color_mt("botbusd", isatty(STDERR_FILENO) ? spdlog::color_mode::automatic
                                                                          : spdlog::color_mode::never);
    spdlog::set_default_logger(logger);
    spdlog::set_pattern(isatty(STDERR_FILENO) ? "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v" : "%l %v");
    spdlog::set_level(spdlog::level::from_str(level));
}

std::string database_path(const std::string& data_dir) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) throw std::runtime_error("cannot create data directory " + data_dir + ": " + ec.message());
    return (std::filesystem::path(data_dir) / "botbus.db").string();
}

void reload_allowlist(botbus::bus::Server& server, const botbus::daemon::Config& config) {
    if (!config.server.curve) {
        spdlog::info("received SIGHUP: nothing to reload without --auth curve");
        return;
    }
    try {
        server.reload_allowlist(botbus::client::read_allowlist(config.allowlist_path));
    } catch (const std::exception& e) {
        spdlog::error("received SIGHUP: keeping the allowlist in force: {}", e.what());
    }
}

int run(const botbus::daemon::Config& config) {
    boost::asio::io_context io(1);
    // First: the threads the store and ZeroMQ start inherit the blocked set.
    botbus::daemon::SignalStream signals(io, {SIGINT, SIGTERM, SIGHUP});
    std::optional<botbus::daemon::DataDirLock> lock;
    std::unique_ptr<botbus::store::Store> opened;
    if (config.store.empty()) {
        const auto path = database_path(config.data_dir);
        lock.emplace(config.data_dir);
        opened = std::make_unique<botbus::store::SqliteStore>(botbus::store::StoreOptions{path, config.durability});
        spdlog::info("database {} open at seq {} (durability {})", path, opened->last_seq(),
                     config.durability == botbus::store::Durability::full ? "full: WAL synced before every reply"
                                                                           : "normal: replies before the WAL sync");
    } else {
        // Several nodes may share the server: no data directory lock, and
        // durability is the server's (synchronous_commit).
        auto postgres = std::make_unique<botbus::store::PostgresStore>(config.store);
        spdlog::info("PostgreSQL store {} open at seq {} (durable as the server's synchronous_commit)",
                     postgres->label(), postgres->last_seq());
        opened = std::move(postgres);
    }
    auto& store = *opened;

    zmq::context_t zmq(1);
    botbus::bus::Server server(io, zmq, store, config.server);
    server.start();
    std::optional<botbus::bus::MetricsEndpoint> metrics;
    if (!config.metrics_endpoint.empty()) {
        metrics.emplace(io, config.metrics_endpoint,
                        botbus::bus::MetricsHandlers{.metrics = [&server] { return server.metrics_text(); },
                                                     .ready = [&server] { return server.ready(); }});
        server.enable_backlog_gauges();
        spdlog::info("metrics: http://{}/metrics (and /healthz, /readyz)", metrics->endpoint());
    }
    if (config.server.curve) {
        spdlog::info("authentication: CURVE, {} keys on the allowlist {}", config.server.curve->allowlist.size(),
                     config.allowlist_path);
    } else if (config.insecure) {
        spdlog::warn("--insecure: serving without authentication; whoever reaches {} or {} can act as any bot",
                     server.command_endpoint(), server.feed_endpoint());
    }

    // The watchdog is fed from the event loop itself, so a loop that stops
    // turning (a wedged batch, a deadlock) gets botbusd restarted.
    boost::asio::steady_timer watchdog(io);
    std::uint64_t watchdog_usec = 0;
    std::function<void()> feed_watchdog = [&] {
        sd_notify(0, "WATCHDOG=1");
        watchdog.expires_after(std::chrono::microseconds(watchdog_usec / 2));
        watchdog.async_wait([&](const boost::system::error_code& ec) {
            if (!ec) feed_watchdog();
        });
    };
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) feed_watchdog();

    // SIGHUP re-reads the allowlist; a file that cannot be read keeps the
    // list in force, so a typo never locks every bot out. SIGINT and SIGTERM
    // stop the server between batches: the batch in flight has been
    // committed and answered already.
    std::function<void()> wait_signal = [&] {
        signals.async_wait([&](int signal) {
            if (signal == SIGHUP) {
                reload_allowlist(server, config);
                wait_signal();
                return;
            }
            spdlog::info("received {}, shutting down", signal == SIGINT ? "SIGINT" : "SIGTERM");
            sd_notify(0, "STOPPING=1");
            server.stop(config.shutdown_linger_ms);
            if (metrics) metrics->stop();
            watchdog.cancel();
        });
    };
    wait_signal();

    // Tests and scripts read the bound endpoints (port 0 resolved) from here.
    std::printf("botbusd ready command=%s feed=%s%s\n", server.command_endpoint().c_str(),
                server.feed_endpoint().c_str(), metrics ? (" metrics=" + metrics->endpoint()).c_str() : "");
    std::fflush(stdout);
    sd_notify(0, "READY=1");

    io.run();
    spdlog::info("closed cleanly at seq {}", store.last_seq());
    return 0;
}

}  // namespace

// A history or catch-up page is a few hundred KB to ~1 MiB of rows, reply
// and frame, allocated and freed for every page. glibc serves blocks that
// size from fresh mmaps, or trims them off the heap's top after the free,
// so each page paid its memory again in page faults: catch-up ran at
// 230-250k msg/s most runs and ~530k/s when glibc's self-tuning thresholds
// happened to settle. Fixed thresholds keep such blocks on the heap, and
// at most 8 MiB of free heap top resident.
void keep_page_buffers_mapped() {
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
}

int main(int argc, char* argv[]) {
    keep_page_buffers_mapped();
    std::optional<botbus::daemon::Config> config;
    try {
        auto parsed = botbus::daemon::parse_args(argc, argv);
        if (!parsed.config) return parsed.exit_code;
        config = std::move(parsed.config);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "botbusd: %s\n", e.what());
        return 2;
    }
    configure_logging(config->log_level);
    try {
        if (config->command == botbus::daemon::Command::rebuild) return botbus::daemon::rebuild(*config);
        if (config->command == botbus::daemon::Command::verify) return botbus::daemon::verify(*config);
        if (config->command == botbus::daemon::Command::restore) return botbus::daemon::restore(*config);
        return run(*config);
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return 1;
    }
}
