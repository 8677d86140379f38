#include "block_device.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/stat.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace blockring {
namespace {

// statx through the raw syscall: DIOALIGN needs Linux 6.1, and older
// kernels simply leave the bit clear in stx_mask.
int StatxDioAlign(int fd, uint32_t* mem, uint32_t* offset) {
  struct statx stx = {};
  long r = syscall(__NR_statx, fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx);
  if (r < 0) return -errno;
  if (!(stx.stx_mask & STATX_DIOALIGN)) return -EOPNOTSUPP;
  *mem = stx.stx_dio_mem_align;
  *offset = stx.stx_dio_offset_align;
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

}  // namespace blockring
