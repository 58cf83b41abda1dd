// RunEventGate: decides, for each run event that arrives on the feed,
// whether `botbus watch` shows it, drops it, or must re-fetch the run.
//
// Operation: watch subscribes to `run/<id>/`, confirms the subscription with
// feed.sync, then fetches the run and its steps (the snapshot). Events whose
// seq the snapshot already reflects are dropped; the rest are shown. The
// run's stream_seq (gap-free per run) exposes lost events: a jump means the
// watcher must re-fetch (run.get + run.steps) and call resynced().
// Limitations: the stream_seq of the snapshot itself is not known, so the
// baseline is the first event seen; a loss before that first event (or at
// the very tail) is invisible here. watch covers both by re-fetching the run
// when the feed has been quiet for a while.
// Single-threaded; header-only so the tests can drive it directly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace botbus::cli {

class RunEventGate {
public:
    enum class Verdict {
        show,  // new: print it
        drop,  // the snapshot (or an earlier event) already covered it
        gap,   // events were lost before this one: re-fetch, then resynced()
    };

    // `snapshot_seq`: the highest seq the fetched run and steps reflect.
    explicit RunEventGate(std::uint64_t snapshot_seq) : m_reflected(snapshot_seq) {}

    Verdict offer(std::uint64_t seq, std::uint64_t stream_seq) {
        if (m_stream_seq && stream_seq <= *m_stream_seq) return Verdict::drop;  // a repeat, or reordered
        const bool jumped = m_stream_seq && stream_seq != *m_stream_seq + 1;
        m_stream_seq = stream_seq;
        // Lost events came before this one, so a snapshot that has this one
        // has them too.
        if (seq <= m_reflected) return Verdict::drop;
        if (jumped) return Verdict::gap;
        m_reflected = seq;
        return Verdict::show;
    }

    // After a re-fetch whose run and steps reflect everything up to `snapshot_seq`.
    void resynced(std::uint64_t snapshot_seq) { m_reflected = std::max(m_reflected, snapshot_seq); }

    std::uint64_t reflected_seq() const { return m_reflected; }
    // The stream_seq of the last event seen, once one arrived.
    std::optional<std::uint64_t> stream_seq() const { return m_stream_seq; }

private:
    std::uint64_t m_reflected;
    std::optional<std::uint64_t> m_stream_seq;
};

}  // namespace botbus::cli
