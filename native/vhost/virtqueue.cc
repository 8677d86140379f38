#include "virtqueue.h"

#include <cstring>

#include "../kernel/barrier.h"

namespace blockring {
namespace vhost {
// Ring indices shared with the guest (kernel/barrier.h): acquire on the
// avail index orders it before the entries it publishes; release on the used
// index orders our used entries (and the data and status bytes) before it.

void Virtqueue::Reset() {
  *this = Virtqueue();
}

bool Virtqueue::Start(const MemoryTable& mem, bool event_idx, bool indirect) {
  started_ = false;
  desc_ = nullptr;
  avail_ = nullptr;
  used_ = nullptr;
  if (!addr_set || !num) return false;
  // Alignment the spec requires (16, 2, 4); unaligned rings would also make
  // our index loads misaligned.
  if (desc_uva % 16 || avail_uva % 2 || used_uva % 4) return false;
  desc_ = reinterpret_cast<Desc*>(mem.FromUser(desc_uva, 16ull * num));
  avail_ = reinterpret_cast<uint16_t*>(mem.FromUser(avail_uva, 6 + 2ull * num));
  used_ = reinterpret_cast<uint16_t*>(mem.FromUser(used_uva, 6 + 8ull * num));
  if (!desc_ || !avail_ || !used_) return false;
  event_idx_ = event_idx;
  indirect_ = indirect;
  used_idx_ = LoadRelaxed(used_ + 1);
  signalled_valid_ = false;
  broken_ = false;
  started_ = true;
  return true;
}

uint16_t Virtqueue::AvailIdx() const { return LoadAcquire(avail_ + 1); }

bool Virtqueue::WalkTable(const MemoryTable& mem, const Desc* table, uint32_t size, uint32_t first,
                          bool allow_indirect, Chain* chain) {
  uint32_t i = first;
  // Each descriptor of a table may appear once in a chain: more steps than
  // entries means the chain loops.
  for (uint32_t steps = 0;; steps++) {
    if (i >= size || steps >= size) return false;
    Desc d;
    memcpy(&d, &table[i], sizeof(d));  // one read: the guest may rewrite it
    if (d.flags & kDescIndirect) {
      // An indirect table must be the whole chain and may not nest.
      if (!allow_indirect || !indirect_ || steps != 0 || (d.flags & kDescNext) || d.len % sizeof(Desc) ||
          d.len == 0 || d.len / sizeof(Desc) > kMaxQueueSize) {
        return false;
      }
      const Desc* sub = reinterpret_cast<const Desc*>(mem.FromGuestContiguous(d.addr, d.len));
      if (!sub || reinterpret_cast<uintptr_t>(sub) % alignof(Desc)) {
        chain->bad_address = chain->last_dropped = true;  // well-formed, pointing outside memory
        return true;
      }
      return WalkTable(mem, sub, d.len / sizeof(Desc), 0, false, chain);
    }
    bool write = d.flags & kDescWrite;
    // Readable buffers come first, then writable ones (2.7.4.2).
    if (!write && !chain->writable.empty()) return false;
    std::vector<iovec>* out = write ? &chain->writable : &chain->readable;
    size_t room = kMaxSegments - chain->readable.size() - chain->writable.size();
    chain->last_dropped = !mem.FromGuest(d.addr, d.len, out, out->size() + room);
    if (chain->last_dropped) {
      if (chain->readable.size() + chain->writable.size() >= kMaxSegments) return false;  // too long
      chain->bad_address = true;
    }
    if (!(d.flags & kDescNext)) return true;
    i = d.next;
  }
}

Virtqueue::Pop Virtqueue::Next(const MemoryTable& mem, Chain* chain) {
  if (!started_ || broken_) return Pop::kEmpty;
  uint16_t avail = AvailIdx();
  if (avail == last_avail) return Pop::kEmpty;
  if (static_cast<uint16_t>(avail - last_avail) > num) {
    broken_ = true;  // the driver claims more buffers than the ring holds
    return Pop::kBroken;
  }
  uint16_t head = LoadRelaxed(avail_ + 2 + last_avail % num);
  last_avail++;
  chain->Clear();
  chain->head = head;
  if (head >= num || !WalkTable(mem, desc_, num, head, true, chain)) {
    broken_ = true;
    return Pop::kBroken;
  }
  return Pop::kChain;
}

void Virtqueue::PushUsed(uint16_t head, uint32_t len) {
  UsedElem e = {head, len};
  auto* ring = reinterpret_cast<UsedElem*>(used_ + 2);
  memcpy(&ring[used_idx_ % num], &e, sizeof(e));
  used_idx_++;
  StoreRelease(used_ + 1, used_idx_);
}

bool Virtqueue::ShouldCall() {
  if (!has_rings()) return false;
  // Our used index store must be visible before we read the driver's
  // suppression state, or both sides can decide the other will act.
  FullFence();
  uint16_t old = signalled_used_, now = used_idx_;
  bool valid = signalled_valid_;
  signalled_used_ = now;
  signalled_valid_ = true;
  if (!event_idx_) return !(LoadRelaxed(avail_) & kAvailNoInterrupt);
  if (!valid) return true;
  uint16_t used_event = LoadRelaxed(avail_ + 2 + num);
  // vring_need_event: did now pass used_event since the last interrupt?
  return static_cast<uint16_t>(now - used_event - 1) < static_cast<uint16_t>(now - old);
}

bool Virtqueue::ArmKick() {
  if (!started_ || broken_) return false;
  if (event_idx_) {
    uint16_t* avail_event = reinterpret_cast<uint16_t*>(reinterpret_cast<UsedElem*>(used_ + 2) + num);
    StoreRelaxed(avail_event, last_avail);
    // Publish avail_event before re-reading the avail index (pairs with the
    // driver's barrier between writing avail idx and reading avail_event).
    FullFence();
  }
  return AvailIdx() != last_avail;
}

}  // namespace vhost
}  // namespace blockring
