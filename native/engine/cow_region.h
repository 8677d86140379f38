// A copy-on-write mapping of a qcow2 overlay over a raw base (see
// kernel/cow_fault.h for the fault path): the reservation, its per-cluster
// mappings, the pool of free host clusters JS supplies and the record of
// copy-ups JS drains into L2 entries. No N-API. Runs on the JS thread except
// CopyUp, which any thread's fault handler runs too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "../kernel/cow_fault.h"
#include "mapping.h"

namespace blockring {

struct CowDone {
  uint64_t guest;  // cluster index
  uint64_t host;   // byte offset in the overlay
  int err;         // 0: host now holds guest's data; else -errno and host is unused
};

class CowRegion final : public UnmapHook, public std::enable_shared_from_this<CowRegion> {
 public:
  // size: guest bytes; cluster: a multiple of the page size. 0 and *out, or -errno.
  static int Create(int overlay_fd, uint64_t size, size_t cluster, size_t capacity, std::shared_ptr<CowRegion>* out);
  ~CowRegion() override;

  // Maps guest bytes [offset, offset + length) (page-aligned offset) from the
  // overlay at host (owned clusters), from fd at the same offset (the base),
  // or zero pages (fd < 0). 0 or -errno.
  int MapOverlay(uint64_t offset, size_t length, uint64_t host, bool writable);
  int MapShared(uint64_t offset, size_t length, int fd);
  // Write faults are ours from now (true) or chain to the previous handler.
  void Arm(bool armed) { f_.armed.store(armed); }
  // Appends host offsets to the pool; returns how many fit.
  size_t Supply(const uint64_t* hosts, size_t n);
  size_t Available() const { return f_.filled.load() - f_.taken.load(); }
  // Moves finished copy-ups (in pool order) to out; stops at one in progress.
  void Drain(std::vector<CowDone>* out);
  // Takes back the entries no fault has taken (call disarmed).
  void Reclaim(std::vector<uint64_t>* hosts);
  int CopyUp(uint64_t cluster) { return CowCopyUp(&f_, cluster); }
  int TakeError() { return f_.error.exchange(0); }
  // The mapping handed to MappedRegion (it unmaps; this forgets it first).
  std::shared_ptr<Mapping> mapping() const { return mapping_.lock(); }
  std::shared_ptr<Mapping> NewMapping(bool writable);

  void BeforeUnmap() override;

 private:
  CowRegion() = default;
  CowFault f_{};
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  std::unique_ptr<CowSlot[]> slots_;
  uint64_t size_ = 0;
  uint64_t drained_ = 0;
  bool registered_ = false;
  bool unmapped_ = false;
  std::weak_ptr<Mapping> mapping_;
};

}  // namespace blockring
