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

// Data pointer and length of any ArrayBufferView, over an ArrayBuffer or a
// SharedArrayBuffer (the C calls, which give the data pointer directly:
// node-addon-api's ArrayBuffer() refuses a SharedArrayBuffer); false for
// anything else. A detached view has length 0.
inline bool ViewData(Napi::Value v, char** data, size_t* length) {
  napi_env env = v.Env();
  void* p = nullptr;
  size_t n = 0;
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t count = 0;
    if (napi_get_typedarray_info(env, v, &type, &count, &p, nullptr, nullptr) != napi_ok) return false;
    size_t bytes_per = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: bytes_per = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: bytes_per = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: bytes_per = 8; break;
      default: bytes_per = 1; break;
    }
    n = count * bytes_per;
  } else if (napi_is_dataview(env, v, &is) == napi_ok && is) {
    if (napi_get_dataview_info(env, v, &n, &p, nullptr, nullptr) != napi_ok) return false;
  } else {
    return false;
  }
  *data = static_cast<char*>(p);
  *length = p ? n : 0;
  return true;
}

// The Float64Array at options[key] (throws otherwise); *cap = its length in
// records of stride doubles.
double* Float64Data(Napi::Env env, Napi::Object options, const char* key, uint32_t* cap, uint32_t stride);

}  // namespace blockring
