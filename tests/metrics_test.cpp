// The Prometheus primitives of bus/server/metrics.hpp: cumulative buckets
// with +Inf, sums of repeated observations, label escaping, and values as
// the text format writes them.
#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "bus/server/metrics.hpp"

namespace bus = botbus::bus;

TEST(MetricsHistogram, BucketsAreCumulativeWithEveryObservationInInf) {
    bus::Histogram h{0.5, 0.1, 1};  // bounds are sorted whatever the order given
    h.observe(0.05);
    h.observe(0.1);   // a bound holds values equal to it (le)
    h.observe(0.7, 3);
    h.observe(30);
    const auto s = h.snapshot();
    EXPECT_EQ(s.bounds, (std::vector<double>{0.1, 0.5, 1}));
    EXPECT_EQ(s.cumulative, (std::vector<std::uint64_t>{2, 2, 5, 6}));
    EXPECT_DOUBLE_EQ(s.sum, 0.05 + 0.1 + 2.1 + 30);
}

TEST(MetricsExposition, WritesFamiliesSamplesAndHistogramsInTheTextFormat) {
    bus::Exposition out;
    out.family("botbus_x_total", "counter", "Things.");
    out.sample("botbus_x_total", 3, {{"op", "publish"}, {"code", "a\"b\\c\nd"}});
    out.sample("botbus_y", 1.5);
    out.sample("botbus_z", std::numeric_limits<double>::infinity());
    bus::Histogram h{1, 2};
    h.observe(1.5);
    out.family("botbus_h_seconds", "histogram", "Latency.");
    out.histogram("botbus_h_seconds", h.snapshot());
    EXPECT_EQ(out.text(),
              "# HELP botbus_x_total Things.\n"
              "# TYPE botbus_x_total counter\n"
              "botbus_x_total{op=\"publish\",code=\"a\\\"b\\\\c\\nd\"} 3\n"
              "botbus_y 1.5\n"
              "botbus_z +Inf\n"
              "# HELP botbus_h_seconds Latency.\n"
              "# TYPE botbus_h_seconds histogram\n"
              "botbus_h_seconds_bucket{le=\"1\"} 0\n"
              "botbus_h_seconds_bucket{le=\"2\"} 1\n"
              "botbus_h_seconds_bucket{le=\"+Inf\"} 1\n"
              "botbus_h_seconds_sum 1.5\n"
              "botbus_h_seconds_count 1\n");
}
