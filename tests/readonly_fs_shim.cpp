// A read-only file system for end-to-end tests, as an LD_PRELOAD library:
// tests run as root in CI, and root ignores permission bits, while a real
// read-only mount needs privileges a test does not have. Under
// BOTBUS_READONLY_DIR, every call that would write to the file system fails
// with EROFS, as the kernel fails it on a read-only mount: open/openat for
// writing or creating, creat, mkdir, unlink, rename, truncate. Opening for
// reading, and every descriptor opened before, work as before.
//
// Operation: the directory is read from the environment at load; paths are
// compared as given (absolute, or relative to the working directory when the
// directory is given relative), which is how botbusd and SQLite name the
// files of a data directory. At load the shim creates BOTBUS_READONLY_MARKER
// (a file outside the read-only directory) when the process's calls do reach
// it, so a test can tell "refused" from "not intercepted".
// Limitations: Linux and glibc; openat with a directory descriptor other
// than AT_FDCWD and a relative path is passed through.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

char g_dir[2048];  // BOTBUS_READONLY_DIR; empty: disabled

bool under_readonly_dir(const char* path) {
    if (g_dir[0] == '\0' || path == nullptr) return false;
    const auto n = std::strlen(g_dir);
    return std::strncmp(path, g_dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

bool writes(int flags) { return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0; }

template <typename Function>
Function next(const char* name) {
    // NOLINTNEXTLINE: dlsym returns an object pointer that is a function's.
    return reinterpret_cast<Function>(::dlsym(RTLD_NEXT, name));
}

int refuse(const char* call, const char* path) {
    std::fprintf(stderr, "readonly_fs_shim: %s %s: Read-only file system\n", call, path);
    errno = EROFS;
    return -1;
}

mode_t mode_argument(int flags, va_list args) {
    return (flags & (O_CREAT | O_TMPFILE)) != 0 ? static_cast<mode_t>(va_arg(args, int)) : 0;
}

int intercepted_open(const char* name, int dirfd, const char* path, int flags, mode_t mode) {
    if (writes(flags) && (dirfd == AT_FDCWD || path[0] == '/') && under_readonly_dir(path)) {
        return refuse(name, path);
    }
    static const auto real = next<int (*)(int, const char*, int, ...)>("openat");
    return real(dirfd, path, flags, mode);
}

__attribute__((constructor)) void load() {
    const char* dir = std::getenv("BOTBUS_READONLY_DIR");
    if (dir == nullptr || *dir == '\0' || std::strlen(dir) >= sizeof g_dir) return;
    std::strcpy(g_dir, dir);
    while (std::strlen(g_dir) > 1 && g_dir[std::strlen(g_dir) - 1] == '/') g_dir[std::strlen(g_dir) - 1] = '\0';
    Dl_info found{};
    Dl_info self{};
    if (::dladdr(::dlsym(RTLD_DEFAULT, "open"), &found) == 0 ||
        ::dladdr(reinterpret_cast<void*>(&under_readonly_dir), &self) == 0 || found.dli_fbase != self.dli_fbase) {
        return;
    }
    if (const char* marker = std::getenv("BOTBUS_READONLY_MARKER"); marker && *marker) {
        static const auto real = next<int (*)(int, const char*, int, ...)>("openat");
        const int fd = real(AT_FDCWD, marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) ::close(fd);
    }
}

}  // namespace

extern "C" {

int open(const char* path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    const auto mode = mode_argument(flags, args);
    va_end(args);
    return intercepted_open("open", AT_FDCWD, path, flags, mode);
}

int open64(const char* path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    const auto mode = mode_argument(flags, args);
    va_end(args);
    return intercepted_open("open64", AT_FDCWD, path, flags, mode);
}

int __open_2(const char* path, int flags) { return intercepted_open("open", AT_FDCWD, path, flags, 0); }
int __open64_2(const char* path, int flags) { return intercepted_open("open64", AT_FDCWD, path, flags, 0); }

int openat(int dirfd, const char* path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    const auto mode = mode_argument(flags, args);
    va_end(args);
    return intercepted_open("openat", dirfd, path, flags, mode);
}

int openat64(int dirfd, const char* path, int flags, ...) {
    va_list args;
    va_start(args, flags);
    const auto mode = mode_argument(flags, args);
    va_end(args);
    return intercepted_open("openat64", dirfd, path, flags, mode);
}

int creat(const char* path, mode_t mode) {
    return intercepted_open("creat", AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

int mkdir(const char* path, mode_t mode) {
    if (under_readonly_dir(path)) {
        // The kernel reports an existing directory first.
        struct stat st {};
        if (::stat(path, &st) == 0) {
            errno = EEXIST;
            return -1;
        }
        return refuse("mkdir", path);
    }
    static const auto real = next<int (*)(const char*, mode_t)>("mkdir");
    return real(path, mode);
}

int unlink(const char* path) {
    if (under_readonly_dir(path)) return refuse("unlink", path);
    static const auto real = next<int (*)(const char*)>("unlink");
    return real(path);
}

int rename(const char* from, const char* to) {
    if (under_readonly_dir(from) || under_readonly_dir(to)) return refuse("rename", from);
    static const auto real = next<int (*)(const char*, const char*)>("rename");
    return real(from, to);
}

int truncate(const char* path, off_t length) {
    if (under_readonly_dir(path)) return refuse("truncate", path);
    static const auto real = next<int (*)(const char*, off_t)>("truncate");
    return real(path, length);
}

}  // extern "C"
