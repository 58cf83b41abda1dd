#include "bus/server/metrics.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <iterator>

namespace botbus::bus {

Histogram::Histogram(std::initializer_list<double> upper_bounds)
    : m_bounds(upper_bounds), m_buckets(std::make_unique<std::atomic<std::uint64_t>[]>(m_bounds.size() + 1)) {
    std::sort(m_bounds.begin(), m_bounds.end());
}

void Histogram::observe(double value, std::uint64_t times) {
    const auto bucket = std::lower_bound(m_bounds.begin(), m_bounds.end(), value) - m_bounds.begin();
    m_buckets[static_cast<std::size_t>(bucket)].fetch_add(times, std::memory_order_relaxed);
    m_sum.fetch_add(value * static_cast<double>(times), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.bounds = m_bounds;
    s.cumulative.reserve(m_bounds.size() + 1);
    std::uint64_t total = 0;
    for (std::size_t i = 0; i <= m_bounds.size(); ++i) {
        total += m_buckets[i].load(std::memory_order_relaxed);
        s.cumulative.push_back(total);
    }
    s.sum = m_sum.load(std::memory_order_relaxed);
    return s;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(m_text), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void Exposition::sample(std::string_view name, double value, Labels labels) {
    m_text.append(name);
    this->labels(labels);
    this->value(value);
}

void Exposition::histogram(std::string_view name, const Histogram::Snapshot& histogram) {
    const std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i < histogram.cumulative.size(); ++i) {
        const auto le = i < histogram.bounds.size() ? fmt::format("{}", histogram.bounds[i]) : std::string("+Inf");
        m_text.append(bucket);
        labels({}, le);
        value(static_cast<double>(histogram.cumulative[i]));
    }
    sample(std::string(name) + "_sum", histogram.sum);
    sample(std::string(name) + "_count", static_cast<double>(histogram.cumulative.back()));
}

void Exposition::labels(Labels labels, std::string_view le) {
    if (labels.size() == 0 && le.empty()) return;
    m_text.push_back('{');
    bool first = true;
    auto add = [&](std::string_view label, std::string_view value) {
        if (!first) m_text.push_back(',');
        first = false;
        m_text.append(label);
        m_text.append("=\"");
        for (const char c : value) {
            if (c == '\\') m_text.append("\\\\");
            else if (c == '"') m_text.append("\\\"");
            else if (c == '\n') m_text.append("\\n");
            else m_text.push_back(c);
        }
        m_text.push_back('"');
    };
    for (const auto& [label, value] : labels) add(label, value);
    if (!le.empty()) add("le", le);
    m_text.push_back('}');
}

void Exposition::value(double value) {
    if (std::isnan(value)) {
        m_text.append(" NaN\n");
    } else if (std::isinf(value)) {
        m_text.append(value > 0 ? " +Inf\n" : " -Inf\n");
    } else {
        fmt::format_to(std::back_inserter(m_text), " {}\n", value);
    }
}

}  // namespace botbus::bus
