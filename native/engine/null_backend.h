// Backend that performs no I/O: each attempt completes after a chosen
// latency with its full length (reads leave the buffer untouched), or with
// an injected error. Completions go through the engine's eventfd like the
// real engines. For ordering tests, error-path tests and measuring the
// library's own per-request cost.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend.h"

namespace blockring {

// Fails attempts that match: op (or any), and a byte range overlapping
// [offset_start, offset_end) (a flush covers offset 0 only).
struct NullFault {
  int op = -1;                       // Op value, -1 = any
  uint64_t offset_start = 0;
  uint64_t offset_end = UINT64_MAX;  // exclusive
  uint64_t count = UINT64_MAX;       // attempts left to fail; UINT64_MAX = every one
  int error = 5;                     // positive errno (EIO)
};

struct NullOptions {
  // Each attempt's latency is uniform in [min, max] microseconds, drawn from
  // a generator seeded with `seed`, in the order attempts are prepared.
  uint32_t latency_min_us = 0;
  uint32_t latency_max_us = 0;
  uint64_t seed = 1;
  std::vector<NullFault> faults;  // the first match with count left applies
};

std::unique_ptr<Backend> MakeNullBackend(uint32_t depth, const NullOptions& opts);

}  // namespace blockring
