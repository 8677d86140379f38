// Blocking file syscalls the threads and mmap backends run: vectored
// read/write, sync, fallocate, and closing fds. Each returns bytes or 0,
// or -errno; none retries EINTR (the engine retries).
#pragma once

#include <sys/uio.h>

#include <cstdint>

namespace blockring {

// preadv of at most kIovMax iovecs.
int64_t FileReadv(int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset);
// pwritev of at most kIovMax iovecs; with dsync, pwritev2(RWF_DSYNC), or
// pwritev then fdatasync before Linux 4.7.
int64_t FileWritev(int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset, bool dsync);
// fsync with metadata, else fdatasync.
int FileSync(int fd, bool metadata);
int FileFallocate(int fd, int mode, uint64_t offset, uint64_t length);
// A close-on-exec duplicate of fd (same open file description), or -errno.
int DuplicateFd(int fd);
// ftruncate, retried on EINTR.
int TruncateFile(int fd, uint64_t size);
// close(2); the fd is gone whatever it returns.
int CloseFd(int fd);

}  // namespace blockring
