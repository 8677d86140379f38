#include "cow_region.h"

#include <vector>

#include "errors.h"
#include "values.h"

namespace blockring {
namespace {

double Arg(const Napi::CallbackInfo& info, size_t i, double max, const char* what) {
  double v = info[i].ToNumber().DoubleValue();
  if (!IsUint(v, max)) ThrowRange(info.Env(), "ERR_OUT_OF_RANGE", std::string(what) + " must be a safe non-negative integer");
  return v;
}

void FinalizeMapping(napi_env, std::shared_ptr<Mapping>* m) { delete m; }

}  // namespace

Napi::Function CowRegionHandle::Define(Napi::Env env) {
  return DefineClass(env, "CowRegion",
                     {
                         InstanceMethod<&CowRegionHandle::MapOverlay>("mapOverlay"),
                         InstanceMethod<&CowRegionHandle::MapShared>("mapShared"),
                         InstanceMethod<&CowRegionHandle::Arm>("arm"),
                         InstanceMethod<&CowRegionHandle::Supply>("supply"),
                         InstanceMethod<&CowRegionHandle::Available>("available"),
                         InstanceMethod<&CowRegionHandle::Drain>("drain"),
                         InstanceMethod<&CowRegionHandle::CopyUp>("copyUp"),
                         InstanceMethod<&CowRegionHandle::Reclaim>("reclaim"),
                         InstanceMethod<&CowRegionHandle::TakeError>("takeError"),
                         InstanceMethod<&CowRegionHandle::NewMapping>("newMapping"),
                     });
}

// new CowRegion(overlayFd, size, clusterSize, capacity)
CowRegionHandle::CowRegionHandle(const Napi::CallbackInfo& info) : TaggedWrap<CowRegionHandle>(info) {
  int fd = static_cast<int>(Arg(info, 0, 0x7fffffff, "fd"));
  double size = Arg(info, 1, kMaxSafeInteger, "size");
  double cluster = Arg(info, 2, 1 << 30, "clusterSize");
  double capacity = Arg(info, 3, 1 << 24, "capacity");
  int r = CowRegion::Create(fd, static_cast<uint64_t>(size), static_cast<size_t>(cluster),
                            static_cast<size_t>(capacity), &region_);
  if (r < 0) ThrowErrno(info.Env(), r, "mmap", "cannot reserve a copy-on-write mapping");
}

// mapOverlay(offset, length, host, writable)
Napi::Value CowRegionHandle::MapOverlay(const Napi::CallbackInfo& info) {
  int r = region_->MapOverlay(static_cast<uint64_t>(Arg(info, 0, kMaxSafeInteger, "offset")),
                              static_cast<size_t>(Arg(info, 1, kMaxSafeInteger, "length")),
                              static_cast<uint64_t>(Arg(info, 2, kMaxSafeInteger, "host")), info[3].ToBoolean());
  if (r < 0) ThrowErrno(info.Env(), r, "mmap", "cannot map overlay clusters");
  return info.Env().Undefined();
}

// mapShared(offset, length, fd): fd -1 maps zero pages.
Napi::Value CowRegionHandle::MapShared(const Napi::CallbackInfo& info) {
  double fd = info[2].ToNumber().DoubleValue();
  int r = region_->MapShared(static_cast<uint64_t>(Arg(info, 0, kMaxSafeInteger, "offset")),
                             static_cast<size_t>(Arg(info, 1, kMaxSafeInteger, "length")),
                             fd < 0 ? -1 : static_cast<int>(fd));
  if (r < 0) ThrowErrno(info.Env(), r, "mmap", "cannot map backing pages");
  return info.Env().Undefined();
}

Napi::Value CowRegionHandle::Arm(const Napi::CallbackInfo& info) {
  region_->Arm(info[0].ToBoolean());
  return info.Env().Undefined();
}

// supply(Float64Array of host offsets) -> how many the pool took
Napi::Value CowRegionHandle::Supply(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    ThrowType(info.Env(), "ERR_INVALID_ARG_TYPE", "hosts must be a Float64Array");
  }
  Napi::Float64Array a = info[0].As<Napi::Float64Array>();
  std::vector<uint64_t> hosts(a.ElementLength());
  for (size_t i = 0; i < hosts.size(); i++) {
    if (!IsUint(a[i], kMaxSafeInteger)) ThrowRange(info.Env(), "ERR_OUT_OF_RANGE", "host offsets must be safe integers");
    hosts[i] = static_cast<uint64_t>(a[i]);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(region_->Supply(hosts.data(), hosts.size())));
}

Napi::Value CowRegionHandle::Available(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(region_->Available()));
}

// drain() -> Float64Array [guestCluster, host, -errno]...
Napi::Value CowRegionHandle::Drain(const Napi::CallbackInfo& info) {
  std::vector<CowDone> done;
  region_->Drain(&done);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), done.size() * 3);
  for (size_t i = 0; i < done.size(); i++) {
    out[i * 3] = static_cast<double>(done[i].guest);
    out[i * 3 + 1] = static_cast<double>(done[i].host);
    out[i * 3 + 2] = done[i].err;
  }
  return out;
}

// copyUp(cluster) -> 0 or -errno (-EAGAIN: another thread is copying it)
Napi::Value CowRegionHandle::CopyUp(const Napi::CallbackInfo& info) {
  int r = region_->CopyUp(static_cast<uint64_t>(Arg(info, 0, kMaxSafeInteger, "cluster")));
  return Napi::Number::New(info.Env(), r);
}

// reclaim() -> Float64Array of host offsets no fault took
Napi::Value CowRegionHandle::Reclaim(const Napi::CallbackInfo& info) {
  std::vector<uint64_t> hosts;
  region_->Reclaim(&hosts);
  Napi::Float64Array out = Napi::Float64Array::New(info.Env(), hosts.size());
  for (size_t i = 0; i < hosts.size(); i++) out[i] = static_cast<double>(hosts[i]);
  return out;
}

Napi::Value CowRegionHandle::TakeError(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), region_->TakeError());
}

// newMapping(writable) -> an External for new MappedRegion(...)
Napi::Value CowRegionHandle::NewMapping(const Napi::CallbackInfo& info) {
  if (region_->mapping()) ThrowState(info.Env(), "ERR_ALREADY_MAPPED", "copy-on-write region already handed out");
  auto* m = new std::shared_ptr<Mapping>(region_->NewMapping(info[0].ToBoolean()));
  auto ext = Napi::External<std::shared_ptr<Mapping>>::New(info.Env(), m, FinalizeMapping);
  TagValue(info.Env(), ext, tags::kMappingExternal);
  return ext;
}

}  // namespace blockring
