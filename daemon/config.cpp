#include "daemon/config.hpp"

#include "bus/protocol/vocabulary.hpp"

#include <boost/program_options.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <vector>

#include "client/curve_keys.hpp"

namespace botbus::daemon {
namespace po = boost::program_options;

namespace {

std::optional<store::Durability> parse_durability(const std::string& text) {
    if (text == "full") return store::Durability::full;
    if (text == "normal") return store::Durability::normal;
    return std::nullopt;
}

bool known_log_level(const std::string& level) {
    for (const char* known : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
        if (level == known) return true;
    }
    return false;
}

// libzmq bounds what it reads ahead per connection in messages only; sized
// from the largest frame, that bound holds in bytes too.
int default_recv_hwm(std::size_t max_frame) {
    constexpr std::size_t k_read_ahead_bytes = 64 * 1024 * 1024;
    return static_cast<int>(std::clamp<std::size_t>(k_read_ahead_bytes / max_frame, 16, 1000));
}

}  // namespace

bool is_local_endpoint(const std::string& endpoint) {
    if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
    if (endpoint.rfind("tcp://", 0) != 0) return false;
    const auto address = endpoint.substr(6);
    // A tcp endpoint may name the interface to bind before a ';'
    // (tcp://iface;host:port is connect-only, so only host:port is expected).
    if (address.rfind("127.", 0) == 0) return address.find(';') == std::string::npos;
    return address.rfind("[::1]:", 0) == 0 || address.rfind("localhost:", 0) == 0;
}

ParsedArgs parse_args(int argc, const char* const argv[]) {
    Config config;
    std::string durability = "full";
    std::string config_file;
    std::size_t max_frame = config.server.max_frame;
    std::size_t max_batch = config.server.max_batch;
    int send_hwm = config.server.send_hwm;
    int recv_hwm = 0;  // 0: derived from max_frame
    std::size_t max_peer_backlog = config.server.max_peer_backlog;
    std::int64_t lease_ms = config.server.lease_us / 1000;
    auto& messaging = config.server.messaging;
    std::int64_t ack_timeout_ms = messaging.delivery.ack_timeout_us / 1000;
    std::uint32_t max_deliveries = messaging.delivery.max_deliveries;
    std::size_t mailbox_window = messaging.delivery.window;
    std::uint64_t max_hops = messaging.max_hops;
    double rate_limit = 0;
    double rate_burst = 0;
    std::uint64_t retention_max_age_ms = 0;
    std::uint64_t retention_max_messages = 0;
    std::int64_t trim_interval_ms = config.server.trim_interval_us / 1000;
    std::string auth = "none";
    std::string server_key_path;
    std::vector<std::string> admins;
    std::string default_policy = "allow";

    po::options_description generic("botbusd options");
    generic.add_options()
        ("help,h", "show this help and exit")
        ("version", "show the version and exit")
        ("config,c", po::value(&config_file), "read options from this file (key = value lines)");
    po::options_description settings("settings (flags override the config file)");
    settings.add_options()
        ("data-dir,d", po::value(&config.data_dir)->default_value(config.data_dir),
         "directory holding botbus.db (created if missing)")
        ("store", po::value(&config.store)->value_name("URI"),
         "keep the log in PostgreSQL instead of SQLite: a postgresql://user@host/db URI (libpq's form; "
         "several botbusd nodes may share one, see docs/SCALING.md); default: SQLite in the data directory")
        ("command-endpoint", po::value(&config.server.command_endpoint)->default_value(config.server.command_endpoint),
         "ZeroMQ endpoint of the ROUTER command socket")
        ("feed-endpoint", po::value(&config.server.feed_endpoint)->default_value(config.server.feed_endpoint),
         "ZeroMQ endpoint of the PUB feed socket")
        ("backup-dir", po::value(&config.server.backup_dir)->value_name("DIR"),
         "where the backup op (botbus backup NAME) writes its copies; default: DATA_DIR/backups")
        ("metrics-endpoint", po::value(&config.metrics_endpoint),
         "host:port of the HTTP endpoint for Prometheus (/metrics) and health checks (/healthz, /readyz), e.g. "
         "127.0.0.1:9464; off unless given")
        ("durability", po::value(&durability)->default_value(durability),
         "full: acknowledged events survive power loss (fsync per batch); normal: survive a crash of botbusd")
        ("max-frame", po::value(&max_frame)->default_value(max_frame), "largest request frame in bytes")
        ("max-batch", po::value(&max_batch)->default_value(max_batch), "most requests committed in one transaction")
        ("send-hwm", po::value(&send_hwm)->default_value(send_hwm),
         "messages ZeroMQ queues for one command connection; past it botbusd holds replies back itself and "
         "leaves delivered subscriptions in the log until the connection drains")
        ("max-peer-backlog", po::value(&max_peer_backlog)->default_value(max_peer_backlog),
         "replies botbusd holds for one command connection past send-hwm; beyond it replies to that connection "
         "are dropped, counted (stats dropped_replies) and logged")
        ("max-peer-backlog-bytes",
         po::value(&config.server.max_peer_backlog_bytes)->default_value(config.server.max_peer_backlog_bytes),
         "the same bound in bytes")
        ("max-backlog-bytes", po::value(&config.server.max_backlog_bytes)->default_value(config.server.max_backlog_bytes),
         "bytes of replies botbusd holds for all slow connections together; beyond it replies are dropped")
        ("recv-hwm", po::value(&recv_hwm)->value_name("N"),
         "requests ZeroMQ reads ahead from one command connection; past it the connection waits (TCP backpressure). "
         "Default: as many max-frame requests as fit in 64 MiB, at least 16 and at most 1000 (64 with the default "
         "max-frame), so what is read ahead stays bounded in bytes")
        ("max-connections", po::value(&config.server.max_connections)->default_value(config.server.max_connections),
         "open command connections; a connection past it is closed at once (stats refused_connections)")
        ("max-connections-per-bot",
         po::value(&config.server.max_connections_per_bot)->default_value(config.server.max_connections_per_bot),
         "command connections one bot may hold (bound by hello); the hello past it is refused with limit_reached "
         "(stats refused_bot_connections)")
        ("max-subscriptions-per-bot",
         po::value(&messaging.max_subscriptions_per_bot)->default_value(messaging.max_subscriptions_per_bot),
         "channels one bot may be subscribed to (memberships, durable and live subscriptions); the subscribe past "
         "it is refused with limit_reached (stats refused_subscriptions)")
        ("max-in-flight", po::value(&config.server.max_in_flight)->default_value(config.server.max_in_flight),
         "requests one command connection may have received and not yet answered; a request past it is answered "
         "limit_reached without running (stats refused_in_flight)")
        ("max-feed-connections",
         po::value(&config.server.max_feed_connections)->default_value(config.server.max_feed_connections),
         "open feed connections; a connection past it is closed at once")
        ("max-feed-bytes", po::value(&config.server.max_feed_bytes)->default_value(config.server.max_feed_bytes),
         "bytes of feed events held for subscribers; past it subscribers that stopped reading are disconnected "
         "(stats feed_disconnects)")
        ("heartbeat-ms", po::value(&config.server.heartbeat_ms)->default_value(config.server.heartbeat_ms),
         "ZMTP heartbeat interval on command connections; a peer silent for three intervals is disconnected and "
         "its session freed; 0 turns heartbeats off")
        ("lease-ms", po::value(&lease_ms)->default_value(lease_ms),
         "a running workflow run without a heartbeat for this long is marked crashed")
        ("ack-timeout-ms", po::value(&ack_timeout_ms)->default_value(ack_timeout_ms),
         "a pushed direct message not acknowledged within this is delivered again")
        ("max-deliveries", po::value(&max_deliveries)->default_value(max_deliveries),
         "deliveries of a direct message without an acknowledgement before it is dead-lettered")
        ("mailbox-window", po::value(&mailbox_window)->default_value(mailbox_window),
         "unacknowledged direct messages pushed to each connection of a bot at a time (hello's credit overrides it)")
        ("max-hops", po::value(&max_hops)->default_value(max_hops),
         "answers (reply_to chains) deeper than this in one conversation are refused")
        ("rate-limit", po::value(&rate_limit)->default_value(rate_limit),
         "messages per second one bot may publish to one channel or send to one bot (0: no limit)")
        ("rate-burst", po::value(&rate_burst)->default_value(rate_burst),
         "messages a bot may send at once above the rate (0: one second's worth)")
        ("retention-max-age-ms", po::value(&retention_max_age_ms)->default_value(retention_max_age_ms),
         "channel and settled mailbox messages older than this are deleted (0: kept; channel.retention overrides)")
        ("retention-max-messages", po::value(&retention_max_messages)->default_value(retention_max_messages),
         "each channel and mailbox keeps at most this many messages (0: all; channel.retention overrides)")
        ("trim-interval-ms", po::value(&trim_interval_ms)->default_value(trim_interval_ms),
         "how often retention deletes a batch of old messages")
        ("admin", po::value(&admins)->composing()->value_name("BOT"),
         "a bot that may do everything, acl.* included (repeatable; flags and the config file add up)")
        ("default-policy", po::value(&default_policy)->default_value(default_policy),
         "allow or deny: what a channel no permission rule covers allows")
        ("log-level", po::value(&config.log_level)->default_value(config.log_level),
         "trace, debug, info, warn, error, critical or off")
        ("auth", po::value(&auth)->default_value(auth),
         "none: plaintext, any client may say hello as any bot; curve: both sockets take only CURVE clients "
         "whose key is on the allowlist, and a connection may say hello only as its key's bot")
        ("server-key", po::value(&server_key_path)->value_name("FILE"),
         "the daemon's CURVE key pair file (botbus keygen FILE); with --auth curve")
        ("allowlist", po::value(&config.allowlist_path)->value_name("FILE"),
         "the bots and their public keys, `bot = <Z85 key>` lines; with --auth curve; re-read on SIGHUP")
        ("insecure", po::bool_switch(&config.insecure),
         "allow --auth none on an endpoint other hosts can reach (anyone who reaches it can act as any bot)");

    std::string command = "serve";
    po::options_description hidden;
    hidden.add_options()("command", po::value(&command), "serve, rebuild, verify or restore")(
        "file", po::value(&config.file), "the backup copy of verify and restore");
    po::positional_options_description positional;
    positional.add("command", 1).add("file", 1);

    po::options_description all;
    all.add(generic).add(settings);
    po::options_description parsed_options;
    parsed_options.add(all).add(hidden);
    po::variables_map vm;
    std::set<std::string> from_file;  // settings whose value came from the config file
    try {
        po::store(po::command_line_parser(argc, argv).options(parsed_options).positional(positional).run(), vm);
        if (vm.count("config")) {
            const auto path = vm["config"].as<std::string>();
            // A directory opens as a stream that reads nothing: refuse it
            // rather than start without the settings it was meant to hold.
            std::error_code ec;
            if (std::filesystem::is_directory(path, ec)) {
                throw std::runtime_error("cannot read config file " + path + ": it is a directory");
            }
            std::ifstream file(path);
            if (!file) throw std::runtime_error("cannot read config file " + path);
            try {
                const auto parsed = po::parse_config_file(file, settings);
                // Flags win: a setting the command line gave keeps its value.
                for (const auto& option : parsed.options) {
                    if (!vm.count(option.string_key) || vm[option.string_key].defaulted()) {
                        from_file.insert(option.string_key);
                    }
                }
                po::store(parsed, vm);
            } catch (const po::error& e) {
                throw std::runtime_error("config file " + path + ": " + e.what());
            }
        }
        po::notify(vm);
    } catch (const po::error& e) {
        throw std::runtime_error(e.what());
    }
    if (vm.count("help")) {
        std::cout << "botbusd: the botbus message bus daemon\n\n"
                     "usage: botbusd [options]           serve (the default)\n"
                     "       botbusd rebuild [options]   replay the log into fresh projections and report\n"
                     "                                   whether they match the live ones (exit 1 if not)\n"
                     "       botbusd verify [options]    walk the log's hash chain and report the first\n"
                     "                                   broken or missing link (exit 1 if any)\n"
                     "       botbusd verify FILE         check a backup copy: integrity, migrations, hash\n"
                     "                                   chain, projections against a replay (exit 1 if not)\n"
                     "       botbusd restore FILE [options]\n"
                     "                                   with botbusd stopped: check FILE, move the data\n"
                     "                                   directory's database aside and install FILE\n\n"
                  << all << '\n';
        return {std::nullopt, 0};
    }
    if (vm.count("version")) {
        std::cout << "botbusd " << BOTBUS_VERSION << '\n';
        return {std::nullopt, 0};
    }
    // A setting refused after parsing, named, and located when it came
    // from the config file (flags are on the command line for all to see).
    const auto invalid = [&](const std::string& option, const std::string& problem) {
        auto message = option + " " + problem;
        if (from_file.contains(option)) message += " (in config file " + config_file + ")";
        return std::runtime_error(message);
    };
    if (command == "serve") {
        config.command = Command::serve;
    } else if (command == "rebuild") {
        config.command = Command::rebuild;
    } else if (command == "verify") {
        config.command = Command::verify;
    } else if (command == "restore") {
        config.command = Command::restore;
        if (config.file.empty()) throw std::runtime_error("restore needs the backup copy: botbusd restore FILE");
    } else {
        throw std::runtime_error("unknown command '" + command + "' (expected serve, rebuild, verify or restore)");
    }
    if (!config.file.empty() && config.command != Command::verify && config.command != Command::restore) {
        throw std::runtime_error("unexpected argument '" + config.file + "': only verify and restore take a FILE");
    }
    const auto parsed_durability = parse_durability(durability);
    if (!parsed_durability) throw invalid("durability", "must be 'full' or 'normal', not '" + durability + "'");
    config.durability = *parsed_durability;
    if (!known_log_level(config.log_level)) {
        throw invalid("log-level",
                      "must be trace, debug, info, warn, error, critical or off, not '" + config.log_level + "'");
    }
    if (max_frame < 64 || max_frame > 256U * 1024 * 1024) {
        throw invalid("max-frame", "must be between 64 bytes and 256 MiB");
    }
    if (max_batch < 1 || max_batch > 100000) throw invalid("max-batch", "must be between 1 and 100000");
    if (send_hwm < 1 || send_hwm > 1000000) throw invalid("send-hwm", "must be between 1 and 1000000");
    if (max_peer_backlog < 1 || max_peer_backlog > 10000000) {
        throw invalid("max-peer-backlog", "must be between 1 and 10000000");
    }
    constexpr std::size_t k_gib = 1024ULL * 1024 * 1024;
    if (config.server.max_peer_backlog_bytes < 1024 || config.server.max_peer_backlog_bytes > 64 * k_gib) {
        throw invalid("max-peer-backlog-bytes", "must be between 1 KiB and 64 GiB");
    }
    if (config.server.max_backlog_bytes < config.server.max_peer_backlog_bytes ||
        config.server.max_backlog_bytes > 64 * k_gib) {
        throw invalid("max-backlog-bytes", "must be between max-peer-backlog-bytes and 64 GiB");
    }
    if (vm.count("recv-hwm") && (recv_hwm < 1 || recv_hwm > 1000000)) {
        throw invalid("recv-hwm", "must be between 1 and 1000000");
    }
    config.server.recv_hwm = vm.count("recv-hwm") ? recv_hwm : default_recv_hwm(max_frame);
    if (config.server.max_connections < 1 || config.server.max_connections > 1000000) {
        throw invalid("max-connections", "must be between 1 and 1000000");
    }
    if (config.server.max_connections_per_bot < 1 || config.server.max_connections_per_bot > 1000000) {
        throw invalid("max-connections-per-bot", "must be between 1 and 1000000");
    }
    if (messaging.max_subscriptions_per_bot < 1 || messaging.max_subscriptions_per_bot > 10000000) {
        throw invalid("max-subscriptions-per-bot", "must be between 1 and 10000000");
    }
    if (config.server.max_in_flight < 1 || config.server.max_in_flight > 10000000) {
        throw invalid("max-in-flight", "must be between 1 and 10000000");
    }
    if (config.server.max_feed_connections < 1 || config.server.max_feed_connections > 1000000) {
        throw invalid("max-feed-connections", "must be between 1 and 1000000");
    }
    if (config.server.max_feed_bytes < 1024 * 1024 || config.server.max_feed_bytes > 64 * k_gib) {
        throw invalid("max-feed-bytes", "must be between 1 MiB and 64 GiB");
    }
    if (config.server.heartbeat_ms != 0 && (config.server.heartbeat_ms < 100 || config.server.heartbeat_ms > 3600000)) {
        throw invalid("heartbeat-ms", "must be 0 (off) or between 100 ms and 1 h");
    }
    if (config.data_dir.empty()) throw invalid("data-dir", "must not be empty");
    if (config.store == "sqlite") config.store.clear();
    if (!config.store.empty() && !config.store.starts_with("postgresql://") && !config.store.starts_with("postgres://")) {
        throw invalid("store", "must be sqlite or a postgresql:// URI, not '" + config.store + "'");
    }
    if (!vm.count("backup-dir")) config.server.backup_dir = (std::filesystem::path(config.data_dir) / "backups").string();
    if (config.server.backup_dir.empty()) throw invalid("backup-dir", "must not be empty");
    // Replies name the copy's path: absolute, so it means the same to whoever reads it.
    config.server.backup_dir = std::filesystem::absolute(config.server.backup_dir).lexically_normal().string();
    if (lease_ms < 10 || lease_ms > 24LL * 3600 * 1000) throw invalid("lease-ms", "must be between 10 ms and 24 h");
    config.server.lease_us = lease_ms * 1000;
    if (ack_timeout_ms < 10 || ack_timeout_ms > 24LL * 3600 * 1000) {
        throw invalid("ack-timeout-ms", "must be between 10 ms and 24 h");
    }
    if (max_deliveries < 1 || max_deliveries > 1000) throw invalid("max-deliveries", "must be between 1 and 1000");
    if (mailbox_window < 1 || mailbox_window > 100000) {
        throw invalid("mailbox-window", "must be between 1 and 100000");
    }
    if (max_hops < 1 || max_hops > 1000) throw invalid("max-hops", "must be between 1 and 1000");
    if (!(rate_limit == 0 || (rate_limit >= 0.001 && rate_limit <= 1e9))) {
        throw invalid("rate-limit", "must be 0 (no limit) or between 0.001 and 1e9 messages per second");
    }
    if (!(rate_burst >= 0 && rate_burst <= 1e9)) throw invalid("rate-burst", "must be between 0 and 1e9");
    messaging.delivery.ack_timeout_us = ack_timeout_ms * 1000;
    messaging.delivery.max_deliveries = max_deliveries;
    messaging.delivery.window = mailbox_window;
    messaging.max_hops = max_hops;
    messaging.rate_limit = bus::RateLimit{rate_limit, rate_burst};
    if (trim_interval_ms < 10 || trim_interval_ms > 3600LL * 1000) {
        throw invalid("trim-interval-ms", "must be between 10 ms and 1 h");
    }
    constexpr std::uint64_t k_most = 1ULL << 53;
    if (retention_max_age_ms > k_most) throw invalid("retention-max-age-ms", "must be at most 2^53");
    if (retention_max_messages > k_most) throw invalid("retention-max-messages", "must be at most 2^53");
    config.server.retention = store::RetentionLimits{retention_max_age_ms, retention_max_messages};
    config.server.trim_interval_us = trim_interval_ms * 1000;
    config.server.max_frame = max_frame;
    config.server.max_batch = max_batch;
    config.server.send_hwm = send_hwm;
    config.server.max_peer_backlog = max_peer_backlog;
    if (auth == "curve") {
        if (server_key_path.empty()) throw invalid("auth", "curve needs --server-key FILE (botbus keygen FILE)");
        if (config.allowlist_path.empty()) throw invalid("auth", "curve needs --allowlist FILE");
        try {
            const auto pair = client::read_key_pair(server_key_path);
            config.server.curve = bus::CurveServerOptions{pair.secret_key, client::read_allowlist(config.allowlist_path)};
        } catch (const std::runtime_error& e) {
            throw std::runtime_error(std::string(e.what()) + " (--auth curve)");
        }
    } else if (auth == "none") {
        if (!server_key_path.empty()) throw invalid("server-key", "is used only with --auth curve");
        if (!config.allowlist_path.empty()) throw invalid("allowlist", "is used only with --auth curve");
        if (config.command == Command::serve && !config.insecure) {
            for (const auto* endpoint : {&config.server.command_endpoint, &config.server.feed_endpoint}) {
                // Not an endpoint at all: the bind refuses it, naming it.
                if (endpoint->find("://") == std::string::npos) continue;
                if (!is_local_endpoint(*endpoint)) {
                    throw std::runtime_error("refusing to serve " + *endpoint +
                                             " without authentication: other hosts can reach it and act as any "
                                             "bot; use --auth curve (with --server-key and --allowlist), or "
                                             "--insecure to do it anyway");
                }
            }
        }
    } else {
        throw invalid("auth", "must be 'none' or 'curve', not '" + auth + "'");
    }
    for (const auto& admin : admins) {
        if (!bus::is_valid_name(admin)) throw invalid("admin", "must be a bot name (1 to 128 of A-Z a-z 0-9 . _ : -), not '" + admin + "'");
        messaging.acl.admins.insert(admin);
    }
    if (default_policy != "allow" && default_policy != "deny") {
        throw invalid("default-policy", "must be 'allow' or 'deny', not '" + default_policy + "'");
    }
    messaging.acl.default_allow = default_policy == "allow";
    messaging.acl.owners_only = !messaging.acl.default_allow || config.server.curve.has_value();
    return {config, 0};
}

}  // namespace botbus::daemon
