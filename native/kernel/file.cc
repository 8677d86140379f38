#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <unistd.h>

#include "io_limits.h"

namespace blockring {
namespace {

int64_t Ret(ssize_t n) { return n < 0 ? -errno : n; }

}  // namespace

int64_t FileReadv(int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset) {
  return Ret(preadv(fd, iov, static_cast<int>(ClampIovcnt(iovcnt)), static_cast<off_t>(offset)));
}

int64_t FileWritev(int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset, bool dsync) {
  int n = static_cast<int>(ClampIovcnt(iovcnt));
  off_t off = static_cast<off_t>(offset);
  if (!dsync) return Ret(pwritev(fd, iov, n, off));
  ssize_t r = pwritev2(fd, iov, n, off, RWF_DSYNC);
  if (r < 0 && (errno == ENOSYS || errno == EOPNOTSUPP)) {
    // Before Linux 4.7 there is no RWF_DSYNC: write, then fdatasync.
    r = pwritev(fd, iov, n, off);
    if (r >= 0 && fdatasync(fd) < 0) r = -1;
  }
  return Ret(r);
}

int FileSync(int fd, bool metadata) { return (metadata ? fsync(fd) : fdatasync(fd)) < 0 ? -errno : 0; }

int FileFallocate(int fd, int mode, uint64_t offset, uint64_t length) {
  return fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(length)) < 0 ? -errno : 0;
}

int DuplicateFd(int fd) {
  int r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return r < 0 ? -errno : r;
}

int TruncateFile(int fd, uint64_t size) {
  while (ftruncate(fd, static_cast<off_t>(size)) < 0) {
    if (errno != EINTR) return -errno;
  }
  return 0;
}

int CloseFd(int fd) { return close(fd) < 0 ? -errno : 0; }

}  // namespace blockring
