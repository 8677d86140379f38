// Backend on a shared memory mapping of each device: reads and writes are
// SIGBUS-guarded copies between the mapping and the request's buffers, flush
// is msync(MS_SYNC).
//
// The copies run synchronously on the ring's thread inside Submit(), which
// then rings the engine's eventfd; completions reach JS through the same
// uv_poll path as every other backend. A copy from page cache costs less
// than handing the request to another thread would (a futex wake and a
// cache-cold buffer), and the mapping table needs no lock. The price: a
// page that is not cached is read in by a page fault that blocks the ring's
// thread, and so does msync. Use io_uring for cold data, or run the ring in
// a worker thread.
//
// Each device is mapped whole on its first transfer and the mapping grows
// (mremap, with headroom) when the file does. A write past the end of a
// file first extends it with ftruncate, as pwrite would; past the end of a
// block device it fails with ENOSPC. A read past the end returns what lies
// before it (0 at the end), as pread would. If another process truncates
// the file under the mapping, the copy faults with SIGBUS and the request
// fails with EIO; the next request re-reads the size.
#pragma once

#include <memory>

#include "backend.h"

namespace blockring {

std::unique_ptr<Backend> MakeMmapBackend(uint32_t depth);

}  // namespace blockring
