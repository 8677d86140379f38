// One split virtqueue (virtio 1.2 section 2.7) as the device side sees it:
// descriptor chains popped from the avail ring (direct or through one
// indirect table), each walk bounded so a loop or an over-long chain is
// caught, and completions pushed to the used ring with EVENT_IDX or flag
// based notification suppression. The guest may rewrite its rings at any
// time, so every field is read once into local memory before it is checked.
// Runs on the backend's service thread.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "memory_table.h"

namespace blockring {
namespace vhost {

// A popped chain: the buffers the device reads (driver -> device) followed
// by those it writes, as host iovecs inside guest memory.
struct Chain {
  uint16_t head = 0;
  std::vector<iovec> readable;
  std::vector<iovec> writable;
  bool bad_address = false;   // some buffer lies outside guest memory (those are left out)
  bool last_dropped = false;  // ... and the chain's last one is among them (no status byte)

  void Clear() {
    readable.clear();
    writable.clear();
    bad_address = false;
    last_dropped = false;
  }
};

class Virtqueue {
 public:
  enum class Pop { kEmpty, kChain, kBroken };

  // Most iovecs one chain may produce (the preadv/pwritev limit).
  static constexpr size_t kMaxSegments = 1024;

  // Configuration from SET_VRING_NUM/ADDR/BASE.
  uint32_t num = 0;
  uint64_t desc_uva = 0, avail_uva = 0, used_uva = 0;
  bool addr_set = false;
  uint16_t last_avail = 0;

  // Translates the ring addresses against mem and picks up the used index
  // the rings already hold. False when a ring is outside memory or misaligned.
  bool Start(const MemoryTable& mem, bool event_idx, bool indirect);
  void Stop() { started_ = false; }
  bool started() const { return started_; }
  // The rings were translated once; they stay valid until the memory table
  // changes, which waits for every request in flight.
  bool has_rings() const { return used_ != nullptr; }
  void ForgetRings() { desc_ = nullptr, avail_ = nullptr, used_ = nullptr; }
  bool broken() const { return broken_; }
  void MarkBroken() { broken_ = true; }
  void Reset();

  // Next chain. kBroken: the ring itself is malformed (head out of range,
  // a loop, a chain too long, a bad indirect table); the queue stops.
  Pop Next(const MemoryTable& mem, Chain* chain);
  void PushUsed(uint16_t head, uint32_t len);
  // Whether the driver wants an interrupt for what was pushed since the
  // last call (EVENT_IDX: used_event; else VRING_AVAIL_F_NO_INTERRUPT).
  bool ShouldCall();
  // With EVENT_IDX: publishes avail_event = last_avail so the driver kicks
  // for the next buffer, then reports whether buffers arrived meanwhile.
  bool ArmKick();

 private:
  bool WalkTable(const MemoryTable& mem, const Desc* table, uint32_t size, uint32_t first, bool allow_indirect,
                 Chain* chain);
  uint16_t AvailIdx() const;

  Desc* desc_ = nullptr;
  uint16_t* avail_ = nullptr;  // flags, idx, ring[num], used_event
  uint16_t* used_ = nullptr;   // flags, idx, then UsedElem ring[num], avail_event
  bool event_idx_ = false;
  bool indirect_ = false;
  bool started_ = false;
  bool broken_ = false;
  uint16_t used_idx_ = 0;
  uint16_t signalled_used_ = 0;
  bool signalled_valid_ = false;
};

}  // namespace vhost
}  // namespace blockring
