// botbusd's configuration: defaults, then the config file, then flags.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "bus/server/server.hpp"
#include "store/store.hpp"

namespace botbus::daemon {

enum class Command {
    serve,    // run the daemon (the default)
    rebuild,  // replay the log into fresh projections and compare them with the live ones
    verify,   // walk the log's hash chain (or check a backup copy: FILE) and report what is wrong
    restore,  // install a checked backup copy (FILE) as the data directory's database
};

struct Config {
    Command command = Command::serve;
    std::string data_dir = "botbus-data";
    // --store: empty for SQLite in the data directory, or a postgresql:// URI
    // (a PostgreSQL server that several nodes may share; docs/SCALING.md).
    std::string store;
    store::Durability durability = store::Durability::full;
    bus::ServerOptions server;
    std::string log_level = "info";
    int shutdown_linger_ms = 2000;
    std::string allowlist_path;  // --allowlist, re-read on SIGHUP (with --auth curve)
    bool insecure = false;       // --insecure: plaintext on a non-loopback endpoint, on purpose
    std::string metrics_endpoint;  // --metrics-endpoint host:port for /metrics, /healthz, /readyz; empty: off
    std::string file;              // verify FILE, restore FILE: a backup copy
};

// Whether a ZeroMQ endpoint can only be reached from this host: tcp on
// 127.x.x.x, [::1] or localhost, ipc:// and inproc://.
bool is_local_endpoint(const std::string& endpoint);

struct ParsedArgs {
    std::optional<Config> config;  // empty when the caller should exit (help, version)
    int exit_code = 0;
};

// Parses argv and the --config file. Throws std::runtime_error with a message
// naming the bad option (and the file) on invalid configuration.
ParsedArgs parse_args(int argc, const char* const argv[]);

}  // namespace botbus::daemon
