// The policy for adding an open fd as a device: what the kernel says about
// it (size, block sizes, read-only), the O_DIRECT alignment and its
// fallbacks, and the exclusive lock for files. No N-API; the binding turns
// a failure into an errno error.
#pragma once

#include <cstdint>

#include "device.h"

namespace blockring {

struct DeviceOpenOptions {
  bool direct = false;
  bool read_only = false;
  bool growable = false;
  bool exclusive = false;
  bool probe_alignment = false;  // ignore statx/ioctl alignment and probe with reads (tests)
};

struct DeviceOpened {
  int fd = -1;  // the engine's own duplicate of the caller's fd (Engine::AddDevice takes it)
  DeviceConfig config;
  uint32_t logical_block_size = 512;
  uint32_t physical_block_size = 512;
  // On failure: the call that failed and what was being done.
  const char* syscall = "";
  const char* what = "";
};

// Inspects fd, locks it when exclusive and duplicates it: the engine owns
// the duplicate and the caller closes fd (runtimes such as Deno track and
// close their own). 0, or -errno with out->syscall and out->what set.
int PrepareDevice(int fd, const DeviceOpenOptions& options, DeviceOpened* out);

}  // namespace blockring
