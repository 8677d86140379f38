// MappedRegion: one mmap of a device range, handed to JS as zero-copy
// ArrayBuffers where the runtime allows external memory, with guarded
// native copies (read/write) where it does not. Runs on the JS thread,
// except msync, which runs on the libuv threadpool.
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "../engine/mapping.h"
#include "type_tags.h"

namespace blockring {

class MappedRegion final : public TaggedWrap<MappedRegion> {
 public:
  static constexpr const napi_type_tag& kTypeTag = tags::kMappedRegion;
  static constexpr const char* kKind = "MappedRegion";
  static Napi::Function Define(Napi::Env env);
  explicit MappedRegion(const Napi::CallbackInfo& info);

 private:
  Napi::Value GetArrayBuffer(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Sync(const Napi::CallbackInfo& info);
  Napi::Value Advise(const Napi::CallbackInfo& info);
  Napi::Value Lock(const Napi::CallbackInfo& info);
  Napi::Value Unlock(const Napi::CallbackInfo& info);
  Napi::Value Residency(const Napi::CallbackInfo& info);
  Napi::Value Unmap(const Napi::CallbackInfo& info);
  Napi::Value IsUnmapped(const Napi::CallbackInfo& info);

  void CheckMapped(Napi::Env env);
  // Validates (view, offset) against the region; returns the view's bytes.
  char* Span(const Napi::CallbackInfo& info, size_t* length, size_t* offset);

  void ReleaseMapping();
  friend class SyncWorker;

  std::shared_ptr<Mapping> map_;
  bool external_ = true;  // false: behave as if external buffers were disallowed
  bool unmapped_ = false;
  int syncs_ = 0;         // msync workers in flight: they keep the pages mapped
  std::vector<Napi::Reference<Napi::ArrayBuffer>> handed_out_;  // weak
};

}  // namespace blockring
