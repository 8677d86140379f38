// File and block-device geometry: fstat, statx DIOALIGN, BLK* ioctls.
#pragma once

#include <cstdint>

namespace blockring {

struct Geometry {
  uint64_t size = 0;
  bool is_block_device = false;
  bool read_only = false;          // BLKROGET on block devices
  uint32_t logical_block_size = 0;   // 0: unknown
  uint32_t physical_block_size = 0;  // 0: unknown
  uint32_t dio_mem_align = 0;        // statx STATX_DIOALIGN; 0: unknown/unsupported
  uint32_t dio_offset_align = 0;
};

// 0 or -errno.
int QueryGeometry(int fd, Geometry* g);

// O_DIRECT alignment of an fd opened with O_DIRECT when statx and the block
// ioctls do not tell: tries reads of growing size and buffer misalignment
// at offset 0 until the kernel accepts one (as QEMU's raw_probe_alignment).
// Fills *offset_align and *mem_align; 0 or -errno (-ENODATA: the file is
// too short to probe).
int ProbeDirectAlignment(int fd, uint32_t* offset_align, uint32_t* mem_align);

// Exclusive whole-file write lock owned by the open file description
// (F_OFD_SETLK), so two openers in one process collide too. 0, -EAGAIN
// when someone else holds it, or -errno.
int LockFileExclusive(int fd);

// lseek(SEEK_DATA) when data, else lseek(SEEK_HOLE), from offset: the start
// of the next data (or hole) run at or after offset, or -errno (-ENXIO: no
// data at or after offset). lseek moves the file position; every I/O path
// here is positional, so nothing depends on it.
int64_t SeekDataOrHole(int fd, uint64_t offset, bool data);

}  // namespace blockring
