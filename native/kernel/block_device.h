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

}  // namespace blockring
