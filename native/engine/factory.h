// Chooses and builds a backend by name.
#pragma once

#include <memory>
#include <string>

#include "backend.h"
#include "null_backend.h"

namespace blockring {

// The deepest ring: IORING_MAX_ENTRIES, and a power of two as io_uring
// wants. lib/ring.ts reads it from the addon (maxDepth), so the limit is
// this one value end to end.
constexpr uint32_t kMaxDepth = 32768;
// The other ring options' bounds, read by lib/ring.ts the same way
// (maxThreads, maxDirectSubmitBatch).
constexpr unsigned kMaxThreads = 1024;
constexpr unsigned kMaxDirectSubmitBatch = 65536;

struct EngineChoice {
  std::string requested;  // "auto", "io_uring", "libaio", "threads", "mmap", "null"
  uint32_t depth = 256;
  unsigned direct_submit_batch = 2;  // io_uring: most O_DIRECT SQEs per enter (0: no limit)
  unsigned threads = 4;   // worker threads for the threads engine and helpers
  // io_uring setup features to try (kUring*, io_uring_backend.h); the
  // thread-bound ones only for an engine used on a single thread.
  unsigned uring_features = ~0u;
  NullOptions null_engine;  // engine "null" only
};

struct BackendResult {
  std::unique_ptr<Backend> backend;
  int err = 0;             // -errno when backend is null
  const char* syscall = "io_uring_setup";  // the call that failed, when backend is null
  std::string fallback;    // why auto moved past an engine ("" if it did not)
};

BackendResult MakeBackend(const EngineChoice& choice);

}  // namespace blockring
