#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io_limits.h"

namespace blockring {
namespace {

int64_t Ret(ssize_t n) { return n < 0 ? -errno : n; }

}  // namespace

int OpenDeviceFile(const char* path, const OpenRequest& req, const char** syscall) {
  int flags = (req.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (req.create ? O_CREAT : 0) | (req.direct ? O_DIRECT : 0);
  *syscall = "stat";
  if (req.exclusive) {
    // O_EXCL without O_CREAT means "exclusive open" only for block devices.
    struct stat st;
    if (stat(path, &st) == 0 && S_ISBLK(st.st_mode)) flags |= O_EXCL;
  }
  *syscall = "open";
  int fd;
  do {
    fd = open(path, flags, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return -errno;
  if (req.has_size && !req.read_only) {
    struct stat st;
    *syscall = "fstat";
    if (fstat(fd, &st) < 0) {
      int e = -errno;
      CloseFd(fd);
      return e;
    }
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < req.size) {
      *syscall = "ftruncate";
      int e = TruncateFile(fd, req.size);
      if (e < 0) {
        CloseFd(fd);
        return e;
      }
    }
  }
  return fd;
}

int64_t FileLength(int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  return static_cast<int64_t>(st.st_size);
}

int TruncateFile(int fd, uint64_t size) {
  if (size > static_cast<uint64_t>(INT64_MAX)) return -EFBIG;
  int r;
  do {
    r = ftruncate(fd, static_cast<off_t>(size));
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

int DuplicateFd(int fd) {
  int r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return r < 0 ? -errno : r;
}

int CloseFd(int fd) { return close(fd) < 0 ? -errno : 0; }

int64_t FileReadv(int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset) {
  return Ret(preadv(fd, iov, static_cast<int>(ClampIovcnt(iovcnt)), static_cast<off_t>(offset)));
}

int64_t FileReadvNowait(int fd, const iovec* iov, uint32_t iovcnt, uint64_t offset) {
  // The raw call: glibc's wrapper is a cancellation point, and its
  // enable/disable pair costs as much as the call's entry on a page-cache hit.
  // The offset goes as (low, high) words; 64-bit kernels use the low one.
  ssize_t r = syscall(SYS_preadv2, fd, iov, static_cast<unsigned long>(ClampIovcnt(iovcnt)),
                      static_cast<unsigned long>(offset), static_cast<unsigned long>(offset >> 32), RWF_NOWAIT);
  // Kernels before 4.14 reject the flag with EINVAL; the caller stops asking.
  if (r < 0 && (errno == EINVAL || errno == ENOSYS)) return -EOPNOTSUPP;
  return Ret(r);
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

}  // namespace blockring
