// Write-fault copy-up for mapped copy-on-write images (qcow2 over a raw
// base). A CowFault describes one reserved virtual range whose clusters are
// mapped read-only (base file or zero pages) until their first write, or
// read-write from the overlay file. A process-wide SIGSEGV handler,
// installed once and chained to the handler installed before it (V8's,
// ASan's, or the default action), catches a write to a read-only cluster,
// takes a host cluster from the range's pool (pre-allocated and refcounted
// by JS), pwrites the cluster's current bytes there, maps it MAP_FIXED over
// the old pages and returns, so the store retries. The handler uses raw
// syscalls and atomics only: no malloc, no locks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace blockring {

// Cluster states (CowFault::state).
enum : uint8_t { kCowShared = 0, kCowBusy = 1, kCowOwned = 2 };

// One pool entry. JS fills host; a fault takes the entry, then publishes
// done = 1 (guest set, host now mapped) or done = 2 (copy-up failed, errno
// in guest's place, host unused).
struct CowSlot {
  uint64_t host;
  uint64_t guest;
  std::atomic<uint32_t> done;
};

struct CowFault {
  char* base;                     // the reserved range
  size_t span;                    // page-rounded guest size
  size_t cluster;                 // bytes, a multiple of the page size
  int overlay_fd;
  std::atomic<bool> armed;        // false: write faults are not ours (read-only, closed)
  std::atomic<uint8_t>* state;    // one per cluster
  size_t clusters;
  CowSlot* slots;                 // ring of capacity entries
  size_t capacity;
  std::atomic<uint64_t> filled;   // entries JS has supplied (monotonic)
  std::atomic<uint64_t> taken;    // entries faults have taken
  std::atomic<int> error;         // first failed copy-up (-errno), 0 if none
};

// Makes faults inside f->base..+span ours. 0, or -ENOSPC when every
// registry slot is in use, or the -errno of installing the handler.
int RegisterCowFault(CowFault* f);
// After this returns no handler is still using f.
void UnregisterCowFault(CowFault* f);
// The fault path, also called directly (dev.write to a shared cluster).
// 0 when cluster c is owned (now or already), -EAGAIN when another thread
// is copying it up, -ENOSPC when the pool is empty, or the copy-up's -errno.
int CowCopyUp(CowFault* f, size_t c);

}  // namespace blockring
