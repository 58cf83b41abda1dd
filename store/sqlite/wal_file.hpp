// The SQLite WAL file of a database, held open so that commits can be made
// durable by an fdatasync issued from any thread.
//
// Why: with synchronous=FULL SQLite fsyncs inside COMMIT, on the thread that
// executes the next batch. botbusd instead commits with synchronous=NORMAL
// (consistent after a crash, WAL synced before every checkpoint) and syncs the
// WAL itself before anything of the batch is shown; that sync can then run on
// another thread while the next batch executes, and one sync covers every
// batch committed before it started.
// Concurrency: sync() may be called from any thread; the descriptor is
// immutable after construction.
// Limitations: relies on SQLite keeping the WAL file (same inode) while any
// connection is open, which it does: the WAL is reset in place and deleted
// only when the last connection closes.
#pragma once

#include <string>

namespace botbus::store {

class WalFile {
public:
    // Opens `<database>-wal`, which must exist (an open WAL-mode connection
    // creates it). Throws StartupError naming the path.
    explicit WalFile(const std::string& database_path);
    WalFile(const WalFile&) = delete;
    WalFile& operator=(const WalFile&) = delete;
    ~WalFile();

    // Everything written to the WAL before the call is on disk when it
    // returns. Throws std::system_error when the kernel reports a write-back
    // failure: the caller must then assume nothing since the last successful
    // sync is durable.
    void sync() const;

    const std::string& path() const { return m_path; }

private:
    std::string m_path;
    int m_fd = -1;
};

}  // namespace botbus::store
