// File and fd syscalls: opening, resizing and closing device files, and
// the blocking I/O the threads and mmap backends run (vectored read/write,
// sync, fallocate). The addon owns device fds from open to close: they
// never pass through node:fs, whose per-worker fd tracking
// (trackUnmanagedFds) would close the number again at worker exit, after
// it may have been reused by another thread. Each call returns bytes or 0,
// or -errno.
#pragma once

#include <sys/uio.h>

#include <cstdint>

namespace blockring {

struct OpenRequest {
  bool read_only = false;
  bool create = false;
  bool direct = false;
  bool exclusive = false;  // O_EXCL, on block devices only (files take an OFD lock later)
  bool has_size = false;   // grow a smaller regular file to size
  uint64_t size = 0;
};

// Opens path O_CLOEXEC per req. Returns the fd, or -errno with *syscall
// naming the call that failed ("open", "fstat", "ftruncate").
int OpenDeviceFile(const char* path, const OpenRequest& req, const char** syscall);
// ftruncate, retried on EINTR: 0 or -errno.
int TruncateFile(int fd, uint64_t size);
// fstat's st_size (what every writer of the file made it), or -errno.
int64_t FileLength(int fd);
// A close-on-exec duplicate of fd (same open file description), or -errno.
int DuplicateFd(int fd);
// close: 0 or -errno. The fd is gone either way (Linux never leaves it open).
int CloseFd(int fd);

// preadv of at most kIovMax iovecs (the engine resubmits the rest).
int64_t FileReadv(int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset);
// preadv2(RWF_NOWAIT) of at most kIovMax iovecs at offset: only what it can
// read without waiting for I/O (the page cache's data; a short count, or
// -EAGAIN when none). -ESPIPE on a pipe or FIFO (no offsets); -EOPNOTSUPP
// where the file or kernel (before 4.14) cannot.
int64_t FileReadvNowait(int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset);
// pwritev of at most kIovMax iovecs; with dsync, pwritev2(RWF_DSYNC), or
// pwritev then fdatasync before Linux 4.7.
int64_t FileWritev(int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset, bool dsync);
// fsync with metadata, else fdatasync.
int FileSync(int fd, bool metadata);
int FileFallocate(int fd, int mode, uint64_t offset, uint64_t length);

}  // namespace blockring
