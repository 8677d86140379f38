// Opening a device: the open itself (O_CLOEXEC; the fd never passes
// through node:fs, whose per-worker fd tracking would close the number again
// at worker exit, nor through any runtime's fd table), what the kernel says
// about it (size, block sizes, read-only), the O_DIRECT alignment and its
// fallbacks, and the exclusive lock for files. No N-API; any thread (the
// binding runs it on the libuv threadpool). The binding turns a failure into
// an errno error.
#pragma once

#include <cstdint>

#include "device.h"

namespace blockring {

struct DeviceOpenOptions {
  bool read_only = false;
  bool create = false;
  bool direct = false;
  bool growable = false;
  bool exclusive = false;
  bool probe_alignment = false;  // ignore statx/ioctl alignment and probe with reads (tests)
  bool has_size = false;         // grow a smaller regular file to size
  uint64_t size = 0;
};

struct DeviceOpened {
  int fd = -1;  // Engine::AddDevice takes it; closed (kernel CloseFd) if it never does
  DeviceConfig config;
  uint32_t logical_block_size = 512;
  uint32_t physical_block_size = 512;
  // On failure: the call that failed and what was being done.
  const char* syscall = "";
  const char* what = "";
};

// Opens path and inspects it. 0, or -errno with out->syscall and out->what
// set (and no fd left open).
int OpenDevice(const char* path, const DeviceOpenOptions& options, DeviceOpened* out);

}  // namespace blockring
