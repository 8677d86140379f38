#include "cow_region.h"

#include <errno.h>

#include "../kernel/file.h"
#include "../kernel/mmap.h"

namespace blockring {

int CowRegion::Create(int overlay_fd, uint64_t size, size_t cluster, size_t capacity,
                      std::shared_ptr<CowRegion>* out) {
  size_t page = PageSize();
  if (!size || !cluster || cluster % page || !capacity) return -EINVAL;
  std::shared_ptr<CowRegion> r(new CowRegion());
  r->size_ = size;
  CowFault& f = r->f_;
  f.span = static_cast<size_t>((size + page - 1) / page * page);
  f.cluster = cluster;
  f.clusters = (f.span + cluster - 1) / cluster;
  r->state_.reset(new std::atomic<uint8_t>[f.clusters]);
  for (size_t i = 0; i < f.clusters; i++) r->state_[i].store(kCowShared);
  f.state = r->state_.get();
  r->slots_.reset(new CowSlot[capacity]);
  for (size_t i = 0; i < capacity; i++) r->slots_[i].done.store(0);
  f.slots = r->slots_.get();
  f.capacity = capacity;
  // Our own fd: a fault on another thread may use it while the device closes its own.
  f.overlay_fd = DuplicateFd(overlay_fd);  // O_CLOEXEC, as every fd of ours
  if (f.overlay_fd < 0) return f.overlay_fd;
  void* base = nullptr;
  int err = ReserveMemory(f.span, &base);
  if (err < 0) return err;
  f.base = static_cast<char*>(base);
  err = RegisterCowFault(&f);
  if (err < 0) {
    UnmapMemory(base, f.span);
    f.base = nullptr;
    return err;
  }
  r->registered_ = true;
  *out = std::move(r);
  return 0;
}

CowRegion::~CowRegion() {
  BeforeUnmap();
  // Never handed to a Mapping: the reservation is still ours.
  if (f_.base && !unmapped_) UnmapMemory(f_.base, f_.span);
  if (f_.overlay_fd >= 0) CloseFd(f_.overlay_fd);
}

std::shared_ptr<Mapping> CowRegion::NewMapping(bool writable) {
  auto m = Mapping::Adopt(f_.base, f_.span, static_cast<size_t>(size_), writable, shared_from_this());
  mapping_ = m;
  unmapped_ = true;  // the Mapping unmaps from now on
  return m;
}

void CowRegion::BeforeUnmap() {
  f_.armed.store(false);
  if (registered_) UnregisterCowFault(&f_);
  registered_ = false;
}

int CowRegion::MapOverlay(uint64_t offset, size_t length, uint64_t host, bool writable) {
  if (offset % PageSize() || offset + length > f_.span || !length) return -EINVAL;
  int err = MapFixed(f_.base + offset, length, f_.overlay_fd, host, writable);
  if (err < 0) return err;
  for (uint64_t c = offset / f_.cluster; c * f_.cluster < offset + length; c++) f_.state[c].store(kCowOwned);
  return 0;
}

int CowRegion::MapShared(uint64_t offset, size_t length, int fd) {
  if (offset % PageSize() || offset + length > f_.span || !length) return -EINVAL;
  return MapFixed(f_.base + offset, length, fd, offset, false);
}

size_t CowRegion::Supply(const uint64_t* hosts, size_t n) {
  size_t i = 0;
  uint64_t filled = f_.filled.load();
  for (; i < n && filled - drained_ < f_.capacity; i++, filled++) {
    CowSlot& s = f_.slots[filled % f_.capacity];
    s.host = hosts[i];
    s.done.store(0);
    f_.filled.store(filled + 1);  // publishes the entry to fault handlers
  }
  return i;
}

void CowRegion::Drain(std::vector<CowDone>* out) {
  uint64_t taken = f_.taken.load();
  for (; drained_ < taken; drained_++) {
    CowSlot& s = f_.slots[drained_ % f_.capacity];
    uint32_t done = s.done.load();
    if (!done) break;  // a handler is still copying this one
    if (done == 3) continue;  // reclaimed
    out->push_back(done == 1 ? CowDone{s.guest, s.host, 0} : CowDone{0, s.host, -static_cast<int>(s.guest)});
  }
}

}  // namespace blockring

namespace blockring {

void CowRegion::Reclaim(std::vector<uint64_t>* hosts) {
  uint64_t t = f_.taken.load();
  uint64_t end;
  // Claim [t, filled) as if faults had taken it, so no fault can.
  do {
    end = f_.filled.load();
  } while (!f_.taken.compare_exchange_weak(t, end));
  for (uint64_t i = t; i < end; i++) {
    CowSlot& s = f_.slots[i % f_.capacity];
    hosts->push_back(s.host);
    s.done.store(3);
  }
}

}  // namespace blockring
