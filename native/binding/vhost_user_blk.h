// The native half of a VhostUserBlkServer: starts a vhost::Server on the
// fd of an open BlockDevice and stops it. Thin: the server runs on its own
// thread and never calls into JS.
#pragma once

#include <napi.h>

#include <memory>

#include "../vhost/server.h"
#include "type_tags.h"

namespace blockring {

class VhostUserBlkHandle final : public TaggedWrap<VhostUserBlkHandle> {
 public:
  static constexpr const napi_type_tag& kTypeTag = tags::kVhostUserBlk;
  static constexpr const char* kKind = "VhostUserBlkHandle";
  static Napi::Function Define(Napi::Env env);
  explicit VhostUserBlkHandle(const Napi::CallbackInfo& info);
  ~VhostUserBlkHandle() override;

 private:
  Napi::Value CopyOut(const Napi::CallbackInfo& info);
  Napi::Value CopyIn(const Napi::CallbackInfo& info);
  Napi::Value Complete(const Napi::CallbackInfo& info);
  void Shutdown();
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value EngineName(const Napi::CallbackInfo& info);

  std::unique_ptr<vhost::Server> server_;
  // Delegated requests reach JS through this (server thread -> JS thread).
  Napi::ThreadSafeFunction tsfn_;
  bool has_tsfn_ = false;
};

}  // namespace blockring
