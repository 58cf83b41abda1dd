// Fault injection for end-to-end tests: an LD_PRELOAD library that makes the
// libc calls botbusd and SQLite use to write, sync and read the database fail, but
// only while a test has armed it.
//
// Operation: BOTBUS_FAULT_DIR names a directory. Each interposed call first
// checks whether the trigger file of its kind exists there; only then does it
// look at which file the descriptor refers to (/proc/self/fd) and fail:
//   fail-wal-sync    fsync/fdatasync of "<db>-wal"      -> EIO
//   fail-wal-write   write/pwrite/pwrite64 of "<db>-wal" -> ENOSPC
//   fail-db-sync     fsync/fdatasync of "*.db"           -> EIO
//   fail-db-write    write/pwrite/pwrite64 of "*.db"     -> ENOSPC
//   fail-db-read     pread/pread64 of "*.db" and "<db>-wal" -> EIO (SQLite
//                    reads pages with pread64; only reads that miss its
//                    page cache get here)
// A test arms a fault by creating the file and disarms it by removing it; the
// daemon needs no cooperation. Every injected failure is noted on stderr.
// At load the shim creates "<dir>/shim-interposed" when the process's calls
// do reach it (not so when the executable defines these symbols itself, as a
// statically linked sanitizer runtime does): tests skip without it.
// Without BOTBUS_FAULT_DIR every call goes straight through.
//
// Limitations: Linux and glibc only; a trigger check costs a stat() per write
// or sync while BOTBUS_FAULT_DIR is set, which only tests do.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

char g_dir[2048];  // BOTBUS_FAULT_DIR, read once at load; empty: disabled

enum class Kind { sync, write, read };

bool armed(const char* trigger) {
    if (g_dir[0] == '\0') return false;
    char path[2304];
    std::snprintf(path, sizeof path, "%s/%s", g_dir, trigger);
    struct stat st {};
    return ::stat(path, &st) == 0;
}

bool ends_with(const char* text, const char* suffix) {
    const auto n = std::strlen(text);
    const auto m = std::strlen(suffix);
    return n >= m && std::strcmp(text + n - m, suffix) == 0;
}

// True when `fd` is the database or its WAL and the matching trigger is
// armed; `target` then holds its path.
bool should_fail(int fd, Kind kind, char (&target)[1024]) {
    const bool reads = kind == Kind::read && armed("fail-db-read");
    const bool wal = reads || (kind != Kind::read && armed(kind == Kind::sync ? "fail-wal-sync" : "fail-wal-write"));
    const bool db = reads || (kind != Kind::read && armed(kind == Kind::sync ? "fail-db-sync" : "fail-db-write"));
    if (!wal && !db) return false;
    char link[64];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const auto n = ::readlink(link, target, sizeof target - 1);
    if (n <= 0) return false;
    target[n] = '\0';
    return (wal && ends_with(target, "-wal")) || (db && ends_with(target, ".db"));
}

template <typename Function>
Function next(const char* name) {
    // NOLINTNEXTLINE: dlsym returns an object pointer that is a function's.
    return reinterpret_cast<Function>(::dlsym(RTLD_NEXT, name));
}

int fail(const char* call, const char* target, int error) {
    std::fprintf(stderr, "fault_shim: failing %s of %s with %s\n", call, target, std::strerror(error));
    errno = error;
    return -1;
}

__attribute__((constructor)) void load() {
    const char* dir = std::getenv("BOTBUS_FAULT_DIR");
    if (dir == nullptr || std::strlen(dir) >= sizeof g_dir) return;
    std::strcpy(g_dir, dir);
    // Calls reach this library only if its definitions come first in the
    // lookup order: the one found must be in this object.
    Dl_info found{};
    Dl_info self{};
    if (::dladdr(::dlsym(RTLD_DEFAULT, "fdatasync"), &found) == 0 ||
        ::dladdr(reinterpret_cast<void*>(&armed), &self) == 0 || found.dli_fbase != self.dli_fbase) {
        return;
    }
    char marker[2304];
    std::snprintf(marker, sizeof marker, "%s/shim-interposed", g_dir);
    const int fd = ::open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) ::close(fd);
}

}  // namespace

extern "C" {

int fdatasync(int fd) {
    static const auto real = next<int (*)(int)>("fdatasync");
    char target[1024];
    if (should_fail(fd, Kind::sync, target)) return fail("fdatasync", target, EIO);
    return real(fd);
}

int fsync(int fd) {
    static const auto real = next<int (*)(int)>("fsync");
    char target[1024];
    if (should_fail(fd, Kind::sync, target)) return fail("fsync", target, EIO);
    return real(fd);
}

ssize_t write(int fd, const void* buffer, size_t size) {
    static const auto real = next<ssize_t (*)(int, const void*, size_t)>("write");
    char target[1024];
    if (should_fail(fd, Kind::write, target)) return fail("write", target, ENOSPC);
    return real(fd, buffer, size);
}

ssize_t pwrite(int fd, const void* buffer, size_t size, off_t offset) {
    static const auto real = next<ssize_t (*)(int, const void*, size_t, off_t)>("pwrite");
    char target[1024];
    if (should_fail(fd, Kind::write, target)) return fail("pwrite", target, ENOSPC);
    return real(fd, buffer, size, offset);
}

ssize_t pwrite64(int fd, const void* buffer, size_t size, off64_t offset) {
    static const auto real = next<ssize_t (*)(int, const void*, size_t, off64_t)>("pwrite64");
    char target[1024];
    if (should_fail(fd, Kind::write, target)) return fail("pwrite64", target, ENOSPC);
    return real(fd, buffer, size, offset);
}

ssize_t pread(int fd, void* buffer, size_t size, off_t offset) {
    static const auto real = next<ssize_t (*)(int, void*, size_t, off_t)>("pread");
    char target[1024];
    if (should_fail(fd, Kind::read, target)) return fail("pread", target, EIO);
    return real(fd, buffer, size, offset);
}

ssize_t pread64(int fd, void* buffer, size_t size, off64_t offset) {
    static const auto real = next<ssize_t (*)(int, void*, size_t, off64_t)>("pread64");
    char target[1024];
    if (should_fail(fd, Kind::read, target)) return fail("pread64", target, EIO);
    return real(fd, buffer, size, offset);
}

}  // extern "C"
