// WriteLogHandle: JS's handle on an engine WriteLog (engine/write_log.h).
// lib/write-log.ts's WriteLog owns one; RingHandle::AttachLog gives its log
// to a device, so the engine records what that device sends to the kernel.
// JS thread only.
#pragma once

#include <napi.h>

#include <memory>

#include "../engine/write_log.h"
#include "type_tags.h"

namespace blockring {

class WriteLogHandle final : public TaggedWrap<WriteLogHandle> {
 public:
  static constexpr const napi_type_tag& kTypeTag = tags::kWriteLog;
  static constexpr const char* kKind = "WriteLog";
  static Napi::Function Define(Napi::Env env);
  explicit WriteLogHandle(const Napi::CallbackInfo& info);
  const std::shared_ptr<WriteLog>& log() const { return log_; }

 private:
  Napi::Value Now(const Napi::CallbackInfo& info);
  Napi::Value Record(const Napi::CallbackInfo& info);
  Napi::Value Complete(const Napi::CallbackInfo& info);
  Napi::Value Sync(const Napi::CallbackInfo& info);

  std::shared_ptr<WriteLog> log_ = std::make_shared<WriteLog>();
};

}  // namespace blockring
