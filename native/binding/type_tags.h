// Type tags (napi_type_tag_object) on every object this addon wraps, so a
// JS value is only ever unwrapped as the kind of native object it really
// is. Passing a MappedRegion where a RingHandle is expected (for example
// RingHandle.prototype.submit.call(region)), or a plain object, is a coded
// TypeError (ERR_INVALID_ARG_TYPE) instead of a C++ object read as another
// type. One place: TaggedWrap tags at construction and its Unwrap, which
// node-addon-api calls (as T::Unwrap) for every instance method and
// accessor, checks; TagValue/IsTagged do the same for Externals.
//
// A runtime without type tags (napi_type_tag_object not ok) falls back to
// the check node-addon-api already does (napi_unwrap refuses an object that
// wraps nothing); Node, Bun and Deno all have them today.
#pragma once

#include <napi.h>

#include <atomic>

#include "errors.h"

namespace blockring {

// One tag per kind of native object (random 128-bit values).
namespace tags {
inline constexpr napi_type_tag kRingHandle = {0x6b1f3c2a9d4e5f01ULL, 0xa1c3e5f7092b4d6fULL};
inline constexpr napi_type_tag kMappedRegion = {0x2d7a4c9e1b3f5a02ULL, 0xb2d4f6081a3c5e7fULL};
inline constexpr napi_type_tag kCowRegion = {0x9e3b5d7f2c4a6b03ULL, 0xc3e5071b2b4d6f8fULL};
inline constexpr napi_type_tag kVhostUserBlk = {0x4f8c6e0a3d5b7c04ULL, 0xd4f6182c3c5e709fULL};
inline constexpr napi_type_tag kMappingExternal = {0x7a0d8f2c5e6b9d05ULL, 0xe507293d4d6f81afULL};
inline constexpr napi_type_tag kWriteLog = {0x3c6e9a1d7f2b4e06ULL, 0xf6183a4e5e7092bfULL};
}  // namespace tags

// Set once when the runtime refuses napi_type_tag_object; from then on only
// napi_unwrap's own check applies (one runtime per process).
inline std::atomic<bool>& TypeTagsUnsupported() {
  static std::atomic<bool> unsupported{false};
  return unsupported;
}

inline void TagValue(napi_env env, napi_value v, const napi_type_tag& tag) {
  if (TypeTagsUnsupported().load(std::memory_order_relaxed)) return;
  if (napi_type_tag_object(env, v, &tag) != napi_ok) {
    // Clear whatever the runtime left pending; fall back cleanly.
    napi_value ignored;
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
    TypeTagsUnsupported().store(true, std::memory_order_relaxed);
  }
}

inline bool IsTagged(napi_env env, napi_value v, const napi_type_tag& tag) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || (t != napi_object && t != napi_function && t != napi_external)) return false;
  if (TypeTagsUnsupported().load(std::memory_order_relaxed)) return true;
  bool ok = false;
  return napi_check_object_type_tag(env, v, &tag, &ok) == napi_ok && ok;
}

// The coded refusal for a value that is not the expected kind.
[[noreturn]] inline void ThrowNotA(Napi::Env env, const char* what) {
  ThrowType(env, "ERR_INVALID_ARG_TYPE", std::string("expected a ") + what + " handle");
}

// Base of every wrapped class: class X final : public TaggedWrap<X>, where
// X declares static constexpr napi_type_tag kTypeTag and const char* kKind.
template <typename T>
class TaggedWrap : public Napi::ObjectWrap<T> {
 public:
  explicit TaggedWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info) {
    TagValue(info.Env(), info.This(), T::kTypeTag);
  }
  // Hides ObjectWrap<T>::Unwrap: node-addon-api's method and accessor
  // trampolines call T::Unwrap(this), so every entry point checks here.
  static T* Unwrap(Napi::Object wrapper) {
    if (!IsTagged(wrapper.Env(), wrapper, T::kTypeTag)) ThrowNotA(wrapper.Env(), T::kKind);
    return Napi::ObjectWrap<T>::Unwrap(wrapper);
  }
};

}  // namespace blockring
