#include "daemon/data_dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace botbus::daemon {

DataDirLock::DataDirLock(const std::string& data_dir) {
    const auto path = (std::filesystem::path(data_dir) / "botbus.lock").string();
    m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    // flock needs no write access: an existing lock file still locks on a
    // directory that became read-only, and the store's own checks then say
    // which of its files cannot be written.
    if (m_fd < 0 && (errno == EROFS || errno == EACCES)) m_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (m_fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    if (::flock(m_fd, LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        std::string holder;
        std::getline(std::ifstream(path), holder);
        ::close(m_fd);
        m_fd = -1;
        if (error == EWOULDBLOCK) {
            throw std::runtime_error("another botbusd (pid " + (holder.empty() ? std::string("unknown") : holder) +
                                     ") is using the data directory " + data_dir + " (it holds " + path + ")");
        }
        throw std::runtime_error("cannot lock " + path + ": " + std::strerror(error));
    }
    // The pid is for the message another daemon gets; the lock holds without it.
    const auto pid = std::to_string(::getpid()) + "\n";
    const bool noted = ::ftruncate(m_fd, 0) == 0 &&
                       ::pwrite(m_fd, pid.data(), pid.size(), 0) == static_cast<ssize_t>(pid.size());
    (void)noted;
}

DataDirLock::~DataDirLock() {
    if (m_fd >= 0) ::close(m_fd);
}

}  // namespace botbus::daemon
