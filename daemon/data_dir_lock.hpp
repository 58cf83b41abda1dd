// One botbusd per data directory: `<data-dir>/botbus.lock`, held with
// flock(2) for as long as the daemon serves (or a restore runs).
//
// Two daemons on one database would each keep their own idea of the log's
// head, sessions and deliveries; SQLite would serialise their writes and
// nothing would say anything was wrong. The kernel drops the lock with the
// process, so a kill -9 never leaves a stale one. The file holds the
// holder's pid, for the message a second one gets.
#pragma once

#include <string>

namespace botbus::daemon {

class DataDirLock {
public:
    // Throws std::runtime_error naming the directory and the holder's pid
    // when another process holds it, or the cause when it cannot be made.
    explicit DataDirLock(const std::string& data_dir);
    DataDirLock(const DataDirLock&) = delete;
    DataDirLock& operator=(const DataDirLock&) = delete;
    ~DataDirLock();

private:
    int m_fd = -1;
};

}  // namespace botbus::daemon
