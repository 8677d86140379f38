// Small checks and accessors for JS values, shared by the binding's classes.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstddef>
#include <cstdint>

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

// The Float64Array at options[key] (throws otherwise); *cap = its length in
// records of stride doubles.
double* Float64Data(Napi::Env env, Napi::Object options, const char* key, uint32_t* cap, uint32_t stride);

}  // namespace blockring
