// The frontend's guest memory as SET_MEM_TABLE describes it: each region's
// fd mapped MAP_SHARED. Every address the guest or the frontend hands us is
// translated here, and a range that is not wholly inside mapped memory is
// refused, so no access can land outside the mappings. Runs on the backend's
// service thread.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "vhost_user.h"

namespace blockring {
namespace vhost {

class MemoryTable {
 public:
  MemoryTable() = default;
  ~MemoryTable() { Clear(); }
  MemoryTable(const MemoryTable&) = delete;
  MemoryTable& operator=(const MemoryTable&) = delete;

  // Replaces the table. fds[i] belongs to regions[i]; they are closed here
  // whatever happens (a mapping keeps what it needs). 0 or -errno (-EINVAL
  // for a malformed table; the old table is gone either way).
  int Set(const MemRegion* regions, uint32_t n, const int* fds);
  void Clear();
  bool empty() const { return regions_.empty(); }

  // Host address of [uva, uva + len) in the frontend's address space (vring
  // addresses), when it lies inside one region; nullptr otherwise.
  char* FromUser(uint64_t uva, uint64_t len) const;
  // Appends iovecs covering guest-physical [gpa, gpa + len), split where it
  // crosses regions. False (out untouched past its old size) when any byte
  // is outside guest memory or out would exceed max entries.
  bool FromGuest(uint64_t gpa, uint64_t len, std::vector<iovec>* out, size_t max) const;
  // Host address of [gpa, gpa + len) inside one region, or nullptr.
  char* FromGuestContiguous(uint64_t gpa, uint64_t len) const;

 private:
  struct Region {
    uint64_t guest_addr;
    uint64_t size;
    uint64_t user_addr;
    char* host;       // guest_addr maps here
    void* map_base;   // what munmap gets
    size_t map_len;
  };
  const Region* FindGuest(uint64_t gpa) const;
  std::vector<Region> regions_;
};

}  // namespace vhost
}  // namespace blockring
