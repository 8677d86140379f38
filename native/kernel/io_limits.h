// What the kernel moves in one read/write call, for every backend: longer
// requests are clamped here and the engine resubmits the rest as a short
// transfer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace blockring {

// UIO_MAXIOV: more iovecs in one call fail with EINVAL.
constexpr uint32_t kIovMax = 1024;
// MAX_RW_COUNT (INT_MAX rounded down to a page): the most bytes one call moves.
constexpr uint32_t kMaxRwCount = 0x7ffff000u;

inline uint32_t ClampLen(size_t len) { return len > kMaxRwCount ? kMaxRwCount : static_cast<uint32_t>(len); }
inline uint32_t ClampIovcnt(uint32_t n) { return n > kIovMax ? kIovMax : n; }

}  // namespace blockring
