// Module-level helpers: aligned allocation for O_DIRECT buffers.
#pragma once

#include <napi.h>

namespace blockring {

// allocAligned(size, alignment, v8Only) -> { buffer } (external, exactly
// aligned) or { arrayBuffer, offset } (V8-owned; JS makes the aligned view).
Napi::Value AllocAligned(const Napi::CallbackInfo& info);
// addressAlignment(view) -> the largest power of two (<= 1 MiB) dividing the
// view's data address. For tests and diagnostics.
Napi::Value AddressAlignment(const Napi::CallbackInfo& info);

}  // namespace blockring
