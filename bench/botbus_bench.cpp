// botbus-bench: starts the real botbusd (127.0.0.1, port 0, a fresh data dir
// per measurement, --durability full) and measures it over loopback:
//   1. acknowledged durable publish throughput (1x1, 1x1000 in flight, 16x64)
//   2. publish -> subscriber latency at fixed offered rates (open loop)
//   3. fan-out to 1/10/50 raw SUB subscribers, with loss counted by channel_seq
//   4. late-joiner catch-up of N stored messages through client::Subscription
//   5. workflow events (run.start, step.start/complete x k, run.complete)
//   6. memory: RSS idle and with many connected clients; DB bytes per message
// Each figure is the median of --reps repetitions. Prints a table and
// RESULT|section|name|unit|median|min|max|n|conditions lines (the format of
// ../shared/bench/peers). See bench/README.md.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_common.hpp"
#include "client/client.hpp"
#include "client/curve_keys.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace botbus;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;
using bench::secs_since;

// ------------------------------------------------------------------ options

struct Options {
    std::string botbusd = BOTBUSD_PATH;
    int reps = 3;
    std::uint64_t catchup_n = 1'000'000;
    double secs = 2.0;  // length of each time-bounded measurement
    bool smoke = false;
    std::string only;  // comma-separated scenario names; empty: all
    std::string tmpdir;
    int steps = 3;
    int mem_clients = 1000;
    std::size_t frame_bytes = 200;
    bool keep = false;
    bool curve = false;  // the throughput scenario again with --auth curve
    std::string section = "botbus";  // the RESULT lines' system name
    // The cluster scenario: a PostgreSQL server's URI (a fresh schema per
    // measurement), its postmaster's pid (whose processes' CPU is counted
    // with the daemons'), and the node counts to measure.
    std::string postgres;
    pid_t postgres_pid = 0;
    std::string nodes = "1,2,3";
};
Options g_opt;

bool wanted(const std::string& scenario) {
    if (g_opt.only.empty()) return true;
    return ("," + g_opt.only + ",").find("," + scenario + ",") != std::string::npos;
}

// ------------------------------------------------------------------ results

struct Figure {
    std::string name, unit;
    std::vector<double> samples;
    std::string cond;
};
std::vector<Figure> g_figures;
std::vector<std::string> g_failures;

void record(const std::string& name, const std::string& unit, double value, const std::string& cond) {
    for (auto& f : g_figures) {
        if (f.name == name) {
            f.samples.push_back(value);
            f.cond = cond;
            return;
        }
    }
    g_figures.push_back(Figure{name, unit, {value}, cond});
}

void fail(const std::string& what) {
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
    g_failures.push_back(what);
}

void check(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error(what);
}

// "%.<digits>f" of v.
std::string fmt(int digits, double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.*f", digits, v);
    return b;
}

// ------------------------------------------------------------------ the daemon

class TempDir {
public:
    TempDir() {
        std::string base = g_opt.tmpdir;
        if (base.empty()) {
            const char* t = std::getenv("TMPDIR");
            base = t && *t ? t : "/tmp";
        }
        std::string templ = base + "/botbus-bench-XXXXXX";
        if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp in " + base + ": " + std::strerror(errno));
        m_path = templ;
    }
    ~TempDir() {
        std::error_code ec;
        if (!g_opt.keep) fs::remove_all(m_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return m_path; }

private:
    fs::path m_path;
};

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

int wait_exit(pid_t pid, Millis deadline) {
    const auto until = Clock::now() + deadline;
    for (;;) {
        int status = 0;
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (done < 0 || Clock::now() >= until) return -1;
        ::poll(nullptr, 0, 5);
    }
}

// botbusd on a fresh data dir, loopback, port 0; endpoints from its ready line.
// With `curve_bots`, it runs with --auth curve and a key pair per bot.
class Daemon {
public:
    // `store`: a --store URI (PostgreSQL); SQLite in the data dir without.
    explicit Daemon(const std::vector<std::string>& curve_bots = {}, const std::string& store = {}) {
        m_data = m_dir.path() / "data";
        const auto err = m_dir.path() / "stderr";
        std::vector<std::string> args{g_opt.botbusd,       "--data-dir",      m_data.string(),
                                      "--command-endpoint", "tcp://127.0.0.1:*", "--feed-endpoint",
                                      "tcp://127.0.0.1:*", "--log-level",     "warn"};
        if (store.empty()) {
            args.insert(args.end(), {"--durability", "full"});
        } else {
            args.insert(args.end(), {"--store", store});
        }
        if (!curve_bots.empty()) {
            m_server = client::make_key_pair();
            client::write_key_pair(m_dir.path() / "server.key", m_server);
            std::ofstream allowlist(m_dir.path() / "allowlist");
            for (const auto& bot : curve_bots) {
                m_bots[bot] = client::make_key_pair();
                allowlist << bot << " = " << m_bots[bot].public_key << '\n';
            }
            allowlist.close();
            args.insert(args.end(), {"--auth", "curve", "--server-key", (m_dir.path() / "server.key").string(),
                                     "--allowlist", (m_dir.path() / "allowlist").string()});
        }
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int rc = ::posix_spawn(&m_pid, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(fds[1]);
        if (rc != 0) {
            ::close(fds[0]);
            throw std::runtime_error("cannot start " + g_opt.botbusd + ": " + std::strerror(rc));
        }
        const auto deadline = Clock::now() + std::chrono::seconds(20);
        std::string line;
        while (line.find('\n') == std::string::npos) {
            const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
            pollfd pfd{fds[0], POLLIN, 0};
            if (left <= 0 || ::poll(&pfd, 1, static_cast<int>(left)) <= 0) break;
            char buffer[512];
            const auto n = ::read(fds[0], buffer, sizeof buffer);
            if (n <= 0) break;
            line.append(buffer, static_cast<std::size_t>(n));
        }
        ::close(fds[0]);  // botbusd writes nothing else to stdout
        const auto c = line.find("command=");
        const auto f = line.find(" feed=");
        if (line.rfind("botbusd ready ", 0) != 0 || c == std::string::npos || f == std::string::npos) {
            kill_hard();
            throw std::runtime_error("botbusd did not become ready; stderr:\n" + read_text(err));
        }
        m_command = line.substr(c + 8, f - c - 8);
        m_feed = line.substr(f + 6, line.find('\n') - f - 6);
    }
    ~Daemon() { kill_hard(); }
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    client::ClientOptions client_options() const {
        client::ClientOptions o;
        o.command_endpoint = m_command;
        o.feed_endpoint = m_feed;
        o.timeout = Millis{20000};
        return o;
    }
    // The options of a bot with its own key, when the daemon authenticates.
    client::ClientOptions client_options(const std::string& bot) const {
        auto o = client_options();
        if (const auto pair = m_bots.find(bot); pair != m_bots.end()) {
            o.curve = client::CurveClientKeys{pair->second, m_server.public_key};
        }
        return o;
    }
    const std::string& feed() const { return m_feed; }
    const std::string& command() const { return m_command; }
    const fs::path& data_dir() const { return m_data; }

    // VmRSS in kB, from /proc/<pid>/status.
    double rss_mb() const {
        std::ifstream in("/proc/" + std::to_string(m_pid) + "/status");
        std::string key;
        while (in >> key) {
            if (key == "VmRSS:") {
                double kb = 0;
                in >> kb;
                return kb / 1024.0;
            }
            std::string rest;
            std::getline(in, rest);
        }
        return 0;
    }

    // User + system CPU seconds the daemon has used so far, from
    // /proc/<pid>/stat (fields 14 and 15, in clock ticks).
    double cpu_seconds() const { return bench::process_cpu_seconds(m_pid); }
    double write_bytes() const { return bench::process_write_bytes(m_pid); }

    // SIGTERM, wait; throws if it does not exit cleanly.
    void stop() {
        if (m_pid <= 0) return;
        ::kill(m_pid, SIGTERM);
        const int status = wait_exit(m_pid, Millis{30000});
        if (status < 0) {
            kill_hard();
            throw std::runtime_error("botbusd did not exit within 30 s of SIGTERM");
        }
        m_pid = -1;
        if (status != 0) {
            throw std::runtime_error("botbusd exited with status " + std::to_string(status) + "; stderr:\n" +
                                     read_text(m_dir.path() / "stderr"));
        }
    }

private:
    void kill_hard() {
        if (m_pid <= 0) return;
        ::kill(m_pid, SIGKILL);
        wait_exit(m_pid, Millis{20000});
        m_pid = -1;
    }

    TempDir m_dir;
    fs::path m_data;
    pid_t m_pid = -1;
    std::string m_command, m_feed;
    client::CurveKeyPair m_server;
    std::map<std::string, client::CurveKeyPair> m_bots;
};

// ------------------------------------------------------------------ requests

std::string g_body;  // body string so the publish frame is frame_bytes long

std::string make_body_for_frame(const std::string& channel) {
    // Frame = encode_request(publish{channel, body}, id). The id is a u64
    // that may take up to 9 bytes; measure with a large one.
    std::string body(100, 'x');
    const auto frame_len = [&](const std::string& b) {
        bus::PublishRequest p;
        p.channel = channel;
        p.body = bus::pack_as_value(b);
        return bus::encode_request(bus::Request{p}, bus::pack_as_value(std::uint64_t{1} << 40)).size();
    };
    const std::size_t overhead = frame_len(body) - body.size();
    const std::size_t want = g_opt.frame_bytes > overhead + 40 ? g_opt.frame_bytes - overhead : 40;
    body.assign(want, 'x');
    return body;
}

bus::Request publish_request(const std::string& channel, const std::string& body) {
    bus::PublishRequest p;
    p.channel = channel;
    p.body = bus::pack_as_value(body);
    return bus::Request{p};
}

std::string body_cond() {
    return "body " + std::to_string(g_body.size() + 2) + " B (msgpack str), request frame ~" +
           std::to_string(g_opt.frame_bytes) + " B";
}

// Pipelines requests on one client: at most `window` in flight; sends until
// `count` sent or `stop_sending`; collects replies until all are in or
// `hard_deadline`.
struct PipeStats {
    std::uint64_t sent = 0, ok = 0, failed = 0;
    std::string first_error;
    Clock::time_point last_reply{};
};

PipeStats pipeline(client::Client& c, std::uint64_t count, std::uint64_t window, Clock::time_point stop_sending,
                   Clock::time_point hard_deadline, const std::function<const bus::Request&(std::uint64_t)>& make) {
    PipeStats s;
    std::uint64_t inflight = 0;
    for (;;) {
        const auto now = Clock::now();
        if (now >= hard_deadline) break;
        bool can_send = s.sent < count && now < stop_sending;
        while (can_send && inflight < window) {
            c.send_request(make(s.sent));
            ++s.sent;
            ++inflight;
            can_send = s.sent < count;
        }
        if (inflight == 0 && !can_send) break;
        auto r = c.receive_reply(Millis{inflight >= window || !can_send ? 20 : 0});
        while (r) {
            --inflight;
            if (r->ok) {
                ++s.ok;
            } else {
                ++s.failed;
                if (s.first_error.empty()) s.first_error = r->error_name + ": " + r->message;
            }
            s.last_reply = Clock::now();
            r = inflight ? c.receive_reply(Millis{0}) : std::nullopt;
        }
    }
    return s;
}

void check_pipe(const PipeStats& s, const std::string& what) {
    check(s.failed == 0, what + ": " + std::to_string(s.failed) + " error replies, first: " + s.first_error);
    check(s.ok == s.sent, what + ": " + std::to_string(s.sent - s.ok) + " requests unanswered by the deadline");
}

// Feed event fields the benchmark reads.
struct FeedFields {
    std::uint64_t channel_seq = 0;
    std::string_view body;  // the str payload of a str body
};

bool parse_event(const zmq::message_t& frame, msgpack::object_handle& handle, FeedFields& out) {
    try {
        handle = msgpack::unpack(static_cast<const char*>(frame.data()), frame.size());
    } catch (const std::exception&) {
        return false;
    }
    const auto& root = handle.get();
    if (root.type != msgpack::type::MAP) return false;
    for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
        const auto& kv = root.via.map.ptr[i];
        if (kv.key.type != msgpack::type::STR) continue;
        const std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
        if (key == "channel_seq" && kv.val.type == msgpack::type::POSITIVE_INTEGER) out.channel_seq = kv.val.via.u64;
        if (key == "body" && kv.val.type == msgpack::type::STR) out.body = {kv.val.via.str.ptr, kv.val.via.str.size};
    }
    return out.channel_seq != 0;
}

// Calls feed.sync(token) every 100 ms until `done()` or 15 s.
void sync_until(client::Client& c, const std::string& token, const std::function<bool()>& done) {
    const auto deadline = Clock::now() + std::chrono::seconds(15);
    while (!done()) {
        check(Clock::now() < deadline, "feed.sync marker not seen by every subscriber within 15 s");
        c.call_ok(bus::FeedSyncRequest{token});
        for (int i = 0; i < 20 && !done(); ++i) std::this_thread::sleep_for(Millis{5});
    }
}

// ------------------------------------------------------------------ 1. throughput

// "; N requests per batch, M per sync" from the daemon's stats, over its
// life; empty for a server that has no stats op (the floors).
std::string batching_of(const Daemon& d, const std::string& bot) {
    try {
        zmq::context_t ctx(1);
        client::Client c(ctx, bot.empty() ? d.client_options() : d.client_options(bot));
        const auto stats = c.call_ok(bus::StatsRequest{});
        const auto figure = [&](const char* key) {
            const auto* v = stats.find(key);
            return v && v->type == msgpack::type::POSITIVE_INTEGER ? static_cast<double>(v->via.u64) : 0.0;
        };
        const double requests = figure("requests"), batches = figure("batches"), syncs = figure("syncs");
        if (batches == 0) return "";
        return "; " + fmt(0, requests / batches) + " requests per batch, " +
               (syncs > 0 ? fmt(0, requests / syncs) : std::string("-")) + " per sync";
    } catch (const std::exception&) {
        return "";
    }
}

void scenario_throughput() {
    struct Config {
        int clients;
        std::uint64_t window;
    };
    const Config configs[] = {{1, 1}, {1, 1000}, {16, 64}};
    const double secs = g_opt.smoke ? 0.0 : g_opt.secs;
    const std::uint64_t per_client_cap = g_opt.smoke ? 200 : 20'000'000;
    // With --curve each figure is measured again with CURVE on (both
    // sockets encrypted, one key per client), printed beside the plain one.
    std::vector<bool> modes{false};
    if (g_opt.curve) modes.push_back(true);
    for (const bool curve : modes)
    for (const auto& cfg : configs) {
        const std::string name = "publish " + std::to_string(cfg.clients) + (cfg.clients == 1 ? " client x " : " clients x ") +
                                 std::to_string(cfg.window) + " in flight" + (curve ? " (CURVE)" : "");
        std::vector<std::string> bots;
        for (int i = 0; curve && i < cfg.clients; ++i) bots.push_back("tp-" + std::to_string(i));
        for (int rep = 0; rep < g_opt.reps; ++rep) {
            Daemon d(bots);
            const auto req = publish_request("tp", g_body);
            std::vector<PipeStats> results(static_cast<std::size_t>(cfg.clients));
            std::vector<std::string> errors(static_cast<std::size_t>(cfg.clients));
            std::latch ready(cfg.clients + 1), go(1);
            std::atomic<std::int64_t> start_ns{0};
            std::vector<std::thread> threads;
            for (int i = 0; i < cfg.clients; ++i) {
                threads.emplace_back([&, i] {
                    const auto ui = static_cast<std::size_t>(i);
                    bool counted = false;
                    try {
                        zmq::context_t ctx(1);
                        client::Client c(ctx, d.client_options("tp-" + std::to_string(i)));
                        c.hello("tp-" + std::to_string(i));
                        ready.count_down();
                        counted = true;
                        go.wait();
                        const Clock::time_point t0{Clock::duration{start_ns.load()}};
                        std::this_thread::sleep_until(t0);
                        const auto stop = g_opt.smoke ? Clock::time_point::max()
                                                      : t0 + std::chrono::duration_cast<Clock::duration>(
                                                                 std::chrono::duration<double>(secs));
                        results[ui] = pipeline(c, per_client_cap, cfg.window, stop, t0 + std::chrono::seconds(120),
                                               [&](std::uint64_t) -> const bus::Request& { return req; });
                    } catch (const std::exception& e) {
                        errors[ui] = e.what();
                        if (!counted) {
                            ready.count_down();
                            go.wait();
                        }
                    }
                });
            }
            ready.arrive_and_wait();  // every client has its hello answered
            const double server_cpu0 = d.cpu_seconds(), client_cpu0 = bench::own_cpu_seconds(),
                         written0 = d.write_bytes();
            start_ns = Clock::now().time_since_epoch().count() + 5'000'000;  // all start 5 ms from now
            go.count_down();
            for (auto& t : threads) t.join();
            const double server_cpu = d.cpu_seconds() - server_cpu0, client_cpu = bench::own_cpu_seconds() - client_cpu0,
                         written = d.write_bytes() - written0;
            const Clock::time_point t0{Clock::duration{start_ns.load()}};
            std::uint64_t ok = 0;
            Clock::time_point last = t0;
            for (std::size_t i = 0; i < results.size(); ++i) {
                check(errors[i].empty(), name + ": client " + std::to_string(i) + ": " + errors[i]);
                check_pipe(results[i], name);
                ok += results[i].ok;
                last = std::max(last, results[i].last_reply);
            }
            const auto grouping = batching_of(d, curve ? "tp-0" : "");
            d.stop();
            const double elapsed = std::chrono::duration<double>(last - t0).count();
            const double rate = elapsed > 0 ? static_cast<double>(ok) / elapsed : 0;
            const double server_us = ok ? server_cpu * 1e6 / static_cast<double>(ok) : 0;
            const double client_us = ok ? client_cpu * 1e6 / static_cast<double>(ok) : 0;
            const double written_per = ok ? written / static_cast<double>(ok) : 0;
            std::fprintf(stderr, "  %s rep %d: %llu acked in %.2f s = %.0f msg/s; CPU per publish: server %.2f us, clients %.2f us; written %.0f B per publish%s\n",
                         name.c_str(), rep, static_cast<unsigned long long>(ok), elapsed, rate, server_us, client_us,
                         written_per, grouping.c_str());
            const std::string cond = std::string(curve ? "CURVE (--auth curve), " : "") +
                                     "acked durable publishes (durability full), " + std::to_string(cfg.clients) +
                                     " DEALER client(s) (own zmq context each), " + std::to_string(cfg.window) +
                                     " requests in flight per client, " + body_cond() + ", one channel, " +
                                     (g_opt.smoke ? std::string("smoke: 200 per client") : fmt(1, secs) + " s of sending") +
                                     ", fresh data dir per rep";
            record(name, "msg/s", rate, cond);
            // The drift-proof figure: CPU seconds over the measured interval
            // divided by the publishes acknowledged in it (the same as the
            // Redis peer's "server CPU per XADD").
            record("server CPU per " + name, "us", server_us,
                   cond + " (botbusd user+sys from /proc/PID/stat over the run, divided by acked publishes)");
            record("server bytes written per " + name, "B", written_per,
                   cond + " (botbusd's /proc/PID/io write_bytes over the run: WAL, checkpoints, seq record, divided "
                          "by acked publishes)");
            record("client CPU per " + name, "us", client_us,
                   cond + " (botbus-bench's own user+sys over the run, divided by acked publishes)");
        }
    }
}

// ------------------------------------------------------------------ cluster

// User + system CPU seconds of a process and its children alive now (the
// PostgreSQL postmaster and its backends).
double process_tree_cpu_seconds(pid_t root) {
    double total = bench::process_cpu_seconds(root);
    for (const auto& entry : fs::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::ifstream in(entry.path() / "stat");
        std::string stat;
        std::getline(in, stat);
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream rest(stat.substr(close + 2));
        std::string state;
        long parent = 0;
        rest >> state >> parent;
        if (parent == root) total += bench::process_cpu_seconds(static_cast<pid_t>(std::stol(name)));
    }
    return total;
}

// A schema of its own on the PostgreSQL server per measurement: the URI of it.
std::string fresh_schema_store() {
    static int made = 0;
    const auto schema = "bench_" + std::to_string(::getpid()) + "_" + std::to_string(++made);
    const auto command = "psql -q -v ON_ERROR_STOP=1 '" + g_opt.postgres + "' -c 'CREATE SCHEMA " + schema + "'";
    check(std::system(command.c_str()) == 0, "cannot create schema " + schema + " with psql");
    return g_opt.postgres + (g_opt.postgres.find('?') == std::string::npos ? "?" : "&") +
           "options=-csearch_path%3D" + schema;
}

// How long a direct message sent through node 0 takes to be pushed to its
// bot on node 1 (the send's commit, the wake-up of node 1, its read and
// push), one at a time on an idle cluster: microseconds per message.
std::vector<double> cross_node_hops(Daemon& from, Daemon& to, std::uint64_t count) {
    // A receiver of its own each call: a mailbox stays with the node that
    // served it until that node lets it go (SCALING.md).
    static int calls = 0;
    const auto receiver = "hop-receiver-" + std::to_string(++calls);
    zmq::context_t ctx(1);
    client::Client alice(ctx, from.client_options());
    alice.hello("hop-sender");
    client::Client bob(ctx, to.client_options());
    bob.hello(receiver);
    std::vector<double> us;
    us.reserve(count);
    const auto body = bus::pack_as_value(g_body);
    for (std::uint64_t i = 0; i < count; ++i) {
        const auto t0 = Clock::now();
        const auto sent = alice.send(receiver, body);
        const auto push = bob.next_push(std::chrono::milliseconds(5000));
        check(push && push->seq == sent.seq, "cross-node hop: the push did not come within 5 s");
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        bob.ack(std::nullopt, {push->seq});
    }
    return us;
}

// Publish throughput and server CPU per message of 1, 2, 3 nodes on one
// PostgreSQL log (16 clients x 64 in flight, spread over the nodes), and of
// one node on SQLite under the same load. The server CPU is every daemon's
// plus, on PostgreSQL, the database server's: what a message costs the
// machines that serve it.
void scenario_cluster() {
    constexpr int k_clients = 16;
    constexpr std::uint64_t k_window = 64;
    std::vector<std::pair<std::string, int>> setups{{"sqlite", 1}};
    if (!g_opt.postgres.empty()) {
        std::istringstream list(g_opt.nodes);
        for (std::string n; std::getline(list, n, ',');) setups.emplace_back("postgresql", std::stoi(n));
    }
    const double secs = g_opt.smoke ? 0.0 : g_opt.secs;
    const std::uint64_t per_client_cap = g_opt.smoke ? 200 : 20'000'000;
    for (const auto& [engine, nodes] : setups) {
        const std::string name = engine + " " + std::to_string(nodes) + (nodes == 1 ? " node" : " nodes") +
                                 ", publish 16 clients x 64 in flight";
        for (int rep = 0; rep < g_opt.reps; ++rep) {
            const auto store = engine == "sqlite" ? std::string() : fresh_schema_store();
            std::vector<std::unique_ptr<Daemon>> daemons;
            for (int n = 0; n < nodes; ++n) daemons.push_back(std::make_unique<Daemon>(std::vector<std::string>{}, store));
            const auto req = publish_request("tp", g_body);
            std::vector<PipeStats> results(k_clients);
            std::vector<std::string> errors(k_clients);
            std::latch ready(k_clients + 1), go(1);
            std::atomic<std::int64_t> start_ns{0};
            std::vector<std::thread> threads;
            for (int i = 0; i < k_clients; ++i) {
                threads.emplace_back([&, i] {
                    const auto ui = static_cast<std::size_t>(i);
                    bool counted = false;
                    try {
                        zmq::context_t ctx(1);
                        client::Client c(ctx, daemons[static_cast<std::size_t>(i % nodes)]->client_options());
                        c.hello("tp-" + std::to_string(i));
                        ready.count_down();
                        counted = true;
                        go.wait();
                        const Clock::time_point t0{Clock::duration{start_ns.load()}};
                        std::this_thread::sleep_until(t0);
                        const auto stop = g_opt.smoke ? Clock::time_point::max()
                                                      : t0 + std::chrono::duration_cast<Clock::duration>(
                                                                 std::chrono::duration<double>(secs));
                        results[ui] = pipeline(c, per_client_cap, k_window, stop, t0 + std::chrono::seconds(120),
                                               [&](std::uint64_t) -> const bus::Request& { return req; });
                    } catch (const std::exception& e) {
                        errors[ui] = e.what();
                        if (!counted) {
                            ready.count_down();
                            go.wait();
                        }
                    }
                });
            }
            ready.arrive_and_wait();
            const auto daemons_cpu = [&] {
                double total = 0;
                for (const auto& d : daemons) total += d->cpu_seconds();
                return total;
            };
            const auto database_cpu = [&] {
                return engine == "sqlite" || g_opt.postgres_pid <= 0 ? 0.0 : process_tree_cpu_seconds(g_opt.postgres_pid);
            };
            const double daemons0 = daemons_cpu(), database0 = database_cpu();
            start_ns = Clock::now().time_since_epoch().count() + 5'000'000;
            go.count_down();
            for (auto& t : threads) t.join();
            const double daemons_used = daemons_cpu() - daemons0, database_used = database_cpu() - database0;
            const Clock::time_point t0{Clock::duration{start_ns.load()}};
            std::uint64_t ok = 0;
            Clock::time_point last = t0;
            for (std::size_t i = 0; i < results.size(); ++i) {
                check(errors[i].empty(), name + ": client " + std::to_string(i) + ": " + errors[i]);
                check_pipe(results[i], name);
                ok += results[i].ok;
                last = std::max(last, results[i].last_reply);
            }
            std::vector<double> hops, local_hops;
            if (nodes >= 2) {
                hops = cross_node_hops(*daemons[0], *daemons[1], g_opt.smoke ? 20 : 500);
                local_hops = cross_node_hops(*daemons[0], *daemons[0], g_opt.smoke ? 20 : 500);
            }
            for (auto& d : daemons) d->stop();
            const double elapsed = std::chrono::duration<double>(last - t0).count();
            const double rate = elapsed > 0 ? static_cast<double>(ok) / elapsed : 0;
            const double per = ok ? 1e6 / static_cast<double>(ok) : 0;
            if (!hops.empty()) {
                const double p50 = bench::percentile(hops, 50), p99 = bench::percentile(hops, 99);
                const double local_p50 = bench::percentile(local_hops, 50);
                std::fprintf(stderr, "  %s rep %d: a direct message sent through node 0 pushed on node 1: p50 %.0f us "
                             "p99 %.0f us (on node 0 itself: p50 %.0f us; %zu, one at a time)\n", name.c_str(), rep,
                             p50, p99, local_p50, hops.size());
                const std::string hop_cond =
                    "a direct message sent through node 0 to a bot on node 1, one at a time after the load, from the "
                    "send to the push (its commit, node 1's wake-up, read and push), " +
                    std::to_string(hops.size()) + " of them";
                record("cross-node hop p50, " + std::to_string(nodes) + " nodes", "us", p50, hop_cond);
                record("cross-node hop p99, " + std::to_string(nodes) + " nodes", "us", p99, hop_cond);
                record("same-node hop p50, " + std::to_string(nodes) + " nodes", "us", local_p50,
                       "as the cross-node hop, with the bot on node 0 too");
            }
            std::fprintf(stderr,
                         "  %s rep %d: %llu acked in %.2f s = %.0f msg/s; CPU per publish: daemons %.1f us, "
                         "database %.1f us\n",
                         name.c_str(), rep, static_cast<unsigned long long>(ok), elapsed, rate, daemons_used * per,
                         database_used * per);
            const std::string cond =
                "acked durable publishes (" +
                std::string(engine == "sqlite" ? "SQLite, durability full"
                                               : "PostgreSQL on a Unix socket, synchronous_commit on, fsync on") +
                "), " + std::to_string(nodes) + " botbusd node(s) on one log, 16 DEALER clients spread over them, 64 "
                "in flight each, " + body_cond() + ", one channel, " +
                (g_opt.smoke ? std::string("smoke") : fmt(1, secs) + " s of sending") + ", fresh log per rep, " +
                std::to_string(std::thread::hardware_concurrency()) + " cores shared by clients, daemons and database";
            record(name, "msg/s", rate, cond);
            record("daemons CPU per " + name, "us", daemons_used * per,
                   cond + " (every botbusd's user+sys over the run, divided by acked publishes)");
            if (engine != "sqlite") {
                record("database CPU per " + name, "us", database_used * per,
                       cond + " (the postmaster's and its backends' user+sys over the run, divided by acked publishes)");
                record("server CPU per " + name, "us", (daemons_used + database_used) * per,
                       cond + " (daemons plus database)");
            } else {
                record("server CPU per " + name, "us", daemons_used * per, cond + " (the daemon)");
            }
        }
    }
}

// ------------------------------------------------------------------ 2. latency

void scenario_latency() {
    const double rates[] = {1000, 10000, 50000};
    for (const double rate : rates) {
        const auto n = g_opt.smoke ? std::uint64_t{200} : static_cast<std::uint64_t>(rate * g_opt.secs);
        const std::string at = " @" + fmt(0, rate) + "/s";
        for (int rep = 0; rep < g_opt.reps; ++rep) {
            Daemon d;
            zmq::context_t sub_ctx(1);
            std::vector<double> lat_us;
            lat_us.reserve(n);
            std::atomic<bool> synced{false}, stop{false};
            std::atomic<std::uint64_t> delivered{0};
            Clock::time_point last_delivery{};
            std::string sub_error;
            std::thread sub([&] {
                try {
                    zmq::socket_t s(sub_ctx, zmq::socket_type::sub);
                    s.set(zmq::sockopt::linger, 0);
                    s.set(zmq::sockopt::rcvhwm, 0);
                    s.set(zmq::sockopt::subscribe, bus::channel_topic("lat"));
                    s.set(zmq::sockopt::subscribe, bus::sync_topic("lat-sync"));
                    s.connect(d.feed());
                    std::vector<bool> seen(n + 1);
                    while (!stop.load() && delivered.load() < n) {
                        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
                        if (zmq::poll(&item, 1, Millis{50}) == 0) continue;
                        zmq::message_t topic, body;
                        while (s.recv(topic, zmq::recv_flags::dontwait)) {
                            const auto got = s.recv(body, zmq::recv_flags::none);
                            const auto now = Clock::now();
                            if (!got) break;
                            if (topic.to_string_view().rfind("sync/", 0) == 0) {
                                synced = true;
                                continue;
                            }
                            msgpack::object_handle h;
                            FeedFields f;
                            if (!parse_event(body, h, f) || f.channel_seq > n || seen[f.channel_seq]) continue;
                            seen[f.channel_seq] = true;
                            const auto sent_ns = std::strtoll(std::string(f.body.substr(0, 20)).c_str(), nullptr, 10);
                            lat_us.push_back(static_cast<double>(now.time_since_epoch().count() - sent_ns) / 1000.0);
                            last_delivery = now;
                            ++delivered;
                        }
                    }
                } catch (const std::exception& e) {
                    sub_error = e.what();
                }
            });
            std::string error;
            PipeStats ps;
            Clock::time_point t0{};
            bool lagged = false;
            double max_lag_ms = 0;
            try {
                zmq::context_t ctx(1);
                client::Client c(ctx, d.client_options());
                c.hello("lat-pub");
                sync_until(c, "lat-sync", [&] { return synced.load(); });
                const auto period = std::chrono::duration<double>(1.0 / rate);
                t0 = Clock::now() + Millis{5};
                const auto sched = [&](std::uint64_t i) {
                    return t0 + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
                };
                const auto hard = sched(n) + std::chrono::seconds(30);
                std::uint64_t inflight = 0;
                std::string body = g_body;
                bus::PublishRequest p;
                p.channel = "lat";
                while (Clock::now() < hard) {
                    auto now = Clock::now();
                    while (ps.sent < n && sched(ps.sent) <= now && inflight < 100000) {
                        max_lag_ms = std::max(max_lag_ms, std::chrono::duration<double, std::milli>(now - sched(ps.sent)).count());
                        char stamp[32];
                        std::snprintf(stamp, sizeof stamp, "%020lld",
                                      static_cast<long long>(Clock::now().time_since_epoch().count()));
                        std::memcpy(body.data(), stamp, 20);
                        p.body = bus::pack_as_value(body);
                        c.send_request(bus::Request{p});
                        ++ps.sent;
                        ++inflight;
                        now = Clock::now();
                    }
                    while (inflight) {
                        auto r = c.receive_reply(Millis{0});
                        if (!r) break;
                        --inflight;
                        if (r->ok) ++ps.ok;
                        else if (++ps.failed == 1) ps.first_error = r->error_name + ": " + r->message;
                    }
                    if (ps.sent >= n && inflight == 0) break;
                    if (ps.sent < n) {
                        const auto next = std::min(sched(ps.sent), Clock::now() + Millis{1});
                        std::this_thread::sleep_until(next);
                    } else if (auto r = c.receive_reply(Millis{20})) {
                        --inflight;
                        if (r->ok) ++ps.ok;
                        else if (++ps.failed == 1) ps.first_error = r->error_name + ": " + r->message;
                    }
                }
                // Wait for the subscriber to see everything (bounded).
                const auto until = Clock::now() + std::chrono::seconds(10);
                while (delivered.load() < n && Clock::now() < until) std::this_thread::sleep_for(Millis{2});
            } catch (const std::exception& e) {
                error = e.what();
            }
            stop = true;
            sub.join();
            check(error.empty(), "latency" + at + ": " + error);
            check(sub_error.empty(), "latency" + at + " subscriber: " + sub_error);
            check_pipe(ps, "latency" + at);
            check(delivered.load() == n, "latency" + at + ": subscriber got " + std::to_string(delivered.load()) +
                                             " of " + std::to_string(n));
            const auto grouping = batching_of(d, "") + "; written " + fmt(0, d.write_bytes() / static_cast<double>(n)) +
                                  " B per message";
            d.stop();
            lagged = max_lag_ms > 100;
            const double span = std::chrono::duration<double>(last_delivery - t0).count();
            const double achieved = span > 0 ? static_cast<double>(n) / span : 0;
            // Sustained: everything delivered at >= 90% of the offered rate and the sender never fell 100 ms behind.
            const bool sustained = !g_opt.smoke ? (achieved >= 0.9 * rate && !lagged) : true;
            const double p50 = bench::percentile(lat_us, 50), p99 = bench::percentile(lat_us, 99),
                         p999 = bench::percentile(lat_us, 99.9);
            std::fprintf(stderr, "  latency%s rep %d: p50 %.0f us p99 %.0f us p99.9 %.0f us, achieved %.0f/s%s%s\n",
                         at.c_str(), rep, p50, p99, p999, achieved, sustained ? "" : " NOT SUSTAINED", grouping.c_str());
            const std::string cond = "offered " + fmt(0, rate) + " msg/s open loop (steady_clock schedule), " +
                                     std::to_string(n) + " msgs, 1 publisher (pipelined, replies read as they come), " +
                                     "1 raw SUB on ch/lat/ (feed.sync handshake), latency = SUB receive - send time " +
                                     "carried in the body, durability full, " + body_cond() +
                                     (g_opt.smoke ? std::string(", smoke (rate not judged)")
                                      : sustained ? std::string(", sustained")
                                                : ", NOT SUSTAINED (achieved " + fmt(0, achieved) +
                                                      " msg/s, sender max lag " + fmt(1, max_lag_ms) + " ms)");
            record("latency p50" + at, "us", p50, cond);
            record("latency p99" + at, "us", p99, cond);
            record("latency p99.9" + at, "us", p999, cond);
            record("latency achieved rate" + at, "msg/s", achieved, cond);
        }
    }
}

// ------------------------------------------------------------------ 3. fan-out

void scenario_fanout() {
    const int subs_list[] = {1, 10, 50};
    for (const int nsubs : subs_list) {
        const std::uint64_t cap = g_opt.smoke ? 200 : (nsubs == 1 ? 400'000 : nsubs == 10 ? 200'000 : 40'000);
        const std::string name = "fanout " + std::to_string(nsubs) + " subs";
        for (int rep = 0; rep < g_opt.reps; ++rep) {
            Daemon d;
            zmq::context_t sub_ctx(2);
            std::atomic<int> synced{0};
            std::atomic<bool> stop{false};
            std::atomic<std::uint64_t> total{UINT64_MAX};
            struct SubResult {
                std::uint64_t unique = 0, dupes = 0;
                Clock::time_point last{};
                std::string error;
            };
            std::vector<SubResult> res(static_cast<std::size_t>(nsubs));
            std::vector<std::thread> threads;
            for (int i = 0; i < nsubs; ++i) {
                threads.emplace_back([&, i] {
                    auto& r = res[static_cast<std::size_t>(i)];
                    try {
                        zmq::socket_t s(sub_ctx, zmq::socket_type::sub);
                        s.set(zmq::sockopt::linger, 0);
                        s.set(zmq::sockopt::rcvhwm, 0);
                        s.set(zmq::sockopt::subscribe, bus::channel_topic("fan"));
                        s.set(zmq::sockopt::subscribe, bus::sync_topic("fan-sync"));
                        s.connect(d.feed());
                        std::vector<bool> seen(cap + 1);
                        bool is_synced = false;
                        while (!stop.load() && r.unique < total.load()) {
                            zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
                            if (zmq::poll(&item, 1, Millis{20}) == 0) continue;
                            zmq::message_t topic, body;
                            while (s.recv(topic, zmq::recv_flags::dontwait)) {
                                if (!s.recv(body, zmq::recv_flags::none)) break;
                                if (topic.to_string_view().rfind("sync/", 0) == 0) {
                                    if (!is_synced) ++synced;
                                    is_synced = true;
                                    continue;
                                }
                                msgpack::object_handle h;
                                FeedFields f;
                                if (!parse_event(body, h, f) || f.channel_seq > cap) continue;
                                if (seen[f.channel_seq]) {
                                    ++r.dupes;
                                    continue;
                                }
                                seen[f.channel_seq] = true;
                                ++r.unique;
                                r.last = Clock::now();
                            }
                        }
                    } catch (const std::exception& e) {
                        r.error = e.what();
                    }
                });
            }
            std::string error;
            PipeStats ps;
            Clock::time_point t0{};
            try {
                zmq::context_t ctx(1);
                client::Client c(ctx, d.client_options());
                c.hello("fan-pub");
                sync_until(c, "fan-sync", [&] { return synced.load() == nsubs; });
                const auto req = publish_request("fan", g_body);
                t0 = Clock::now();
                const auto stop_sending = g_opt.smoke ? Clock::time_point::max()
                                                      : t0 + std::chrono::duration_cast<Clock::duration>(
                                                                 std::chrono::duration<double>(g_opt.secs));
                ps = pipeline(c, cap, 1000, stop_sending, t0 + std::chrono::seconds(120),
                              [&](std::uint64_t) -> const bus::Request& { return req; });
                total = ps.ok;
                const auto until = Clock::now() + std::chrono::seconds(15);
                for (;;) {
                    bool all = true;
                    for (auto& r : res) all = all && (r.unique >= ps.ok || !r.error.empty());
                    if (all || Clock::now() >= until) break;
                    std::this_thread::sleep_for(Millis{5});
                }
            } catch (const std::exception& e) {
                error = e.what();
            }
            stop = true;
            for (auto& t : threads) t.join();
            check(error.empty(), name + ": " + error);
            check_pipe(ps, name);
            std::uint64_t delivered = 0, dupes = 0;
            Clock::time_point last = t0;
            for (auto& r : res) {
                check(r.error.empty(), name + " subscriber: " + r.error);
                delivered += r.unique;
                dupes += r.dupes;
                last = std::max(last, r.last);
            }
            d.stop();
            const std::uint64_t expected = ps.ok * static_cast<std::uint64_t>(nsubs);
            const double lost = static_cast<double>(expected - delivered);
            const double span = std::chrono::duration<double>(last - t0).count();
            const double rate = span > 0 ? static_cast<double>(delivered) / span : 0;
            std::fprintf(stderr, "  %s rep %d: %llu msgs published, %.0f deliveries/s, lost %.0f, dupes %llu\n",
                         name.c_str(), rep, static_cast<unsigned long long>(ps.ok), rate, lost,
                         static_cast<unsigned long long>(dupes));
            const std::string cond = std::to_string(nsubs) + " raw SUB sockets on ch/fan/ (threads, one zmq context, rcvhwm 0, "
                                     "feed.sync handshake), 1 publisher 1000 in flight, " + std::to_string(ps.ok) +
                                     " msgs, durability full, " + body_cond() +
                                     ", rate = unique deliveries / (last delivery - first send), loss by channel_seq";
            record(name + " delivered", "msg/s", rate, cond);
            record(name + " lost", "msgs", lost, cond);
            if (lost > 0) fail(name + ": " + fmt(0, lost) + " deliveries lost");
        }
    }
}

// ------------------------------------------------------------------ 4. catch-up (+ DB bytes per message)

void scenario_catchup() {
    const std::uint64_t n = g_opt.catchup_n;
    const std::string name = "catchup " + std::to_string(n) + " msgs";
    for (int rep = 0; rep < g_opt.reps; ++rep) {
        Daemon d;
        zmq::context_t ctx(1);
        client::Client c(ctx, d.client_options());
        c.hello("cu-pub");
        const auto req = publish_request("cu", g_body);
        const auto tf = Clock::now();
        const auto ps = pipeline(c, n, 1000, Clock::time_point::max(), tf + std::chrono::seconds(600),
                                 [&](std::uint64_t) -> const bus::Request& { return req; });
        check_pipe(ps, name + " (filling)");
        const double fill = secs_since(tf);
        std::fprintf(stderr, "  %s rep %d: filled in %.1f s (%.0f msg/s)\n", name.c_str(), rep, fill,
                     static_cast<double>(n) / fill);

        zmq::context_t sub_ctx(1);
        client::Client reader(sub_ctx, d.client_options());
        const double server_cpu0 = d.cpu_seconds(), reader_cpu0 = bench::own_cpu_seconds();
        const auto t0 = Clock::now();
        client::Subscription sub(reader, "cu", std::uint64_t{0});
        std::uint64_t got = 0, last_seq = 0;
        const auto deadline = t0 + std::chrono::seconds(600);
        while (got < n && Clock::now() < deadline) {
            auto m = sub.next(Millis{5000});
            // The failure texts are built only on failure: at 10^6 messages
            // building them every time costs the reader more than decoding.
            if (!m) check(false, name + ": no message within 5 s after " + std::to_string(got));
            if (m->stream_seq != got + 1) {
                check(false, name + ": channel_seq " + std::to_string(m->stream_seq) + " after " + std::to_string(got));
            }
            if (m->seq <= last_seq) check(false, name + ": seq not increasing");
            last_seq = m->seq;
            ++got;
        }
        const double secs = secs_since(t0);
        // Per message caught up: the daemon's reads and packing, and this
        // process's (the reader's decoding; the writer client is idle).
        const double server_us = (d.cpu_seconds() - server_cpu0) * 1e6 / static_cast<double>(n);
        const double reader_us = (bench::own_cpu_seconds() - reader_cpu0) * 1e6 / static_cast<double>(n);
        check(got == n, name + ": read " + std::to_string(got) + " of " + std::to_string(n));
        // Live: one more message arrives through the same subscription.
        c.call_ok(publish_request("cu", g_body));
        auto live = sub.next(Millis{5000});
        check(live && live->stream_seq == n + 1, name + ": live message after catch-up not delivered");

        // Storage: stats, then file sizes after a clean shutdown (which checkpoints).
        const auto stats = c.call_ok(bus::StatsRequest{});
        const auto* dbb = stats.find("db_bytes");
        const double stats_db = dbb && dbb->type == msgpack::type::POSITIVE_INTEGER ? static_cast<double>(dbb->via.u64) : 0;
        d.stop();
        double files = 0;
        for (const char* f : {"botbus.db", "botbus.db-wal"}) {
            std::error_code ec;
            const auto sz = fs::file_size(d.data_dir() / f, ec);
            if (!ec) files += static_cast<double>(sz);
        }
        const double stored = static_cast<double>(n + 1);
        std::fprintf(stderr, "  %s rep %d: %.2f s = %.0f msg/s; db %.0f B (stats %.0f B) = %.0f B/msg\n",
                     name.c_str(), rep, secs, static_cast<double>(n) / secs, files, stats_db, files / stored);
        const std::string cond = "client::Subscription(after_seq 0) on a fresh client: feed.sync, history pages of 1000, "
                                 "then live (one live message checked); " + std::to_string(n) +
                                 " stored msgs filled with 1 client x 1000 in flight; " + body_cond();
        record(name + " rate", "msg/s", static_cast<double>(n) / secs, cond);
        record(name + " time", "s", secs, cond);
        record("server CPU per " + name + " message", "us", server_us, cond);
        record("reader CPU per " + name + " message", "us", reader_us, cond);
        record("db bytes per message", "B", files / stored,
               "(botbus.db + botbus.db-wal) after SIGTERM, divided by " + std::to_string(n + 1) +
                   " stored channel messages (+1 channel.created event); " + body_cond() + "; stats db_bytes was " +
                   fmt(0, stats_db));
    }
}

// ------------------------------------------------------------------ 5. workflow events

void scenario_workflow() {
    const int k = g_opt.steps;
    const std::uint64_t per_run = 2 + 2 * static_cast<std::uint64_t>(k);
    const std::uint64_t cap = g_opt.smoke ? 20 * per_run : 10'000'000;
    const std::string name = "workflow events (" + std::to_string(k) + " steps)";
    for (int rep = 0; rep < g_opt.reps; ++rep) {
        Daemon d;
        zmq::context_t ctx(1);
        client::Client c(ctx, d.client_options());
        c.hello("wf-exec");
        msgpack::sbuffer def;
        msgpack::packer<msgpack::sbuffer> pk(def);
        pk.pack_map(2);
        pk.pack(std::string("name"));
        pk.pack(std::string("bench"));
        pk.pack(std::string("steps"));
        pk.pack_array(static_cast<std::uint32_t>(k));
        for (int i = 0; i < k; ++i) {
            pk.pack_map(1);
            pk.pack(std::string("id"));
            pk.pack("s" + std::to_string(i));
        }
        bus::WorkflowPutRequest put;
        put.definition = bus::PackedValue{std::string(def.data(), def.size())};
        const auto reply = c.call_ok(bus::Request{put});
        const auto* idv = reply.find("workflow_id");
        check(idv && idv->type == msgpack::type::STR, "workflow.put reply has no workflow_id");
        const std::string wf(idv->via.str.ptr, idv->via.str.size);

        bus::Request current;
        const auto make = [&](std::uint64_t j) -> const bus::Request& {
            const std::uint64_t run = j / per_run, pos = j % per_run;
            const std::string run_id = "r" + std::to_string(run);
            if (pos == 0) {
                bus::RunStartRequest r;
                r.workflow_id = wf;
                r.run_id = run_id;
                current = r;
            } else if (pos == per_run - 1) {
                bus::RunCompleteRequest r;
                r.run_id = run_id;
                current = r;
            } else {
                const std::string step = "s" + std::to_string((pos - 1) / 2);
                if ((pos - 1) % 2 == 0) {
                    bus::StepStartRequest r;
                    r.run_id = run_id;
                    r.step_id = step;
                    current = r;
                } else {
                    bus::StepCompleteRequest r;
                    r.run_id = run_id;
                    r.step_id = step;
                    current = r;
                }
            }
            return current;
        };
        const auto t0 = Clock::now();
        const auto stop_sending = g_opt.smoke ? Clock::time_point::max()
                                              : t0 + std::chrono::duration_cast<Clock::duration>(
                                                         std::chrono::duration<double>(g_opt.secs));
        const auto ps = pipeline(c, cap, 1000, stop_sending, t0 + std::chrono::seconds(120), make);
        check_pipe(ps, name);
        d.stop();
        const double secs = std::chrono::duration<double>(ps.last_reply - t0).count();
        const double rate = static_cast<double>(ps.ok) / secs;
        std::fprintf(stderr, "  %s rep %d: %llu events (%llu runs) in %.2f s = %.0f events/s\n", name.c_str(), rep,
                     static_cast<unsigned long long>(ps.ok), static_cast<unsigned long long>(ps.ok / per_run), secs,
                     rate);
        record(name, "events/s", rate,
               "run.start + (step.start, step.complete) x " + std::to_string(k) +
                   " + run.complete per run, 1 client x 1000 in flight (a run's ops pipelined back to back, runs "
                   "after each other), every reply ok, durability full, " +
                   (g_opt.smoke ? std::string("smoke: 20 runs") : fmt(1, g_opt.secs) + " s of sending"));
    }
}

// ------------------------------------------------------------------ 6. memory

void scenario_memory() {
    const int nclients = g_opt.mem_clients;
    for (int rep = 0; rep < g_opt.reps; ++rep) {
        Daemon d;
        std::this_thread::sleep_for(Millis{300});
        const double idle = d.rss_mb();
        zmq::context_t ctx(1);
        ctx.set(zmq::ctxopt::max_sockets, nclients + 64);
        std::vector<zmq::socket_t> socks;
        socks.reserve(static_cast<std::size_t>(nclients));
        for (int i = 0; i < nclients; ++i) {
            socks.emplace_back(ctx, zmq::socket_type::dealer);
            socks.back().set(zmq::sockopt::linger, 0);
            socks.back().connect(d.command());
            const auto frame = bus::encode_request(bus::HelloRequest{"m" + std::to_string(i)},
                                                   bus::pack_as_value(std::uint64_t{1}));
            socks.back().send(zmq::buffer(frame), zmq::send_flags::none);
        }
        std::vector<bool> answered(static_cast<std::size_t>(nclients));
        int n_answered = 0, n_ok = 0;
        const auto deadline = Clock::now() + std::chrono::seconds(60);
        std::vector<zmq::pollitem_t> items;
        for (auto& s : socks) items.push_back(zmq::pollitem_t{s.handle(), 0, ZMQ_POLLIN, 0});
        while (n_answered < nclients && Clock::now() < deadline) {
            if (zmq::poll(items.data(), items.size(), Millis{100}) == 0) continue;
            for (std::size_t i = 0; i < items.size(); ++i) {
                if (!(items[i].revents & ZMQ_POLLIN)) continue;
                zmq::message_t m;
                if (!socks[i].recv(m, zmq::recv_flags::dontwait)) continue;
                if (answered[i]) continue;
                answered[i] = true;
                ++n_answered;
                const auto r = bus::decode_reply(m.to_string_view());
                if (r && r->ok) ++n_ok;
            }
        }
        check(n_ok == nclients, "memory: " + std::to_string(n_ok) + " of " + std::to_string(nclients) +
                                    " hello replies ok within 60 s");
        std::this_thread::sleep_for(Millis{300});
        const double busy = d.rss_mb();
        socks.clear();
        d.stop();
        std::fprintf(stderr, "  memory rep %d: idle %.1f MB, %d clients %.1f MB\n", rep, idle, nclients, busy);
        record("rss idle", "MB", idle, "botbusd VmRSS 300 ms after its ready line, empty data dir, durability full");
        record("rss " + std::to_string(nclients) + " clients", "MB", busy,
               "botbusd VmRSS with " + std::to_string(nclients) +
                   " connected DEALER sockets (one client thread), each answered hello, 300 ms after the last reply");
    }
}

// ------------------------------------------------------------------ 7. the disk's own floor

// Not botbus: the latency of one bare fdatasync of a 4 KiB write in the
// directory the daemons use. Every acknowledged publish waits for at least
// one, so this bounds the publish latency and one-at-a-time figures from below.
void scenario_disk() {
    const int n = g_opt.smoke ? 50 : 2000;
    for (int rep = 0; rep < g_opt.reps; ++rep) {
        TempDir dir;
        const auto path = (dir.path() / "fsync.probe").string();
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        check(fd >= 0, "disk: cannot create " + path);
        const std::string page(4096, 'x');
        std::vector<double> us;
        us.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
            const auto offset = static_cast<off_t>(i % 256) * 4096;
            check(::pwrite(fd, page.data(), page.size(), offset) == static_cast<ssize_t>(page.size()), "disk: pwrite");
            const auto t0 = Clock::now();
            check(::fdatasync(fd) == 0, "disk: fdatasync");
            us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        }
        ::close(fd);
        const double p50 = bench::percentile(us, 50), p99 = bench::percentile(us, 99);
        std::fprintf(stderr, "  disk rep %d: fdatasync p50 %.0f us p99 %.0f us\n", rep, p50, p99);
        const std::string cond = "one 4 KiB pwrite + fdatasync, " + std::to_string(n) +
                                 " times, in the benchmark's tmpdir; not botbus: the floor under every durable ack";
        record("disk fdatasync p50", "us", p50, cond);
        record("disk fdatasync p99", "us", p99, cond);
    }
}

// ------------------------------------------------------------------ 8. mailbox delivery to replicas

// One sender pipelines direct messages to bot "worker"; 1 or 3 replicas of
// it (connections whose hello names it) take them as pushes and acknowledge
// what each processed by seq, 100 at a time. Every message must be processed
// exactly once across the replicas. Each configuration runs twice: with no
// work per message (the daemon is the bound), and with 200 µs of waiting per
// message in the replica (a bot calling out: the consumers are the bound,
// which is what replicas are for).
void scenario_mailbox() {
    const std::pair<int, int> configs[] = {{1, 0}, {3, 0}, {1, 200}, {3, 200}};
    for (const auto& config : configs) {
        // Copies, not bindings: lambdas below use them (clang 14 cannot capture a binding).
        const int replicas = config.first;
        const int work_us = config.second;
        const std::uint64_t cap = g_opt.smoke ? 300 : work_us > 0 ? 20'000 : 200'000;
        const std::string name = "mailbox " + std::to_string(replicas) + (replicas == 1 ? " replica" : " replicas") +
                                 (work_us > 0 ? ", " + std::to_string(work_us) + " us work" : "");
        for (int rep = 0; rep < g_opt.reps; ++rep) {
            Daemon d;
            zmq::context_t replica_ctx(2);
            std::atomic<int> joined{0};
            std::atomic<bool> stop{false};
            std::atomic<std::uint64_t> processed{0};
            std::atomic<std::uint64_t> total{UINT64_MAX};
            std::vector<std::atomic<std::uint8_t>> seen(cap + 1);
            std::atomic<std::uint64_t> dupes{0};
            struct ReplicaResult {
                std::uint64_t processed = 0;
                Clock::time_point last{};
                std::string error;
            };
            std::vector<ReplicaResult> res(static_cast<std::size_t>(replicas));
            std::vector<std::thread> threads;
            for (int i = 0; i < replicas; ++i) {
                threads.emplace_back([&, i] {
                    auto& r = res[static_cast<std::size_t>(i)];
                    try {
                        client::Client w(replica_ctx, d.client_options());
                        w.call_ok(bus::HelloRequest{"worker"});
                        ++joined;
                        std::vector<std::uint64_t> unacked;
                        while (!stop.load() && processed.load() < total.load()) {
                            const auto push = w.next_push(Millis{20});
                            if (push) {
                                if (work_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(work_us));
                                const auto at = push->stream_seq;
                                if (at <= cap && seen[at].fetch_add(1) > 0) ++dupes;
                                unacked.push_back(push->seq);
                                ++r.processed;
                                ++processed;
                                r.last = Clock::now();
                            }
                            if (!unacked.empty() && (!push || unacked.size() >= 100)) {
                                w.call_ok(bus::AckRequest{std::nullopt, unacked});
                                unacked.clear();
                            }
                        }
                        if (!unacked.empty()) w.call_ok(bus::AckRequest{std::nullopt, unacked});
                    } catch (const std::exception& e) {
                        r.error = e.what();
                    }
                });
            }
            std::string error;
            PipeStats ps;
            Clock::time_point t0{};
            try {
                zmq::context_t ctx(1);
                client::Client c(ctx, d.client_options());
                c.hello("sender");
                const auto ready_by = Clock::now() + std::chrono::seconds(10);
                while (joined.load() < replicas && Clock::now() < ready_by) c.call_ok(bus::PingRequest{});
                const bus::Request req = bus::SendRequest{"worker", std::nullopt, bus::pack_as_value(g_body),
                                                          std::nullopt, std::nullopt, std::nullopt};
                t0 = Clock::now();
                const auto stop_sending = g_opt.smoke ? Clock::time_point::max()
                                                      : t0 + std::chrono::duration_cast<Clock::duration>(
                                                                 std::chrono::duration<double>(g_opt.secs));
                ps = pipeline(c, cap, 1000, stop_sending, t0 + std::chrono::seconds(120),
                              [&](std::uint64_t) -> const bus::Request& { return req; });
                total = ps.ok;
                const auto until = Clock::now() + std::chrono::seconds(30);
                while (processed.load() < ps.ok && Clock::now() < until) std::this_thread::sleep_for(Millis{5});
            } catch (const std::exception& e) {
                error = e.what();
            }
            stop = true;
            for (auto& t : threads) t.join();
            check(error.empty(), name + ": " + error);
            check_pipe(ps, name);
            Clock::time_point last = t0;
            std::string shares;
            for (auto& r : res) {
                check(r.error.empty(), name + " replica: " + r.error);
                last = std::max(last, r.last);
                shares += (shares.empty() ? "" : "/") + std::to_string(r.processed);
            }
            d.stop();
            const double missing = static_cast<double>(ps.ok) - static_cast<double>(processed.load() - dupes.load());
            const double span = std::chrono::duration<double>(last - t0).count();
            const double rate = span > 0 ? static_cast<double>(processed.load()) / span : 0;
            std::fprintf(stderr, "  %s rep %d: %llu sent, %.0f processed/s, shares %s, missing %.0f, twice %llu\n",
                         name.c_str(), rep, static_cast<unsigned long long>(ps.ok), rate, shares.c_str(), missing,
                         static_cast<unsigned long long>(dupes.load()));
            const std::string cond = std::to_string(replicas) +
                                     " replica connection(s) of one bot (threads, one zmq context), " +
                                     (work_us > 0 ? "each waiting " + std::to_string(work_us) + " us per message, " : "") +
                                     "each acking by seq 100 at a time, credit 1000 each; 1 sender 1000 in flight, " +
                                     std::to_string(ps.ok) + " direct messages, durability full, " + body_cond() +
                                     ", rate = processed / (last push - first send)";
            record(name + " processed", "msg/s", rate, cond);
            if (missing != 0 || dupes.load() != 0) {
                fail(name + ": " + fmt(0, missing) + " missing, " + std::to_string(dupes.load()) + " twice");
            }
        }
    }
}

// ------------------------------------------------------------------ main

void print_table() {
    std::printf("\n%-44s %12s %12s %12s %3s  %-6s %s\n", "figure", "median", "min", "max", "n", "unit", "conditions");
    for (const auto& f : g_figures) {
        const auto s = bench::stats(f.samples);
        std::printf("%-44s %12.6g %12.6g %12.6g %3zu  %-6s %s\n", f.name.c_str(), s.median, s.min, s.max, s.n,
                    f.unit.c_str(), f.cond.c_str());
    }
    std::printf("\n");
    for (const auto& f : g_figures) bench::result(g_opt.section, f.name, f.unit, f.samples, f.cond);
}

void usage() {
    std::printf(
        "usage: botbus-bench [options]\n"
        "  --botbusd PATH     daemon to start (default: this build's, %s)\n"
        "  --reps N           repetitions per figure, the median is reported (default 3)\n"
        "  --secs S           length of each time-bounded measurement (default 2)\n"
        "  --catchup-n N      messages stored for the catch-up scenario (default 1000000)\n"
        "  --steps K          steps per workflow run (default 3)\n"
        "  --clients N        connected clients for the memory figure (default 1000)\n"
        "  --frame-bytes B    publish request frame size (default 200)\n"
        "  --only LIST        comma-separated: throughput,latency,fanout,catchup,workflow,memory,disk,mailbox\n"
        "  --tmpdir DIR       where the per-measurement data dirs go (default $TMPDIR or /tmp)\n"
        "  --keep             keep the data dirs\n"
        "  --smoke            every scenario, tiny, 1 rep: checks completion and delivery only\n"
        "  --curve            also measure throughput with --auth curve (CURVE on both sockets)\n"
        "  --section NAME     the system named in RESULT lines (default botbus; bench/run.sh\n"
        "                     names the floors of bench/floor_server.cpp so)\n"
        "  --only cluster     (only when named) publish throughput and server CPU per message of\n"
        "                     one node on SQLite and of --nodes LIST (default 1,2,3) nodes on\n"
        "                     the PostgreSQL server --postgres URI (psql makes a schema per rep);\n"
        "                     --postgres-pid PID adds that postmaster's and its backends' CPU\n",
        BOTBUSD_PATH);
}

}  // namespace

int main(int argc, char** argv) {
    bool catchup_set = false, clients_set = false, reps_set = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--botbusd") g_opt.botbusd = next();
        else if (a == "--reps") g_opt.reps = std::stoi(next()), reps_set = true;
        else if (a == "--secs") g_opt.secs = std::stod(next());
        else if (a == "--catchup-n") g_opt.catchup_n = std::stoull(next()), catchup_set = true;
        else if (a == "--steps") g_opt.steps = std::stoi(next());
        else if (a == "--clients") g_opt.mem_clients = std::stoi(next()), clients_set = true;
        else if (a == "--frame-bytes") g_opt.frame_bytes = std::stoull(next());
        else if (a == "--only") g_opt.only = next();
        else if (a == "--tmpdir") g_opt.tmpdir = next();
        else if (a == "--keep") g_opt.keep = true;
        else if (a == "--smoke") g_opt.smoke = true;
        else if (a == "--curve") g_opt.curve = true;
        else if (a == "--section") g_opt.section = next();
        else if (a == "--postgres") g_opt.postgres = next();
        else if (a == "--postgres-pid") g_opt.postgres_pid = static_cast<pid_t>(std::stol(next()));
        else if (a == "--nodes") g_opt.nodes = next();
        else if (a == "-h" || a == "--help") {
            usage();
            return 0;
        } else {
            std::fprintf(stderr, "unknown option %s\n", a.c_str());
            usage();
            return 2;
        }
    }
    if (g_opt.smoke) {
        if (!reps_set) g_opt.reps = 1;
        if (!catchup_set) g_opt.catchup_n = 2000;
        if (!clients_set) g_opt.mem_clients = 50;
        g_opt.curve = true;  // the CURVE path runs end to end too
    }
    if (g_opt.reps < 1 || g_opt.catchup_n < 1 || g_opt.steps < 1 || g_opt.mem_clients < 1 || g_opt.secs <= 0) {
        std::fprintf(stderr, "invalid option value\n");
        return 2;
    }
    // 1000 clients need ~2 fds each here and one each in botbusd (which inherits the limit).
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        const rlim_t want = static_cast<rlim_t>(g_opt.mem_clients) * 3 + 1024;
        if (rl.rlim_cur < want) {
            rl.rlim_cur = std::min(want, rl.rlim_max);
            ::setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    ::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);  // precise sleeps for the paced publisher
    ::signal(SIGPIPE, SIG_IGN);
    g_body = make_body_for_frame("tp");

    std::fprintf(stderr, "botbus-bench: botbusd %s, reps %d, %s, nproc %u\n", g_opt.botbusd.c_str(), g_opt.reps,
                 g_opt.smoke ? "SMOKE" : "full", std::thread::hardware_concurrency());
    const std::pair<const char*, void (*)()> scenarios[] = {
        {"throughput", scenario_throughput}, {"latency", scenario_latency}, {"fanout", scenario_fanout},
        {"catchup", scenario_catchup},       {"workflow", scenario_workflow}, {"memory", scenario_memory},
        {"disk", scenario_disk},             {"mailbox", scenario_mailbox},  {"cluster", scenario_cluster},
    };
    const auto t_all = Clock::now();
    for (const auto& [name, fn] : scenarios) {
        if (!wanted(name)) continue;
        if (std::string_view(name) == "cluster" && g_opt.only.empty()) continue;  // needs a PostgreSQL server: asked for by name
        const auto t0 = Clock::now();
        std::fprintf(stderr, "== %s\n", name);
        try {
            fn();
        } catch (const std::exception& e) {
            fail(std::string(name) + ": " + e.what());
        }
        std::fprintf(stderr, "   (%.1f s)\n", secs_since(t0));
    }
    print_table();
    std::fprintf(stderr, "total %.1f s\n", secs_since(t_all));
    if (!g_failures.empty()) {
        std::printf("FAILED (%zu):\n", g_failures.size());
        for (const auto& f : g_failures) std::printf("  %s\n", f.c_str());
        return 1;
    }
    std::printf("%s: every scenario completed and delivered everything\n", g_opt.smoke ? "smoke ok" : "ok");
    return 0;
}
