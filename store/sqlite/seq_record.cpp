#include "store/sqlite/seq_record.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "store/errors.hpp"

namespace botbus::store {
namespace {

constexpr std::size_t k_record_size = 32;
constexpr char k_magic[8] = {'B', 'O', 'T', 'B', 'U', 'S', 'S', 'Q'};
using RecordBytes = std::array<unsigned char, k_record_size>;

void put_u64_le(unsigned char* out, std::uint64_t value) {
    for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>((value >> (8 * i)) & 0xff);
}

std::uint64_t get_u64_le(const unsigned char* in) {
    std::uint64_t value = 0;
    for (int i = 0; i < 8; ++i) value |= static_cast<std::uint64_t>(in[i]) << (8 * i);
    return value;
}

RecordBytes encode(Seq seq) {
    RecordBytes bytes{};
    std::memcpy(bytes.data(), k_magic, sizeof k_magic);
    put_u64_le(bytes.data() + 8, seq);
    put_u64_le(bytes.data() + 16, ~seq);  // a torn or foreign record fails this check
    return bytes;
}

std::string errno_text() { return std::generic_category().message(errno); }

// Empty for an empty file (just created); throws StartupError for anything
// that is not a whole, consistent record.
std::optional<Seq> read_record(int fd, const std::string& path) {
    RecordBytes bytes{};
    std::size_t got = 0;
    while (got < bytes.size()) {
        const auto n = ::pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw StartupError(path + ": cannot read: " + errno_text());
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    if (got == 0) return std::nullopt;
    const auto seq = get_u64_le(bytes.data() + 8);
    if (got != bytes.size() || std::memcmp(bytes.data(), k_magic, sizeof k_magic) != 0 ||
        get_u64_le(bytes.data() + 16) != ~seq) {
        throw StartupError(path + ": not a botbus seq record (" + std::to_string(got) +
                           " bytes, or a damaged one); it records the highest acknowledged seq, so botbusd "
                           "will not guess: restore it, or remove it to start without the check once");
    }
    return seq;
}

}  // namespace

std::string SeqRecord::path_for(const std::string& database_path) {
    return std::filesystem::path(database_path).replace_extension(".seq").string();
}

std::optional<Seq> SeqRecord::read_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw StartupError(path + ": cannot open: " + errno_text());
    }
    try {
        auto seq = read_record(fd, path);
        ::close(fd);
        return seq;
    } catch (...) {
        ::close(fd);
        throw;
    }
}

SeqRecord::SeqRecord(std::string path) : m_path(std::move(path)) {
    m_fd = ::open(m_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (m_fd < 0) {
        throw StartupError(m_path + ": cannot open for writing: " + errno_text() +
                           "; botbusd writes its database, the WAL, its -shm file and this record in the "
                           "data directory, which must be writable");
    }
    try {
        m_initial = read_record(m_fd, m_path);
    } catch (...) {
        ::close(m_fd);
        throw;
    }
    m_written = m_durable = m_initial.value_or(0);
    m_thread = std::thread([this] { run(); });
}

SeqRecord::~SeqRecord() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_one();
    m_thread.join();
    ::close(m_fd);
}

void SeqRecord::write_locked(Seq seq) {
    const auto bytes = encode(seq);
    for (;;) {
        const auto n = ::pwrite(m_fd, bytes.data(), bytes.size(), 0);
        if (n == static_cast<ssize_t>(bytes.size())) break;
        if (n < 0 && errno == EINTR) continue;
        // A short write of 32 bytes at offset 0 does not happen on a local
        // file system; treat it as the failure it would be.
        throw std::system_error(n < 0 ? errno : EIO, std::generic_category(), "write " + m_path);
    }
    m_written = seq;
}

// Syncs what is written, without holding the mutex meanwhile (advance() must
// not wait for a device flush).
void SeqRecord::sync_locked(std::unique_lock<std::mutex>& lock) {
    const auto covered = m_written;
    m_syncing = true;
    lock.unlock();
    int error = 0;
    while (::fdatasync(m_fd) != 0) {
        if (errno != EINTR) {
            error = errno;
            break;
        }
    }
    lock.lock();
    m_syncing = false;
    m_wake.notify_all();
    if (error != 0) throw std::system_error(error, std::generic_category(), "fdatasync " + m_path);
    m_durable = std::max(m_durable, covered);
    m_last_sync = std::chrono::steady_clock::now();
}

void SeqRecord::rethrow_background_error_locked() const {
    if (m_background_error) std::rethrow_exception(m_background_error);
}

void SeqRecord::write_durable(Seq seq) {
    std::unique_lock lock(m_mutex);
    rethrow_background_error_locked();
    // The first write after opening always happens: it is start-up's proof
    // that the data directory takes writes.
    const bool first = m_last_sync == std::chrono::steady_clock::time_point{};
    if (seq > m_written || first) write_locked(std::max(seq, m_written));
    m_wake.wait(lock, [this] { return !m_syncing; });
    if (m_durable != m_written || first) sync_locked(lock);
}

void SeqRecord::advance(Seq seq) {
    std::unique_lock lock(m_mutex);
    rethrow_background_error_locked();
    if (seq <= m_written) return;
    write_locked(seq);
    lock.unlock();
    m_wake.notify_all();
}

void SeqRecord::run() {
    std::unique_lock lock(m_mutex);
    while (true) {
        m_wake.wait(lock, [this] { return m_stopping || (m_durable != m_written && !m_syncing); });
        if (m_stopping) return;
        // At most one flush per interval: wait out the rest of it (a stop
        // cuts the wait short; the store's shutdown syncs the record itself).
        const auto due = m_last_sync + k_durable_interval;
        if (m_wake.wait_until(lock, due, [this] { return m_stopping; })) return;
        if (m_syncing || m_durable == m_written) continue;
        try {
            sync_locked(lock);
        } catch (...) {
            m_background_error = std::current_exception();
            return;
        }
    }
}

}  // namespace botbus::store
