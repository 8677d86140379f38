// CowRegionHandle: JS's handle on a CowRegion (engine/cow_region.h). lib/
// builds the mapping from the qcow2 tables, supplies free clusters and
// drains copy-ups into L2 entries; the pages themselves reach JS through a
// MappedRegion made from mapping(). JS thread only.
#pragma once

#include <napi.h>

#include <memory>

#include "../engine/cow_region.h"
#include "type_tags.h"

namespace blockring {

class CowRegionHandle final : public TaggedWrap<CowRegionHandle> {
 public:
  static constexpr const napi_type_tag& kTypeTag = tags::kCowRegion;
  static constexpr const char* kKind = "CowRegion";
  static Napi::Function Define(Napi::Env env);
  explicit CowRegionHandle(const Napi::CallbackInfo& info);

 private:
  Napi::Value MapOverlay(const Napi::CallbackInfo& info);
  Napi::Value MapShared(const Napi::CallbackInfo& info);
  Napi::Value Arm(const Napi::CallbackInfo& info);
  Napi::Value Supply(const Napi::CallbackInfo& info);
  Napi::Value Available(const Napi::CallbackInfo& info);
  Napi::Value Drain(const Napi::CallbackInfo& info);
  Napi::Value Reclaim(const Napi::CallbackInfo& info);
  Napi::Value CopyUp(const Napi::CallbackInfo& info);
  Napi::Value TakeError(const Napi::CallbackInfo& info);
  Napi::Value NewMapping(const Napi::CallbackInfo& info);

  std::shared_ptr<CowRegion> region_;
};

}  // namespace blockring
