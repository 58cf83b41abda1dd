// Prometheus primitives for botbusd's /metrics (metrics_endpoint.hpp):
// histograms that any thread may observe, and the text exposition format
// (https://prometheus.io/docs/instrumenting/exposition_formats/) that the
// scrape is written in.
//
// Operation: a Histogram has fixed upper bounds chosen where it is declared;
// observe() adds to the first bucket whose bound holds the value (relaxed
// atomics: a scrape may see a count one observation ahead of the sum, which
// Prometheus tolerates). Exposition writes each family's HELP and TYPE once,
// then its samples; names and label names are the caller's constants, label
// values are escaped.
// Concurrency: Histogram::observe from any thread; Exposition is one
// scrape's, on one thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace botbus::bus {

class Histogram {
public:
    explicit Histogram(std::initializer_list<double> upper_bounds);

    void observe(double value, std::uint64_t times = 1);

    struct Snapshot {
        std::vector<double> bounds;
        std::vector<std::uint64_t> cumulative;  // per bound, then +Inf
        double sum = 0;
    };
    Snapshot snapshot() const;

private:
    std::vector<double> m_bounds;
    std::unique_ptr<std::atomic<std::uint64_t>[]> m_buckets;  // one per bound, then +Inf
    std::atomic<double> m_sum{0};
};

using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

class Exposition {
public:
    // HELP and TYPE ("counter", "gauge", "histogram") of the family whose
    // samples follow.
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, double value, Labels labels = {});
    // A histogram family's samples (_bucket, _sum, _count), after family().
    void histogram(std::string_view name, const Histogram::Snapshot& histogram);

    const std::string& text() const { return m_text; }

private:
    void labels(Labels labels, std::string_view le = {});
    void value(double value);

    std::string m_text;
};

}  // namespace botbus::bus
