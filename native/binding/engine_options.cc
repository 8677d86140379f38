#include "engine_options.h"

#include <cmath>

#include "../engine/io_uring_backend.h"
#include "errors.h"
#include "values.h"

namespace blockring {
namespace {

// A bound, or UINT64_MAX for Infinity (unbounded).
uint64_t BoundOrMax(Napi::Env env, Napi::Value v, const char* what) {
  double d = v.ToNumber().DoubleValue();
  if (std::isinf(d) && d > 0) return UINT64_MAX;
  if (!IsUint(d, kMaxSafeInteger)) ThrowRange(env, "ERR_OUT_OF_RANGE", std::string("nullEngine: bad ") + what);
  return static_cast<uint64_t>(d);
}

// nullEngine: { latencyMinUs, latencyMaxUs, seed, faults: [{ op, offsetStart,
// offsetEnd, count, errno }] }, normalized by lib/null-engine.ts (op -1 = any).
void ReadNullOptions(Napi::Env env, Napi::Value v, NullOptions* out) {
  if (!v.IsObject()) return;
  Napi::Object o = v.As<Napi::Object>();
  double lo = o.Get("latencyMinUs").ToNumber().DoubleValue();
  double hi = o.Get("latencyMaxUs").ToNumber().DoubleValue();
  if (!IsUint(lo, 60e6) || !IsUint(hi, 60e6) || lo > hi) ThrowRange(env, "ERR_OUT_OF_RANGE", "nullEngine: bad latency");
  out->latency_min_us = static_cast<uint32_t>(lo);
  out->latency_max_us = static_cast<uint32_t>(hi);
  out->seed = BoundOrMax(env, o.Get("seed"), "seed");
  Napi::Value faults = o.Get("faults");
  if (!faults.IsArray()) return;
  Napi::Array list = faults.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Object f = list.Get(i).ToObject();
    NullFault nf;
    double op = f.Get("op").ToNumber().DoubleValue();
    double err = f.Get("errno").ToNumber().DoubleValue();
    if (op != -1 && !IsUint(op, static_cast<double>(Op::kWriteZeroes))) ThrowRange(env, "ERR_OUT_OF_RANGE", "nullEngine: bad op");
    if (!IsUint(err, 4095) || err < 1) ThrowRange(env, "ERR_OUT_OF_RANGE", "nullEngine: bad errno");
    nf.op = static_cast<int>(op);
    nf.error = static_cast<int>(err);
    nf.offset_start = BoundOrMax(env, f.Get("offsetStart"), "offsetStart");
    nf.offset_end = BoundOrMax(env, f.Get("offsetEnd"), "offsetEnd");
    nf.count = BoundOrMax(env, f.Get("count"), "count");
    out->faults.push_back(nf);
  }
}

}  // namespace

EngineChoice ReadEngineChoice(Napi::Env env, Napi::Object opts) {
  EngineChoice choice;
  choice.requested = opts.Get("engine").ToString().Utf8Value();
  double depth = opts.Get("depth").ToNumber().DoubleValue();
  if (!IsUint(depth, kMaxDepth) || depth < 1) ThrowRange(env, "ERR_OUT_OF_RANGE", "depth out of range");
  choice.depth = static_cast<uint32_t>(depth);
  Napi::Value batch = opts.Get("directSubmitBatch");
  if (!batch.IsUndefined()) {
    double n = batch.ToNumber().DoubleValue();
    if (!IsUint(n, kMaxDirectSubmitBatch)) ThrowRange(env, "ERR_OUT_OF_RANGE", "directSubmitBatch out of range");
    choice.direct_submit_batch = static_cast<unsigned>(n);
  }
  Napi::Value threads = opts.Get("threads");
  if (!threads.IsUndefined()) {
    double n = threads.ToNumber().DoubleValue();
    if (!IsUint(n, kMaxThreads) || n < 1) ThrowRange(env, "ERR_OUT_OF_RANGE", "threads out of range");
    choice.threads = static_cast<unsigned>(n);
  }
  ReadNullOptions(env, opts.Get("nullEngine"), &choice.null_engine);
  // uringFeatures: $BLOCKRING_IO_URING as lib/ring.ts found it: unset for
  // all, "none", or a comma list of kUringFeatureNames (tests force modes).
  Napi::Value features = opts.Get("uringFeatures");
  if (features.IsString()) {
    std::string list = features.As<Napi::String>().Utf8Value();
    choice.uring_features = 0;
    size_t start = 0;
    while (list != "none" && start <= list.size()) {
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      std::string name = list.substr(start, end - start);
      unsigned bit = 0;
      for (unsigned i = 0; i < kUringFeatureCount; i++) {
        if (name == kUringFeatureNames[i]) bit = 1u << i;
      }
      if (!bit) {
        ThrowType(env, "ERR_INVALID_ARG_VALUE", "BLOCKRING_IO_URING: unknown feature '" + name +
                                                    "' (expected none, or some of single-issuer, defer-taskrun, "
                                                    "no-sqarray, ring-fd, nowait-read)");
      }
      choice.uring_features |= bit;
      start = end + 1;
    }
  }
  return choice;
}

}  // namespace blockring
