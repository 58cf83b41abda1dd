// Timing and stats helpers, copied from ../shared/bench/peers/common.hpp (same
// RESULT line format, so the peer tooling reads botbus figures too), adapted
// to this project's warning flags.
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
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
