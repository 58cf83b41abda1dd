#include "store/sqlite/wal_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "store/errors.hpp"

namespace botbus::store {

WalFile::WalFile(const std::string& database_path) : m_path(database_path + "-wal") {
    // Read-only is enough for fdatasync, and the WAL is never written through
    // this descriptor. SQLite keeps its POSIX locks on the database and -shm
    // files, so closing this descriptor cannot drop one of them.
    m_fd = ::open(m_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (m_fd < 0) {
        throw StartupError(m_path + ": cannot open the write-ahead log: " + std::generic_category().message(errno));
    }
}

WalFile::~WalFile() {
    if (m_fd >= 0) ::close(m_fd);
}

void WalFile::sync() const {
    while (::fdatasync(m_fd) != 0) {
        if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "fdatasync " + m_path);
    }
}

}  // namespace botbus::store
