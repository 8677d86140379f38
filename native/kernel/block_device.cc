#include "block_device.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

#include "uapi_compat.h"

namespace blockring {
namespace {

// statx through the raw syscall: DIOALIGN needs Linux 6.1, and older
// kernels simply leave the bit clear in stx_mask.
int StatxDioAlign(int fd, uint32_t* mem, uint32_t* offset) {
  StatxDio stx = {};
  long r = syscall(__NR_statx, fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx);
  if (r < 0) return -errno;
  if (!(stx.mask & STATX_DIOALIGN)) return -EOPNOTSUPP;
  *mem = stx.dio_mem_align;
  *offset = stx.dio_offset_align;
  return 0;
}

}  // namespace

int QueryGeometry(int fd, Geometry* g) {
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  *g = Geometry();
  StatxDioAlign(fd, &g->dio_mem_align, &g->dio_offset_align);
  if (S_ISBLK(st.st_mode)) {
    g->is_block_device = true;
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) return -errno;
    g->size = bytes;
    int lbs = 0;
    unsigned int pbs = 0;
    int ro = 0;
    if (ioctl(fd, BLKSSZGET, &lbs) == 0) g->logical_block_size = static_cast<uint32_t>(lbs);
    if (ioctl(fd, BLKPBSZGET, &pbs) == 0) g->physical_block_size = pbs;
    if (ioctl(fd, BLKROGET, &ro) == 0) g->read_only = ro != 0;
  } else {
    g->size = static_cast<uint64_t>(st.st_size);
    g->physical_block_size = static_cast<uint32_t>(st.st_blksize);
  }
  return 0;
}

int ProbeDirectAlignment(int fd, uint32_t* offset_align, uint32_t* mem_align) {
  constexpr size_t kMax = 4096;
  // Reads at or past end of file succeed before any alignment check, so a
  // file shorter than the largest probe cannot be probed: the caller then
  // assumes the conservative 4096.
  struct stat st;
  if (fstat(fd, &st) < 0) return -errno;
  if (!S_ISBLK(st.st_mode) && st.st_size < static_cast<off_t>(kMax)) return -ENODATA;
  void* mem = nullptr;
  if (posix_memalign(&mem, kMax, 2 * kMax) != 0) return -ENOMEM;
  char* buf = static_cast<char*>(mem);
  int r = -EINVAL;
  *offset_align = *mem_align = 0;
  // Smallest length (and so offset granularity) the kernel accepts.
  for (size_t len = 512; len <= kMax; len *= 2) {
    if (pread(fd, buf, len, 0) >= 0 || errno != EINVAL) {
      *offset_align = static_cast<uint32_t>(len);
      break;
    }
  }
  if (*offset_align) {
    // Smallest buffer misalignment accepted for that length.
    for (size_t align = 1; align <= kMax; align *= 2) {
      if (pread(fd, buf + align, *offset_align, 0) >= 0 || errno != EINVAL) {
        *mem_align = static_cast<uint32_t>(align);
        r = 0;
        break;
      }
    }
  }
  free(mem);
  return r;
}

int LockFileExclusive(int fd) {
  struct flock lk = {};
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  lk.l_start = 0;
  lk.l_len = 0;  // whole file, however it grows
  if (fcntl(fd, F_OFD_SETLK, &lk) < 0) return errno == EACCES ? -EAGAIN : -errno;
  return 0;
}

int64_t SeekDataOrHole(int fd, uint64_t offset, bool data) {
  off_t r = lseek(fd, static_cast<off_t>(offset), data ? SEEK_DATA : SEEK_HOLE);
  return r < 0 ? -errno : static_cast<int64_t>(r);
}

}  // namespace blockring
