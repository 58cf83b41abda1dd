// What botbusd counts for Prometheus beyond the stats op's counters
// (handler.hpp, ServerCounters): requests and errors by op and code, events
// appended by type, and the latencies an operator watches (batch size,
// commit, fdatasync, publish to acknowledgement). Written out by
// Server::metrics_text (server_metrics.cpp) with the stats figures beside
// them; names are listed in docs/OPERATIONS.md.
// Concurrency: the counters are the loop's; the histograms take
// observations from any thread (the sync thread times its fdatasyncs).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <variant>
#include <vector>

#include "bus/protocol/requests.hpp"
#include "bus/protocol/vocabulary.hpp"
#include "bus/server/metrics.hpp"
#include "store/event.hpp"

namespace botbus::bus {

inline constexpr std::size_t k_errc_count = static_cast<std::size_t>(Errc::limit_reached) + 1;
inline constexpr std::size_t k_event_type_count = static_cast<std::size_t>(store::EventType::acl_revoked) + 1;

// The position of request type T in Request, as Envelope::request.index() gives it.
template <typename T, typename Variant> struct IndexInVariant;
template <typename T, typename... Ts> struct IndexInVariant<T, std::variant<Ts...>> {
    static constexpr std::size_t value = [] {
        std::size_t i = 0;
        (void)((std::is_same_v<T, Ts> ? true : (++i, false)) || ...);
        return i;
    }();
};
template <typename T> constexpr std::size_t index_of() { return IndexInVariant<T, Request>::value; }

struct ServerMetrics {
    // Indexed by the op's position in Request; the last slot is for frames
    // that did not decode far enough to name an op.
    static constexpr std::size_t k_undecoded = k_op_names.size();
    std::array<std::uint64_t, k_op_names.size() + 1> requests{};
    std::array<std::array<std::uint64_t, k_errc_count>, k_op_names.size() + 1> errors{};
    std::array<std::uint64_t, k_event_type_count> events{};  // durable events appended, by type
    std::uint64_t retention_deleted = 0;  // messages retention deleted from the log

    Histogram batch_requests{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
    Histogram commit_seconds{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                             0.25, 0.5, 1};
    Histogram sync_seconds{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                           0.25, 0.5, 1};
    // publish and send: from their batch being read off the socket to the
    // acknowledgement handed to ZeroMQ (after the fsync).
    Histogram publish_ack_seconds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                  0.25, 0.5, 1, 2.5, 5};

    // One request's result: `op` none for a frame that named none.
    void count(std::optional<std::size_t> op, std::optional<Errc> error) {
        const auto slot = op.value_or(k_undecoded);
        ++requests[slot];
        if (error) ++errors[slot][static_cast<std::size_t>(*error)];
    }
};

}  // namespace botbus::bus
