// Timing and stats helpers, copied from ../shared/bench/peers/common.hpp (same
// RESULT line format, so the peer tooling reads botbus figures too), adapted
// to this project's warning flags.
#pragma once
#include <algorithm>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

using clk = std::chrono::steady_clock;

inline double secs_since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

struct Stats {
    double median = 0, min = 0, max = 0;
    std::size_t n = 0;
};

inline double percentile(const std::vector<double>& in, double p) {
    if (in.empty()) return 0;
    std::vector<double> v(in);
    std::sort(v.begin(), v.end());
    const double idx = p / 100.0 * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(idx);
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    const double frac = idx - static_cast<double>(lo);
    return v[lo] * (1 - frac) + v[hi] * frac;
}

inline Stats stats(const std::vector<double>& v) {
    Stats s;
    if (v.empty()) return s;
    s.n = v.size();
    s.median = percentile(v, 50);
    s.min = *std::min_element(v.begin(), v.end());
    s.max = *std::max_element(v.begin(), v.end());
    return s;
}

// User + system CPU seconds of process `pid` so far: fields 14 and 15 of
// /proc/<pid>/stat, in clock ticks (the field after the parenthesised
// command name, which may itself hold spaces). 0 when unreadable.
inline double process_cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Bytes the process has caused to be sent to the storage layer so far
// (/proc/PID/io write_bytes: page-cache writeback it dirtied, WAL frames,
// checkpoints, the seq record); 0 when the kernel does not account I/O.
inline double process_write_bytes(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/io");
    std::string key;
    unsigned long long value = 0;
    while (in >> key >> value) {
        if (key == "write_bytes:") return static_cast<double>(value);
    }
    return 0;
}

// User + system CPU seconds of this process so far (every thread).
inline double own_cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    const auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return secs(u.ru_utime) + secs(u.ru_stime);
}

// One machine-readable line per figure.
// RESULT|section|name|unit|median|min|max|n|conditions
inline void result(const std::string& section, const std::string& name, const std::string& unit,
                   const std::vector<double>& samples, const std::string& cond) {
    const Stats s = stats(samples);
    std::printf("RESULT|%s|%s|%s|%.6g|%.6g|%.6g|%zu|%s\n", section.c_str(), name.c_str(), unit.c_str(), s.median,
                s.min, s.max, s.n, cond.c_str());
    std::fflush(stdout);
}

}  // namespace bench
