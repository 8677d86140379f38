// Module-level helper: SEEK_DATA / SEEK_HOLE for allocation maps.
#pragma once

#include <napi.h>

namespace blockring {

// seekDataOrHole(fd, offset, data) -> the offset found, or -errno.
Napi::Value SeekDataOrHoleJs(const Napi::CallbackInfo& info);

}  // namespace blockring
