// Choices every backend makes the same way: the fallocate mode for discard
// and write-zeroes, and how many O_DIRECT submissions go per kernel entry.
#pragma once

#include <linux/falloc.h>

#include <cstdint>

#include "request.h"

namespace blockring {

// Files: deallocate (discard, or write-zeroes with unmap) or zero a range.
// Block devices: fallocate is BLKZEROOUT (unmapping with PUNCH_HOLE), so a
// discard there still reads back as zeros.
inline int FallocateMode(const Request& r) {
  return (r.op == Op::kDiscard || (r.flags & kFlagUnmap)) ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
                                                          : FALLOC_FL_ZERO_RANGE;
}

// The most staged submissions per io_uring_enter/io_submit. With O_DIRECT
// the block layer plugs any submission of more than two requests and
// starts the device only when the whole batch is issued; submitting in
// small chunks lets the device start on the first requests while the
// kernel issues the rest (measured on virtio-blk at depth 32: ~15% more
// IOPS with chunks of 2; bench/RESULTS.md). 0 = everything at once.
inline uint32_t SubmitChunk(uint32_t staged, uint32_t staged_direct, uint32_t direct_submit_batch) {
  return staged_direct && direct_submit_batch && direct_submit_batch < staged ? direct_submit_batch : staged;
}

}  // namespace blockring
