#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace blockring {

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
      close(fd);
      return e;
    }
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) < req.size) {
      *syscall = "ftruncate";
      int e = TruncateFile(fd, req.size);
      if (e < 0) {
        close(fd);
        return e;
      }
    }
  }
  return fd;
}

int TruncateFile(int fd, uint64_t size) {
  if (size > static_cast<uint64_t>(INT64_MAX)) return -EFBIG;
  int r;
  do {
    r = ftruncate(fd, static_cast<off_t>(size));
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

int CloseFile(int fd) { return close(fd) < 0 ? -errno : 0; }

}  // namespace blockring
