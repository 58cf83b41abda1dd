#pragma once

#include <sys/signalfd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <initializer_list>

namespace botbus::daemon {

// The process's signals as reads on the event loop (a signalfd). The
// signals are blocked in every thread, so none ever interrupts a system
// call: with a handler installed (asio's signal_set), the kernel delivered
// each to whichever thread it liked, and one landing on the loop's thread
// inside a ZeroMQ call made that call fail with EINTR — a request lost, a
// push dropped, for an operator's SIGHUP.
class SignalStream {
public:
    // Blocks `signals` in the calling thread and so in every thread it
    // starts later: construct it before any thread is started. They stay
    // blocked after destruction, so one arriving during shutdown waits
    // rather than ending the process half-way.
    SignalStream(boost::asio::io_context& io, std::initializer_list<int> signals);

    // Calls `handler` on the loop with the next signal; one per call.
    void async_wait(std::function<void(int)> handler);
    void cancel();

private:
    boost::asio::posix::stream_descriptor m_fd;
    signalfd_siginfo m_info{};
};

}  // namespace botbus::daemon
