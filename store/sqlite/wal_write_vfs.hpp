// A SQLite VFS that writes each commit's WAL frames with one pwrite.
//
// Why: SQLite writes every WAL frame as two pwrites (its 24-byte header, then
// the page), so a commit of 12 pages is 24 system calls. On the VMs botbusd
// runs on a small pwrite costs 2-5 µs, and one of 50 KB about as much as one
// of 4 KB: coalescing a commit's frames took its write from ~45-70 µs to
// ~5 µs in a microbenchmark, and is the larger part of COMMIT's cost
// (docs/PERFORMANCE.md).
//
// Operation: "botbus-unix" wraps the default VFS and passes everything
// through, except the writes to a file opened as a WAL: a write that
// continues the pending run is appended to an in-memory buffer; anything
// else (a write elsewhere, a read, a sync, a truncate, a size query, a file
// control, a lock, close) writes the buffer out first. Frames become
// visible to readers only when a commit updates the wal-index header, and a
// commit ends with the frame whose header carries the database size (the
// commit marker): the buffer is written out as soon as that frame's page is
// appended, inside the same xWrite, so a failure (ENOSPC, EIO) is that
// write's error and SQLite rolls the commit back as it would have. What
// COMMIT returns is therefore on the file (in the page cache) exactly as
// without this layer, ready for WalFile's fdatasync. It goes out in pieces
// under 124 KiB (the unix VFS truncates longer writes). The buffer is also
// written out past a bound (1 MiB; a transaction larger than that spills
// frames before its commit, which SQLite publishes only with the commit).
// Concurrency: a file is used by one connection at a time (SQLite's rule);
// nothing is shared between files.
// Limitations: assumes SQLite's WAL layout (32-byte header, frames of a
// 24-byte header then one page), which is its documented file format.
#pragma once

namespace botbus::store {

// Registers the VFS once per process (thread-safe) and returns its name, for
// sqlite3_open_v2 / SQLite::Database.
const char* wal_write_vfs();

}  // namespace botbus::store
