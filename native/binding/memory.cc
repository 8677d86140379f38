#include "memory.h"

#include <errno.h>

#include <cstdint>
#include <memory>

#include "../engine/memory_block.h"

#include "errors.h"
#include "values.h"

namespace blockring {

Napi::Value AllocAligned(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double size = info[0].ToNumber().DoubleValue();
  double align = info[1].ToNumber().DoubleValue();
  bool v8_only = info[2].ToBoolean();
  // lib/ validated both; these checks only keep native code safe.
  if (!IsUint(size, kMaxSafeInteger)) {
    ThrowRange(env, "ERR_OUT_OF_RANGE", "size out of range");
  }
  if (!(align >= 1 && align <= (1 << 30)) || (static_cast<uint64_t>(align) & (static_cast<uint64_t>(align) - 1))) {
    ThrowRange(env, "ERR_OUT_OF_RANGE", "alignment must be a power of two");
  }
  size_t n = static_cast<size_t>(size);
  size_t a = static_cast<size_t>(align);
  Napi::Object out = Napi::Object::New(env);
  if (!v8_only) {
    std::shared_ptr<MemoryBlock> block = AlignedBlock::Create(n, a);
    if (!block) ThrowErrno(env, -ENOMEM, "posix_memalign", "cannot allocate aligned memory");
    // The buffer owns one reference; requests in flight hold the block too,
    // so a finalizer run at worker teardown cannot free memory in use.
    auto* owner = new std::shared_ptr<MemoryBlock>(block);
    napi_value buf;
    napi_status st = napi_create_external_buffer(
        env, n, block->data(), [](napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<MemoryBlock>*>(hint); },
        owner, &buf);
    if (st == napi_ok) {
      out.Set("buffer", Napi::Value(env, buf));
      return out;
    }
    // napi_no_external_buffers_allowed: a V8 memory cage (Electron). Any
    // other failure is real, and then Node may already have run the
    // finalizer (a buffer over the size limit, which lib/ refuses first):
    // owner is not touched again.
    if (st != napi_no_external_buffers_allowed) NAPI_THROW(Napi::Error::New(env), Napi::Value());
    delete owner;
  }
  // V8-owned memory: over-allocate and let JS take the aligned slice. V8 does
  // not move ArrayBuffer backing stores, so the alignment holds for life.
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, n + a);
  uintptr_t addr = reinterpret_cast<uintptr_t>(ab.Data());
  size_t offset = (a - (addr & (a - 1))) & (a - 1);
  out.Set("arrayBuffer", ab);
  out.Set("offset", static_cast<double>(offset));
  return out;
}

Napi::Value AddressAlignment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "expected a TypedArray");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  uintptr_t addr = reinterpret_cast<uintptr_t>(static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
  uintptr_t align = 1;
  while (align < (1u << 20) && !(addr & align)) align <<= 1;
  return Napi::Number::New(env, static_cast<double>(align));
}

}  // namespace blockring
