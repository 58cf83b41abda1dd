#include "daemon/signal_stream.hpp"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include <boost/asio/error.hpp>
#include <boost/asio/read.hpp>
#include <csignal>
#include <system_error>

namespace botbus::daemon {

namespace {

int open_signal_fd(std::initializer_list<int> signals) {
    sigset_t set;
    sigemptyset(&set);
    for (int signal : signals) sigaddset(&set, signal);
    if (const int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0) {
        throw std::system_error(err, std::generic_category(), "blocking signals");
    }
    const int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
    return fd;
}

}  // namespace

SignalStream::SignalStream(boost::asio::io_context& io, std::initializer_list<int> signals)
    : m_fd(io, open_signal_fd(signals)) {}

void SignalStream::async_wait(std::function<void(int)> handler) {
    boost::asio::async_read(m_fd, boost::asio::buffer(&m_info, sizeof m_info),
                            [this, handler = std::move(handler)](const boost::system::error_code& ec, std::size_t) {
                                if (!ec) {
                                    handler(static_cast<int>(m_info.ssi_signo));
                                } else if (ec != boost::asio::error::operation_aborted) {
                                    spdlog::error("reading signals failed: {}; signals stay pending", ec.message());
                                }
                            });
}

void SignalStream::cancel() { m_fd.cancel(); }

}  // namespace botbus::daemon
