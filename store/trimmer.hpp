// Retention: deletes the oldest messages of channels and mailboxes past their
// limits, a bounded number per step, and logs each deletion as a
// stream.trimmed event in the same transaction.
//
// Limits: a channel's own (channel.retention_set), else the default; 0 means
// no limit of that kind. Mailboxes use the default and lose only settled
// messages (at or below the floor): an unacknowledged message stays until it
// is acknowledged or expires. Workflow events are never trimmed: the run and
// step projections are rebuilt from them.
// Seqs are never reused: log_head and the streams rows keep the positions
// handed out, whatever is deleted. An idempotency key is remembered as long
// as the event it names is in the log.
// Operation: each step visits streams in name order from where the last step
// stopped (wrapping around), at most k_streams_per_step of them, and deletes
// at most `budget` messages, so a step is a small transaction that never
// holds the event loop for long.
// The policy lives here, over the Store's retention primitives, so every
// backend trims alike.
// Concurrency: single-threaded, inside the caller's open Batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "store/store.hpp"

namespace botbus::store {

struct RetentionLimits {
    std::uint64_t max_age_ms = 0;    // 0: no age limit
    std::uint64_t max_messages = 0;  // 0: no count limit
    bool any() const { return max_age_ms > 0 || max_messages > 0; }
};

class Trimmer {
public:
    static constexpr std::size_t k_streams_per_step = 100;

    Trimmer(Store& store, RetentionLimits defaults);

    // Deletes up to `budget` messages past their limits at now_us; returns
    // how many it deleted.
    std::size_t step(Batch& batch, std::int64_t now_us, std::size_t budget = 1000);

    const RetentionLimits& defaults() const { return m_defaults; }

private:
    std::size_t trim_stream(Batch& batch, const std::string& stream, Seq last_stream_seq, std::int64_t now_us,
                            std::size_t budget);

    Store& m_store;
    RetentionLimits m_defaults;
    std::string m_cursor;  // the last stream visited
};

}  // namespace botbus::store
