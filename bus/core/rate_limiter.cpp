#include "bus/core/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace botbus::bus {
namespace {

constexpr std::size_t k_prune_above = 100000;  // buckets kept before full ones are dropped

}  // namespace

RateLimiter::RateLimiter(RateLimit limit)
    : m_limit(limit), m_burst(limit.burst > 0 ? limit.burst : std::max(1.0, limit.per_second)) {}

std::optional<std::int64_t> RateLimiter::take(std::string_view sender, std::string_view target, std::int64_t now_us) {
    if (!enabled()) return std::nullopt;
    std::string key;
    key.reserve(sender.size() + target.size() + 1);
    key.append(sender).push_back('\n');  // names cannot hold '\n': the pair is unambiguous
    key.append(target);
    auto [it, fresh] = m_buckets.try_emplace(std::move(key), Bucket{m_burst, now_us});
    auto& bucket = it->second;
    if (!fresh) {
        const double elapsed_s = static_cast<double>(std::max<std::int64_t>(0, now_us - bucket.at_us)) / 1e6;
        bucket.tokens = std::min(m_burst, bucket.tokens + elapsed_s * m_limit.per_second);
        bucket.at_us = std::max(bucket.at_us, now_us);  // a clock stepping back refills nothing later
    }
    if (bucket.tokens >= 1.0) {
        bucket.tokens -= 1.0;
        if (fresh && m_buckets.size() > k_prune_above) prune(now_us);
        return std::nullopt;
    }
    const double wait_s = (1.0 - bucket.tokens) / m_limit.per_second;
    return static_cast<std::int64_t>(std::ceil(wait_s * 1e6));
}

void RateLimiter::prune(std::int64_t now_us) {
    std::erase_if(m_buckets, [&](const auto& entry) {
        const auto& b = entry.second;
        const double elapsed_s = static_cast<double>(std::max<std::int64_t>(0, now_us - b.at_us)) / 1e6;
        return b.tokens + elapsed_s * m_limit.per_second >= m_burst;
    });
}

}  // namespace botbus::bus
