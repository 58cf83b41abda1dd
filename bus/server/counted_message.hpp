// A ZeroMQ message whose bytes are counted while libzmq holds them: the
// count goes up when the message is made and down when libzmq frees it
// (sent, or dropped with its connection), from whichever thread does that.
// libzmq bounds its queues in messages only; this is how the feed and the
// reply queues are bounded in bytes too.
// Concurrency: the counter is atomic and shared, so it outlives the object
// that made it until libzmq lets go of the last message.
#pragma once

#include <zmq.hpp>

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

namespace botbus::bus {

using ByteCounter = std::shared_ptr<std::atomic<std::size_t>>;

inline ByteCounter make_byte_counter() {
    return std::make_shared<std::atomic<std::size_t>>(0);
}

namespace detail {
struct CountedBytes {
    std::string bytes;
    ByteCounter counter;
    ByteCounter total;  // may be empty
};
inline void release_counted(void* /*data*/, void* hint) {
    auto* held = static_cast<CountedBytes*>(hint);
    held->counter->fetch_sub(held->bytes.size(), std::memory_order_relaxed);
    if (held->total) held->total->fetch_sub(held->bytes.size(), std::memory_order_relaxed);
    delete held;
}
}  // namespace detail

// Zero-copy: the message owns `bytes` from here (its destructor frees them
// when a send fails). Counted on `counter`, and on `total` when given.
inline zmq::message_t counted_message(std::string bytes, const ByteCounter& counter, const ByteCounter& total = {}) {
    auto* held = new detail::CountedBytes{std::move(bytes), counter, total};
    counter->fetch_add(held->bytes.size(), std::memory_order_relaxed);
    if (total) total->fetch_add(held->bytes.size(), std::memory_order_relaxed);
    return zmq::message_t(held->bytes.data(), held->bytes.size(), detail::release_counted, held);
}

}  // namespace botbus::bus
