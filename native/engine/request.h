// One block request as the engine and its backends see it. Requests are
// pooled by the Engine; nothing here allocates on the hot path except
// vectors longer than the inline iovec slots.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "memory_block.h"
#include "syscall.h"

namespace blockring {

enum class Op : uint8_t { kRead = 0, kWrite = 1, kFlush = 2, kDiscard = 3, kWriteZeroes = 4 };
enum class Tag : uint8_t { kSimple = 0, kOrdered = 1, kHead = 2 };

enum RequestFlags : uint16_t {
  kFlagFua = 1 << 0,            // write with RWF_DSYNC
  kFlagFlushMetadata = 1 << 1,  // flush: fsync instead of fdatasync
  kFlagUnmap = 1 << 2,          // write-zeroes may deallocate
  kFlagRaw = 1 << 3,            // completion goes to the raw completion queue
  kFlagFixedBuffer = 1 << 4,    // buffer lies in io_uring registered buffer buf_index
};

struct Device;

// Where the engine holds a request (Engine::Cancel looks).
enum class Stage : uint8_t {
  kDormant,  // in its device's task set, behind an ORDERED/HEAD request
  kBacklog,  // enabled, waiting for room in the backend
  kIssued,   // handed to the backend (staged or in the kernel)
  kInstant,  // enabled, needs no I/O; finishes on the next pass
  kTranslated,  // enabled on an image device: split into pieces, or parked
  kDone,     // finished, not yet handed to a sink
};

// Intrusive doubly-linked list hook used by the scheduler.
struct ListHook {
  struct Request* prev = nullptr;
  struct Request* next = nullptr;
};

struct Request {
  uint64_t user_data = 0;
  Op op = Op::kRead;
  Tag tag = Tag::kSimple;
  uint16_t flags = 0;
  uint16_t buf_index = 0;  // registered buffer index when kFlagFixedBuffer
  uint8_t attempt = 0;     // backend-private marker for the attempt in flight
  Stage stage = Stage::kDone;  // set by Engine::Accept
  bool cancelled = false;  // Engine::Cancel: finish with the next attempt's result, no retry
  Syscall syscall = Syscall::kNone;  // what the backend issued for the last attempt
  Device* dev = nullptr;

  uint64_t offset = 0;  // device offset of the whole request
  uint64_t length = 0;  // total bytes (read/write/discard/write-zeroes)
  uint64_t done = 0;    // bytes already transferred (short I/O resubmission)

  // Current iovec window: advanced past `done` bytes on resubmission.
  iovec* iov = nullptr;
  uint32_t iovcnt = 0;
  iovec iov_inline[2] = {};
  std::vector<iovec> iov_heap;

  int64_t result = 0;
  uint32_t retries = 0;

  // Native memory the buffers lie in (allocAligned, mapped regions), held
  // until the engine frees the request: the kernel is done with it then.
  BlockHold hold;
  std::vector<BlockHold> more_holds;  // vectored requests over several blocks

  // Scheduler state (per device).
  uint64_t seq = 0;
  ListHook active;   // enabled and not completed, by seq
  ListHook barrier;  // enabled ORDERED/HEAD not completed, by seq
  Request* dormant_next = nullptr;

  // Ring-wide trace sequence numbers (0 = not yet).
  uint64_t issue_seq = 0;
  uint64_t complete_seq = 0;
  // Index + 1 of its entry in dev->log (0 = not logged yet).
  uint64_t log_entry = 0;

  // A piece of an image request (Device::map): finishing it finishes the
  // parent once its last piece is done.
  Request* parent = nullptr;
  uint32_t pieces = 0;       // parent: pieces not yet finished
  int64_t piece_error = 0;   // parent: the first piece's error
  uint32_t park_token = 0;   // parked: index + 1 in the engine's parked table

  // Engine queues: backlog (enabled, waiting for room) and the free list.
  Request* next = nullptr;

  void SetIovecs(uint32_t n) {
    if (n <= 2) {
      iov = iov_inline;
    } else {
      iov_heap.resize(n);
      iov = iov_heap.data();
    }
    iovcnt = n;
  }
  void AdvanceIovecs(uint64_t bytes);
  // Holds the block under [data, data + length), if any.
  void HoldMemory(const void* data, size_t length) {
    BlockHold h = FindBlock(data, length);
    if (!h || (hold && hold.get() == h.get())) return;
    if (!hold) {
      hold = std::move(h);
    } else {
      more_holds.push_back(std::move(h));
    }
  }
  uint64_t RemainingOffset() const { return offset + done; }
  uint64_t Remaining() const { return length - done; }
  bool IsTransfer() const { return op == Op::kRead || op == Op::kWrite; }
};

}  // namespace blockring
