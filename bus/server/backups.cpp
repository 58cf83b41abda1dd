#include "bus/server/backups.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace botbus::bus {

namespace fs = std::filesystem;

Backups::Backups(boost::asio::io_context& io, store::Store& store, std::string directory, Answer answer)
    : m_io(io), m_store(store), m_directory(std::move(directory)), m_answer(std::move(answer)) {}

Backups::~Backups() {
    m_cancel = true;
    if (m_thread.joinable()) m_thread.join();
}

void Backups::start(WantedBackup wanted) {
    if (m_running) {
        m_answer(wanted, encode_error_reply(wanted.id, {Errc::limit_reached, "a backup is being written (" +
                                                                                 m_running->name +
                                                                                 "): one at a time; ask again when "
                                                                                 "it is answered"}));
        return;
    }
    const auto target = (fs::path(m_directory) / wanted.name).string();
    std::error_code error;
    fs::create_directories(m_directory, error);
    if (error) {
        ++m_counters.failed;
        m_answer(wanted, encode_error_reply(wanted.id, {Errc::storage_error, "cannot create the backup directory " +
                                                                                 m_directory + ": " + error.message()}));
        return;
    }
    if (fs::exists(target, error)) {
        m_answer(wanted, encode_error_reply(wanted.id, {Errc::conflict, target + " exists: a backup never "
                                                                                 "overwrites; choose another name"}));
        return;
    }
    if (m_thread.joinable()) m_thread.join();  // the previous one, finished
    m_running = std::move(wanted);
    spdlog::info("backup: writing {}", target);
    std::weak_ptr<int> alive = m_alive;
    m_thread = std::thread([this, alive, target, id = m_running->id] {
        const auto started = std::chrono::steady_clock::now();
        std::string reply;
        std::uint64_t bytes = 0;
        std::string failure;
        try {
            const auto written = m_store.backup(target, m_cancel);
            const auto duration = std::chrono::duration_cast<std::chrono::microseconds>(
                std::chrono::steady_clock::now() - started);
            bytes = written.bytes;
            reply = encode_reply(id, BackupReply{written.path, written.bytes, written.last_seq, written.events,
                                                 static_cast<std::uint64_t>(duration.count())});
        } catch (const std::exception& e) {
            failure = e.what();
            reply = encode_error_reply(id, {m_cancel ? Errc::shutting_down : Errc::storage_error, failure});
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        boost::asio::post(m_io, [this, alive, reply = std::move(reply), failure, bytes, seconds]() mutable {
            if (alive.lock()) finish(std::move(reply), failure, bytes, seconds);
        });
    });
}

void Backups::finish(std::string reply, const std::string& failure, std::uint64_t bytes, double seconds) {
    if (!m_running) return;  // stop() answered it already
    if (failure.empty()) {
        ++m_counters.written;
        m_counters.last_bytes = bytes;
        m_counters.last_seconds = seconds;
        m_counters.last_finished_unix =
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
        spdlog::info("backup: wrote {} ({} bytes) in {:.3f} s", (fs::path(m_directory) / m_running->name).string(),
                     bytes, seconds);
    } else {
        ++m_counters.failed;
        spdlog::error("backup: {} failed: {}", m_running->name, failure);
    }
    const auto wanted = std::exchange(m_running, std::nullopt);
    m_answer(*wanted, std::move(reply));
}

void Backups::stop() {
    m_cancel = true;
    if (m_thread.joinable()) m_thread.join();
    if (const auto wanted = std::exchange(m_running, std::nullopt)) {
        m_answer(*wanted, encode_error_reply(wanted->id, {Errc::shutting_down, "botbusd is stopping: the backup "
                                                                               "was not finished"}));
    }
}

}  // namespace botbus::bus
