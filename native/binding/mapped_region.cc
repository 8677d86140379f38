#include "mapped_region.h"

#include <errno.h>

#include <cmath>
#include <cstring>
#include <string>

#include "errors.h"
#include "values.h"

namespace blockring {
namespace {

constexpr double kMaxSafe = kMaxSafeInteger;

const char kNoExternal[] =
    "this runtime does not allow external ArrayBuffers (a V8 memory cage, as in Electron): "
    "use region.read() and region.write()";

bool ParseAdvice(const std::string& name, Advice* out) {
  static const struct {
    const char* name;
    Advice advice;
  } kTable[] = {{"normal", Advice::kNormal},     {"random", Advice::kRandom},
                {"sequential", Advice::kSequential}, {"willneed", Advice::kWillNeed},
                {"dontneed", Advice::kDontNeed}, {"hugepage", Advice::kHugePage}};
  for (const auto& e : kTable) {
    if (name == e.name) {
      *out = e.advice;
      return true;
    }
  }
  return false;
}

// Runs when V8 frees an ArrayBuffer handed out for a region (collected, or
// detached by unmap()): drops its share of the mapping.
void FinalizeArrayBuffer(napi_env, void*, void* hint) { delete static_cast<std::shared_ptr<Mapping>*>(hint); }

}  // namespace

// msync on the threadpool: MS_SYNC waits for writeback. Holds the region
// (strongly) and its mapping until done.
class SyncWorker final : public Napi::AsyncWorker {
 public:
  SyncWorker(Napi::Env env, MappedRegion* region, bool async)
      : Napi::AsyncWorker(env, "blockring:msync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        region_(region),
        map_(region->map_),
        async_(async) {
    region_ref_ = Napi::Persistent(region->Value());
    region_->syncs_++;
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override { err_ = map_->Sync(async_); }

  void OnOK() override {
    Napi::Env env = Env();
    if (--region_->syncs_ == 0 && region_->unmapped_) region_->ReleaseMapping();
    try {
      if (err_ < 0) {
        deferred_.Reject(ErrnoError(env, err_, "msync", "cannot sync mapped region").Value());
      } else {
        deferred_.Resolve(env.Undefined());
      }
    } catch (const Napi::Error&) {
      // The environment is being torn down (worker terminated) and can no
      // longer run JS: nobody can observe the promise any more.
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  MappedRegion* region_;
  Napi::ObjectReference region_ref_;
  std::shared_ptr<Mapping> map_;
  bool async_;
  int err_ = 0;
};

Napi::Function MappedRegion::Define(Napi::Env env) {
  return DefineClass(env, "MappedRegion",
                     {
                         InstanceMethod<&MappedRegion::GetArrayBuffer>("arrayBuffer"),
                         InstanceMethod<&MappedRegion::Read>("read"),
                         InstanceMethod<&MappedRegion::Write>("write"),
                         InstanceMethod<&MappedRegion::Sync>("sync"),
                         InstanceMethod<&MappedRegion::Advise>("advise"),
                         InstanceMethod<&MappedRegion::Lock>("lock"),
                         InstanceMethod<&MappedRegion::Unlock>("unlock"),
                         InstanceMethod<&MappedRegion::Residency>("residency"),
                         InstanceMethod<&MappedRegion::Unmap>("unmap"),
                         InstanceAccessor<&MappedRegion::IsUnmapped>("unmapped"),
                     });
}

// new MappedRegion(fd, offset, length, private, readOnly, externalBuffers), or
// new MappedRegion(cowRegion.newMapping(), externalBuffers) for a mapping built elsewhere.
MappedRegion::MappedRegion(const Napi::CallbackInfo& info) : TaggedWrap<MappedRegion>(info) {
  Napi::Env env = info.Env();
  if (info[0].IsExternal()) {
    if (!IsTagged(env, info[0], tags::kMappingExternal)) ThrowNotA(env, "CowRegion mapping");
    map_ = *info[0].As<Napi::External<std::shared_ptr<Mapping>>>().Data();
    external_ = info[1].ToBoolean();
    return;
  }
  double fd = info[0].ToNumber().DoubleValue();
  double offset = info[1].ToNumber().DoubleValue();
  double length = info[2].ToNumber().DoubleValue();
  if (!IsUint(fd, 0x7fffffff)) ThrowType(env, "ERR_INVALID_ARG_TYPE", "fd must be a non-negative integer");
  if (!IsUint(offset, kMaxSafe)) ThrowRange(env, "ERR_OUT_OF_RANGE", "offset must be a safe non-negative integer");
  if (!IsUint(length, kMaxSafe) || length < 1) ThrowRange(env, "ERR_OUT_OF_RANGE", "length must be a positive integer");
  bool private_cow = info[3].ToBoolean();
  bool read_only = info[4].ToBoolean();
  external_ = info[5].ToBoolean();
  int r = Mapping::Create(static_cast<int>(fd), static_cast<uint64_t>(offset), static_cast<size_t>(length),
                          private_cow, !read_only, &map_);
  if (r < 0) ThrowErrno(env, r, "mmap", "cannot map device");
}

void MappedRegion::CheckMapped(Napi::Env env) {
  if (unmapped_) ThrowState(env, "ERR_REGION_UNMAPPED", "region is unmapped");
}

void MappedRegion::ReleaseMapping() { map_->Unmap(); }

Napi::Value MappedRegion::GetArrayBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckMapped(env);
  // One live ArrayBuffer per region: V8 expects distinct external buffers
  // not to share memory.
  for (auto it = handed_out_.begin(); it != handed_out_.end();) {
    Napi::ArrayBuffer ab = it->Value();
    if (!ab.IsEmpty()) return ab;
    it = handed_out_.erase(it);
  }
  if (!external_) ThrowState(env, "ERR_EXTERNAL_BUFFERS_DISALLOWED", kNoExternal);
  auto* hint = new std::shared_ptr<Mapping>(map_);
  napi_value value;
  napi_status st = napi_create_external_arraybuffer(env, map_->data(), map_->length(), FinalizeArrayBuffer, hint, &value);
  if (st != napi_ok) {
    // Any other failure (a length over Node's Buffer limit, which lib/
    // refuses first) may already have run the finalizer: hint is not ours.
    if (st != napi_no_external_buffers_allowed) throw Napi::Error::New(env);
    delete hint;
    ThrowState(env, "ERR_EXTERNAL_BUFFERS_DISALLOWED", kNoExternal);
  }
  Napi::ArrayBuffer ab(env, value);
  handed_out_.push_back(Napi::Weak(ab));
  return ab;
}

char* MappedRegion::Span(const Napi::CallbackInfo& info, size_t* length, size_t* offset) {
  Napi::Env env = info.Env();
  CheckMapped(env);
  char* data = nullptr;
  if (!ViewData(info[0], &data, length)) ThrowType(env, "ERR_INVALID_ARG_TYPE", "buffer must be an ArrayBufferView");
  double o = info[1].ToNumber().DoubleValue();
  if (!IsUint(o, static_cast<double>(map_->length())) || *length > map_->length() - static_cast<size_t>(o)) {
    ThrowRange(env, "ERR_OUT_OF_RANGE", "range exceeds the region");
  }
  *offset = static_cast<size_t>(o);
  return data;
}

// read(target, offset): copies region bytes [offset, offset + target.length).
Napi::Value MappedRegion::Read(const Napi::CallbackInfo& info) {
  size_t n, off;
  char* dst = Span(info, &n, &off);
  int r = map_->CopyOut(off, dst, n);
  if (r < 0) ThrowErrno(info.Env(), r, "mmap", "cannot read mapped region (file truncated under the mapping?)");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// write(source, offset)
Napi::Value MappedRegion::Write(const Napi::CallbackInfo& info) {
  size_t n, off;
  char* src = Span(info, &n, &off);
  if (!map_->writable()) ThrowState(info.Env(), "ERR_READ_ONLY", "region is mapped read-only");
  int r = map_->CopyIn(off, src, n);
  if (r < 0) ThrowErrno(info.Env(), r, "mmap", "cannot write mapped region (file truncated under the mapping?)");
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// sync(async) -> Promise
Napi::Value MappedRegion::Sync(const Napi::CallbackInfo& info) {
  CheckMapped(info.Env());
  auto* worker = new SyncWorker(info.Env(), this, info[0].ToBoolean());
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value MappedRegion::Advise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckMapped(env);
  Advice advice;
  if (!info[0].IsString() || !ParseAdvice(info[0].As<Napi::String>().Utf8Value(), &advice)) {
    ThrowType(env, "ERR_INVALID_ARG_VALUE", "unknown advice");
  }
  int r = map_->Advise(advice);
  if (r < 0) ThrowErrno(env, r, "madvise", "cannot advise mapped region");
  return env.Undefined();
}

Napi::Value MappedRegion::Lock(const Napi::CallbackInfo& info) {
  CheckMapped(info.Env());
  int r = map_->Lock();
  if (r < 0) ThrowErrno(info.Env(), r, "mlock", "cannot lock mapped region");
  return info.Env().Undefined();
}

Napi::Value MappedRegion::Unlock(const Napi::CallbackInfo& info) {
  CheckMapped(info.Env());
  int r = map_->Unlock();
  if (r < 0) ThrowErrno(info.Env(), r, "munlock", "cannot unlock mapped region");
  return info.Env().Undefined();
}

// residency() -> Uint8Array, one byte per page (1 = resident)
Napi::Value MappedRegion::Residency(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckMapped(env);
  std::vector<unsigned char> pages;
  int r = map_->Residency(&pages);
  if (r < 0) ThrowErrno(env, r, "mincore", "cannot query residency");
  Napi::Uint8Array out = Napi::Uint8Array::New(env, pages.size());
  if (!pages.empty()) std::memcpy(out.Data(), pages.data(), pages.size());
  return out;
}

// unmap(): detaches every ArrayBuffer handed out, then unmaps (after any
// msync in flight). Idempotent.
Napi::Value MappedRegion::Unmap(const Napi::CallbackInfo& info) {
  if (unmapped_) return info.Env().Undefined();
  unmapped_ = true;
  for (auto& ref : handed_out_) {
    Napi::ArrayBuffer ab = ref.Value();
    if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
  }
  handed_out_.clear();
  if (!syncs_) ReleaseMapping();
  return info.Env().Undefined();
}

Napi::Value MappedRegion::IsUnmapped(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unmapped_);
}

}  // namespace blockring
