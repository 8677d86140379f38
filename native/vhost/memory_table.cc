#include "memory_table.h"

#include <errno.h>

#include "../kernel/block_device.h"
#include "../kernel/file.h"
#include "../kernel/mmap.h"
#include "../kernel/socket.h"

namespace blockring {
namespace vhost {
namespace {

// a + b without wrapping past 2^64.
bool AddOverflows(uint64_t a, uint64_t b, uint64_t* sum) { return __builtin_add_overflow(a, b, sum); }

}  // namespace

void MemoryTable::Clear() {
  for (const Region& r : regions_) UnmapMemory(r.map_base, r.map_len);
  regions_.clear();
}

int MemoryTable::Set(const MemRegion* regions, uint32_t n, const int* fds) {
  Clear();
  int err = 0;
  for (uint32_t i = 0; i < n; i++) {
    const MemRegion& m = regions[i];
    uint64_t end, user_end, map_len;
    // The fd is mapped from 0 so mmap_offset need not be page-aligned.
    if (!m.memory_size || AddOverflows(m.guest_phys_addr, m.memory_size, &end) ||
        AddOverflows(m.userspace_addr, m.memory_size, &user_end) ||
        AddOverflows(m.mmap_offset, m.memory_size, &map_len) || map_len > SIZE_MAX / 2) {
      err = -EINVAL;
    }
    for (const Region& r : regions_) {
      // Overlapping guest ranges would make translation ambiguous.
      if (!err && m.guest_phys_addr < r.guest_addr + r.size && r.guest_addr < end) err = -EINVAL;
    }
    // A region longer than its file would fault (SIGBUS) on the first
    // access past the end; refuse it up front.
    Geometry g;
    if (!err && (QueryGeometry(fds[i], &g) < 0 || g.size < map_len)) err = -EINVAL;
    void* base = nullptr;
    if (!err) err = MapFile(fds[i], 0, static_cast<size_t>(map_len), true, false, &base);
    if (!err) {
      regions_.push_back({m.guest_phys_addr, m.memory_size, m.userspace_addr,
                          static_cast<char*>(base) + m.mmap_offset, base, static_cast<size_t>(map_len)});
    }
  }
  for (uint32_t i = 0; i < n; i++) CloseFd(fds[i]);
  if (err) Clear();
  return err;
}

char* MemoryTable::FromUser(uint64_t uva, uint64_t len) const {
  for (const Region& r : regions_) {
    if (uva >= r.user_addr && uva - r.user_addr <= r.size && len <= r.size - (uva - r.user_addr)) {
      return r.host + (uva - r.user_addr);
    }
  }
  return nullptr;
}

const MemoryTable::Region* MemoryTable::FindGuest(uint64_t gpa) const {
  for (const Region& r : regions_) {
    if (gpa >= r.guest_addr && gpa - r.guest_addr < r.size) return &r;
  }
  return nullptr;
}

char* MemoryTable::FromGuestContiguous(uint64_t gpa, uint64_t len) const {
  const Region* r = FindGuest(gpa);
  if (!r || len > r->size - (gpa - r->guest_addr)) return nullptr;
  return r->host + (gpa - r->guest_addr);
}

bool MemoryTable::FromGuest(uint64_t gpa, uint64_t len, std::vector<iovec>* out, size_t max) const {
  size_t start = out->size();
  while (len) {
    const Region* r = FindGuest(gpa);
    if (!r || out->size() >= max) {
      out->resize(start);
      return false;
    }
    uint64_t off = gpa - r->guest_addr;
    uint64_t n = r->size - off < len ? r->size - off : len;
    out->push_back({r->host + off, static_cast<size_t>(n)});
    gpa += n;  // cannot wrap: n stays inside a region that did not overflow
    len -= n;
  }
  return true;
}

}  // namespace vhost
}  // namespace blockring
