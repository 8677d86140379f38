#include "values.h"

#include "errors.h"

namespace blockring {

double* Float64Data(Napi::Env env, Napi::Object opts, const char* key, uint32_t* cap, uint32_t stride) {
  Napi::Value v = opts.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    ThrowType(env, "ERR_INVALID_ARG_TYPE", std::string(key) + " must be a Float64Array");
  }
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  *cap = static_cast<uint32_t>(a.ElementLength() / stride);
  return a.Data();
}

}  // namespace blockring
