#include "seek.h"

#include "../kernel/block_device.h"
#include "errors.h"
#include "values.h"

namespace blockring {

Napi::Value SeekDataOrHoleJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double fd = info[0].ToNumber().DoubleValue();
  double offset = info[1].ToNumber().DoubleValue();
  // lib/ validated both; these checks only keep native code safe.
  if (!IsUint(fd, 2147483647.0)) ThrowRange(env, "ERR_OUT_OF_RANGE", "fd out of range");
  if (!IsUint(offset, kMaxSafeInteger)) ThrowRange(env, "ERR_OUT_OF_RANGE", "offset out of range");
  int64_t r = SeekDataOrHole(static_cast<int>(fd), static_cast<uint64_t>(offset), info[2].ToBoolean());
  return Napi::Number::New(env, static_cast<double>(r));
}

}  // namespace blockring
