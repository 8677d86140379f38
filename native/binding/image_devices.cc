// RingHandle's image devices (qcow2): the engine splits their requests by
// a ClusterMap (native/format/cluster_map.h) that the TypeScript format
// layer fills; what the map cannot split is parked, delivered to JS in the
// completion array (a negative id) and resumed here once resolved. Runs
// on the ring's thread.
#include <algorithm>
#include <cstring>

#include <unordered_map>

#include "errors.h"
#include "image_source.h"
#include "ring_handle.h"
#include "values.h"

namespace blockring {
namespace {

uint64_t Num(const Napi::Value& v) { return static_cast<uint64_t>(v.ToNumber().DoubleValue()); }

std::unordered_map<uint64_t, ImageSource>& Sources() {
  static std::unordered_map<uint64_t, ImageSource> sources;
  return sources;
}
uint64_t next_source = 1;

}  // namespace

uint64_t PutImageSource(const ImageSource& s) {
  uint64_t id = next_source++;
  Sources()[id] = s;
  return id;
}

bool TakeImageSource(uint64_t id, ImageSource* out) {
  auto it = Sources().find(id);
  if (it == Sources().end()) return false;
  *out = std::move(it->second);
  Sources().erase(it);
  return true;
}

// exportImage(handle) -> id for a vhost-user-blk server (image_source.h),
// or 0 when the image's backing is another image (served through copies).
Napi::Value RingHandle::ExportImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Device* dev = ImageDevice(env, info[0]);
  // Not a logged file: the server's engine is outside this ring's WriteLog.
  if (!dev->file || dev->file->fd < 0 || dev->file->log || (dev->backing && (dev->backing->map || dev->backing->fd < 0))) {
    return Napi::Number::New(env, 0);
  }
  ImageSource s;
  s.map = dev->map;
  s.image = dev->config;
  s.file_fd = dev->file->fd;
  s.file = dev->file->config;
  if (dev->backing) {
    s.backing_fd = dev->backing->fd;
    s.backing = dev->backing->config;
  }
  return Napi::Number::New(env, static_cast<double>(PutImageSource(s)));
}

Device* RingHandle::ImageDevice(Napi::Env env, const Napi::Value& handle) {
  CheckOpen(env);
  Device* dev = engine_->GetDevice(handle.ToNumber().Uint32Value());
  if (!dev || !dev->map) ThrowState(env, "ERR_DEVICE_CLOSED", "image device is closed");
  return dev;
}

// attachImage(fileHandle, backingHandle (-1: none), clusterBits, l2Bits, size, readOnly, offsetAlign, memAlign,
//             maxTables) -> handle
Napi::Value RingHandle::AttachImage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Device* file = engine_->GetDevice(info[0].ToNumber().Uint32Value());
  if (!file || file->map) ThrowState(env, "ERR_DEVICE_CLOSED", "image file is closed");
  Device* backing = nullptr;
  if (info[1].ToNumber().Int32Value() >= 0) {
    backing = engine_->GetDevice(info[1].ToNumber().Uint32Value());
    if (!backing) ThrowState(env, "ERR_DEVICE_CLOSED", "backing device is closed");
  }
  uint32_t cluster_bits = info[2].ToNumber().Uint32Value();
  uint32_t l2_bits = info[3].ToNumber().Uint32Value();
  if (cluster_bits < 9 || cluster_bits > 21 || l2_bits < 5 || l2_bits > 20) {
    ThrowRange(env, "ERR_OUT_OF_RANGE", "bad image geometry");
  }
  DeviceConfig c;
  c.size = Num(info[4]);
  c.read_only = info[5].ToBoolean();
  c.offset_align = std::max(1u, info[6].ToNumber().Uint32Value());
  c.mem_align = std::max(1u, info[7].ToNumber().Uint32Value());
  c.direct = c.offset_align > 1;
  auto map = std::make_shared<ClusterMap>(cluster_bits, l2_bits, c.size, Num(info[8]));
  Device* dev = engine_->AddImageDevice(c, std::move(map), file, backing);
  return Napi::Number::New(env, dev->handle);
}

// imageInstall(handle, table, entries: Float64Array)
Napi::Value RingHandle::ImageInstall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Device* dev = ImageDevice(env, info[0]);
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    ThrowType(env, "ERR_INVALID_ARG_TYPE", "entries must be a Float64Array");
  }
  Napi::Float64Array a = info[2].As<Napi::Float64Array>();
  std::vector<uint64_t> entries(a.ElementLength());
  for (size_t i = 0; i < entries.size(); i++) entries[i] = static_cast<uint64_t>(a[i]);
  dev->map->Install(Num(info[1]), entries.data(), entries.size());
  return env.Undefined();
}

// imageSet(handle, cluster, entry)
Napi::Value RingHandle::ImageSet(const Napi::CallbackInfo& info) {
  Device* dev = ImageDevice(info.Env(), info[0]);
  dev->map->Set(Num(info[1]), Num(info[2]));
  return info.Env().Undefined();
}

// imageHas(handle, table): whether the map holds it (it is then current: every change is pushed).
Napi::Value RingHandle::ImageHas(const Napi::CallbackInfo& info) {
  Device* dev = ImageDevice(info.Env(), info[0]);
  return Napi::Boolean::New(info.Env(), dev->map->Has(Num(info[1])));
}

// imageReset(handle, size): forgets every table; the size may have grown.
Napi::Value RingHandle::ImageReset(const Napi::CallbackInfo& info) {
  Device* dev = ImageDevice(info.Env(), info[0]);
  dev->map->Clear();
  dev->map->SetSize(Num(info[1]));
  dev->size = dev->config.size = Num(info[1]);
  return info.Env().Undefined();
}

// resumeParked(token, retry, result): retries the request (the map knows
// more now) or finishes it with result (bytes or -errno). False when the
// token is not parked (the ring is being torn down).
Napi::Value RingHandle::ResumeParked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!engine_) return Napi::Boolean::New(env, false);
  uint32_t token = info[0].ToNumber().Uint32Value();
  bool ok = info[1].ToBoolean() ? engine_->RetryParked(token)
                                : engine_->FinishParked(token, static_cast<int64_t>(info[2].ToNumber().DoubleValue()));
  engine_->Dispatch();
  UpdateRefs();
  return Napi::Boolean::New(env, ok);
}

// retryParkedMany(tokens: Uint32Array, count): retries the first count
// tokens (one wakeup's parked writes), then submits once and signals once.
Napi::Value RingHandle::RetryParkedMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    ThrowType(env, "ERR_INVALID_ARG_TYPE", "tokens must be a Uint32Array");
    return env.Undefined();
  }
  Napi::Uint32Array a = info[0].As<Napi::Uint32Array>();
  size_t n = std::min(a.ElementLength(), static_cast<size_t>(info[1].ToNumber().Uint32Value()));
  if (!engine_ || !n) return env.Undefined();
  for (size_t i = 0; i < n; i++) engine_->RetryParked(a[i], false);
  engine_->Wake();
  engine_->Dispatch();
  UpdateRefs();
  return env.Undefined();
}

// parkedCopy(token, buffer, toRequest) -> bytes: copies between a parked
// transfer's buffers and buffer (a request the format layer serves itself:
// compressed clusters, FUA writes).
Napi::Value RingHandle::ParkedCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Request* r = engine_ ? engine_->ParkedRequest(info[0].ToNumber().Uint32Value()) : nullptr;
  char* data = nullptr;
  size_t len = 0;
  if (!r || !ViewData(info[1], &data, &len)) return Napi::Number::New(env, 0);
  bool to_request = info[2].ToBoolean();
  size_t at = 0;
  for (uint32_t k = 0; k < r->iovcnt && at < len; k++) {
    size_t n = std::min(len - at, r->iov[k].iov_len);
    if (to_request) {
      std::memcpy(r->iov[k].iov_base, data + at, n);
    } else {
      std::memcpy(data + at, r->iov[k].iov_base, n);
    }
    at += n;
  }
  return Napi::Number::New(env, static_cast<double>(at));
}

Napi::Value RingHandle::DeviceInflight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Device* dev = engine_ ? engine_->GetDevice(info[0].ToNumber().Uint32Value()) : nullptr;
  return Napi::Number::New(env, dev ? static_cast<double>(dev->inflight) : 0);
}

}  // namespace blockring
