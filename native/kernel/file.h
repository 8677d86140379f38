// Opening, resizing and closing device files. The addon owns these fds from
// open to close: they never pass through node:fs, whose per-worker fd
// tracking (trackUnmanagedFds) would close the number again at worker exit,
// after it may have been reused by another thread.
#pragma once

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
// ftruncate: 0 or -errno.
int TruncateFile(int fd, uint64_t size);
// close: 0 or -errno. The fd is gone either way (Linux never leaves it open).
int CloseFile(int fd);

}  // namespace blockring
