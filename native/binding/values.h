// Small checks and accessors for JS values, shared by the binding's classes.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstddef>

namespace blockring {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1

// A whole number in [0, max].
inline bool IsUint(double v, double max) { return v >= 0 && v <= max && std::floor(v) == v; }

// Data pointer and length of any ArrayBufferView; false for anything else.
inline bool ViewData(Napi::Value v, char** data, size_t* length) {
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    *data = static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    *length = ta.ByteLength();
    return true;
  }
  if (v.IsDataView()) {
    Napi::DataView dv = v.As<Napi::DataView>();
    *data = static_cast<char*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    *length = dv.ByteLength();
    return true;
  }
  return false;
}

}  // namespace blockring
