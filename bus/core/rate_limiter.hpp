// Per-sender flood guard: a token bucket per (sender, target) pair, where the
// target is a channel for publishes and a recipient for direct messages.
//
// Operation: each pair may send `burst` messages at once and `per_second`
// on average; a message over that is refused with the time until a token is
// back. Buckets that have refilled completely carry no information and are
// dropped when the table grows, so memory follows the pairs active lately.
// Concurrency: single-threaded (the server's loop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace botbus::bus {

struct RateLimit {
    double per_second = 0;  // 0: no limit
    double burst = 0;       // bucket size; 0 means one second's worth (at least 1)
};

class RateLimiter {
public:
    explicit RateLimiter(RateLimit limit);

    bool enabled() const { return m_limit.per_second > 0; }
    // Buckets held: what the limiter costs in memory.
    std::size_t bucket_count() const { return m_buckets.size(); }
    // Takes a token for sender → target at now_us. Returns nothing when
    // allowed, or how many µs until a retry can succeed.
    std::optional<std::int64_t> take(std::string_view sender, std::string_view target, std::int64_t now_us);

private:
    struct Bucket {
        double tokens = 0;
        std::int64_t at_us = 0;
    };
    void prune(std::int64_t now_us);

    RateLimit m_limit;
    double m_burst;
    std::unordered_map<std::string, Bucket> m_buckets;
};

}  // namespace botbus::bus
