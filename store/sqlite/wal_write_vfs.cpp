#include "store/sqlite/wal_write_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <vector>

namespace botbus::store {
namespace {

constexpr char k_name[] = "botbus-unix";
constexpr std::size_t k_max_buffer = 1 << 20;
constexpr std::size_t k_max_write = 31 * 4096;
constexpr int k_frame_header = 24;

sqlite3_vfs* g_base = nullptr;  // the VFS wrapped (SQLite's default)

// Our file: the wrapped file's state follows this header in the same
// allocation (szOsFile covers both).
struct File {
    sqlite3_file base;  // must come first: SQLite sees this
    sqlite3_file* inner;
    bool wal;
    // The pending run of WAL writes: bytes from `start`.
    std::vector<char>* pending;
    sqlite3_int64 start;
    bool commit_next;  // the last write was the header of a commit frame
};

File& self(sqlite3_file* f) { return *reinterpret_cast<File*>(f); }

int flush(File& f) {
    if (!f.pending || f.pending->empty()) return SQLITE_OK;
    // In pieces below 128 KiB: the unix VFS masks a write's length with
    // 0x1ffff (it expects pages), so a longer one would come back short.
    int rc = SQLITE_OK;
    for (std::size_t done = 0; done < f.pending->size() && rc == SQLITE_OK; done += k_max_write) {
        const auto piece = std::min(k_max_write, f.pending->size() - done);
        rc = f.inner->pMethods->xWrite(f.inner, f.pending->data() + done, static_cast<int>(piece),
                                       f.start + static_cast<sqlite3_int64>(done));
    }
    f.pending->clear();
    return rc;
}

// Writes out what is pending, then forwards: for every method that may
// read, size, sync or lock the file.
template <typename Call>
int flushed_then(sqlite3_file* f, Call call) {
    auto& file = self(f);
    if (const int rc = flush(file); rc != SQLITE_OK) return rc;
    return call(file.inner);
}

int x_close(sqlite3_file* f) {
    auto& file = self(f);
    const int flushed = flush(file);
    const int rc = file.inner->pMethods ? file.inner->pMethods->xClose(file.inner) : SQLITE_OK;
    delete file.pending;
    file.pending = nullptr;
    return flushed != SQLITE_OK ? flushed : rc;
}

int x_read(sqlite3_file* f, void* out, int amount, sqlite3_int64 offset) {
    return flushed_then(f, [&](sqlite3_file* inner) { return inner->pMethods->xRead(inner, out, amount, offset); });
}

int x_write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
    auto& file = self(f);
    if (!file.wal) return file.inner->pMethods->xWrite(file.inner, data, amount, offset);
    auto& pending = *file.pending;
    const bool continues = !pending.empty() && offset == file.start + static_cast<sqlite3_int64>(pending.size());
    if (!continues) {
        if (const int rc = flush(file); rc != SQLITE_OK) return rc;
        file.start = offset;
    }
    const auto* bytes = static_cast<const char*>(data);
    pending.insert(pending.end(), bytes, bytes + amount);
    bool write_out = pending.size() >= k_max_buffer;
    if (amount == k_frame_header) {
        // A frame header: bytes 4..7 hold the database size after a commit,
        // 0 in the other frames of a transaction.
        static const char zeros[4] = {0, 0, 0, 0};
        file.commit_next = std::memcmp(bytes + 4, zeros, sizeof zeros) != 0;
    } else if (file.commit_next) {
        file.commit_next = false;
        write_out = true;  // the commit frame is complete
    }
    return write_out ? flush(file) : SQLITE_OK;
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
    return flushed_then(f, [&](sqlite3_file* inner) { return inner->pMethods->xTruncate(inner, size); });
}
int x_sync(sqlite3_file* f, int flags) {
    return flushed_then(f, [&](sqlite3_file* inner) { return inner->pMethods->xSync(inner, flags); });
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
    return flushed_then(f, [&](sqlite3_file* inner) { return inner->pMethods->xFileSize(inner, size); });
}
int x_lock(sqlite3_file* f, int level) {
    return flushed_then(f, [&](sqlite3_file* inner) { return inner->pMethods->xLock(inner, level); });
}
int x_unlock(sqlite3_file* f, int level) {
    return flushed_then(f, [&](sqlite3_file* inner) { return inner->pMethods->xUnlock(inner, level); });
}
int x_check_reserved_lock(sqlite3_file* f, int* out) {
    return flushed_then(f, [&](sqlite3_file* inner) { return inner->pMethods->xCheckReservedLock(inner, out); });
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
    return flushed_then(f, [&](sqlite3_file* inner) { return inner->pMethods->xFileControl(inner, op, arg); });
}
int x_sector_size(sqlite3_file* f) { return self(f).inner->pMethods->xSectorSize(self(f).inner); }
int x_device_characteristics(sqlite3_file* f) {
    return self(f).inner->pMethods->xDeviceCharacteristics(self(f).inner);
}
int x_shm_map(sqlite3_file* f, int page, int page_size, int extend, void volatile** out) {
    return self(f).inner->pMethods->xShmMap(self(f).inner, page, page_size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    return self(f).inner->pMethods->xShmLock(self(f).inner, offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { self(f).inner->pMethods->xShmBarrier(self(f).inner); }
int x_shm_unmap(sqlite3_file* f, int delete_flag) {
    return self(f).inner->pMethods->xShmUnmap(self(f).inner, delete_flag);
}
int x_fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
    return flushed_then(f, [&](sqlite3_file* inner) { return inner->pMethods->xFetch(inner, offset, amount, out); });
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 offset, void* p) {
    return self(f).inner->pMethods->xUnfetch(self(f).inner, offset, p);
}

const sqlite3_io_methods k_methods = {
    3,          x_close,     x_read,        x_write,      x_truncate,   x_sync,
    x_file_size, x_lock,     x_unlock,      x_check_reserved_lock, x_file_control, x_sector_size,
    x_device_characteristics, x_shm_map, x_shm_lock, x_shm_barrier, x_shm_unmap, x_fetch, x_unfetch,
};

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
    auto& file = self(f);
    file.base.pMethods = nullptr;  // until the inner file is open: SQLite then calls no method
    file.inner = reinterpret_cast<sqlite3_file*>(&file + 1);
    file.wal = (flags & SQLITE_OPEN_WAL) != 0;
    file.pending = nullptr;
    file.start = 0;
    file.commit_next = false;
    const int rc = g_base->xOpen(g_base, name, file.inner, flags, out_flags);
    if (rc != SQLITE_OK) return rc;
    if (file.inner->pMethods->iVersion < 3) {
        file.inner->pMethods->xClose(file.inner);
        return SQLITE_CANTOPEN;
    }
    if (file.wal) {
        file.pending = new (std::nothrow) std::vector<char>();
        if (!file.pending) {
            file.inner->pMethods->xClose(file.inner);
            return SQLITE_NOMEM;
        }
        file.pending->reserve(64 * 1024);
    }
    file.base.pMethods = &k_methods;
    return SQLITE_OK;
}

// The rest is the wrapped VFS's.
int x_delete(sqlite3_vfs*, const char* name, int sync_dir) { return g_base->xDelete(g_base, name, sync_dir); }
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) { return g_base->xAccess(g_base, name, flags, out); }
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
    return g_base->xFullPathname(g_base, name, n, out);
}
void* x_dl_open(sqlite3_vfs*, const char* name) { return g_base->xDlOpen(g_base, name); }
void x_dl_error(sqlite3_vfs*, int n, char* out) { g_base->xDlError(g_base, n, out); }
void (*x_dl_sym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
    return g_base->xDlSym(g_base, handle, symbol);
}
void x_dl_close(sqlite3_vfs*, void* handle) { g_base->xDlClose(g_base, handle); }
int x_randomness(sqlite3_vfs*, int n, char* out) { return g_base->xRandomness(g_base, n, out); }
int x_sleep(sqlite3_vfs*, int us) { return g_base->xSleep(g_base, us); }
int x_current_time(sqlite3_vfs*, double* out) { return g_base->xCurrentTime(g_base, out); }
int x_get_last_error(sqlite3_vfs*, int n, char* out) { return g_base->xGetLastError(g_base, n, out); }
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) { return g_base->xCurrentTimeInt64(g_base, out); }

sqlite3_vfs g_vfs;

}  // namespace

const char* wal_write_vfs() {
    static std::once_flag once;
    std::call_once(once, [] {
        g_base = sqlite3_vfs_find(nullptr);
        if (!g_base || g_base->iVersion < 2) throw std::runtime_error("SQLite has no usable default VFS");
        g_vfs = sqlite3_vfs{};
        g_vfs.iVersion = 2;
        g_vfs.szOsFile = static_cast<int>(sizeof(File)) + g_base->szOsFile;
        g_vfs.mxPathname = g_base->mxPathname;
        g_vfs.zName = k_name;
        g_vfs.xOpen = x_open;
        g_vfs.xDelete = x_delete;
        g_vfs.xAccess = x_access;
        g_vfs.xFullPathname = x_full_pathname;
        g_vfs.xDlOpen = x_dl_open;
        g_vfs.xDlError = x_dl_error;
        g_vfs.xDlSym = x_dl_sym;
        g_vfs.xDlClose = x_dl_close;
        g_vfs.xRandomness = x_randomness;
        g_vfs.xSleep = x_sleep;
        g_vfs.xCurrentTime = x_current_time;
        g_vfs.xGetLastError = x_get_last_error;
        g_vfs.xCurrentTimeInt64 = x_current_time_int64;
        if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK) {
            throw std::runtime_error("cannot register the botbus-unix VFS");
        }
    });
    return k_name;
}

}  // namespace botbus::store
