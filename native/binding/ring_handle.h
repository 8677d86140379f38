// The native half of a Ring: owns an Engine, watches its eventfd (a
// CompletionWatch: uv_poll_t or a waiter thread) for the creating thread,
// and hands each batch of completions to JS (completions.h). Records are
// checked and decoded by record_decode.h, registered buffers kept by
// registered_buffers.h, engine options read by engine_options.h. Runs only
// on that thread.
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../engine/device_open.h"
#include "../engine/engine.h"
#include "completion_watch.h"
#include "completions.h"
#include "record_decode.h"
#include "registered_buffers.h"
#include "type_tags.h"

namespace blockring {

class RingHandle final : public TaggedWrap<RingHandle>, private CompletionListener {
 public:
  static constexpr const napi_type_tag& kTypeTag = tags::kRingHandle;
  static constexpr const char* kKind = "RingHandle";
  static Napi::Function Define(Napi::Env env);
  explicit RingHandle(const Napi::CallbackInfo& info);
  ~RingHandle() override;

 private:
  friend class OpenWorker;
  friend class ResizeWorker;
  // openDevice(path, options) -> Promise<device info>; resizeDevice(handle, size) -> Promise
  // (device_files.cc): the open and the ftruncate run on the libuv threadpool.
  Napi::Value OpenDevice(const Napi::CallbackInfo& info);
  Napi::Value ResizeDevice(const Napi::CallbackInfo& info);
  Napi::Object AdoptDevice(Napi::Env env, const DeviceOpened& d);
  Napi::Value CloseDevice(const Napi::CallbackInfo& info);
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value DeviceSize(const Napi::CallbackInfo& info);
  // deviceFd(handle) (device_files.cc): the fd the engine owns; JS keeps none.
  Napi::Value AttachLog(const Napi::CallbackInfo& info);
  Napi::Value DeviceFd(const Napi::CallbackInfo& info);
  Napi::Value SubmitRaw(const Napi::CallbackInfo& info);
  Napi::Value Reap(const Napi::CallbackInfo& info);
  // The per-request entry points (submit, submitRaw, reap) again as functions of
  // this instance alone: its pointer is the function's data, so a call needs
  // no type-tag check and no napi_unwrap (two private-symbol lookups, about
  // 1,700 instructions of ~7,900 per depth-1 request). Own properties of the
  // wrapper, shadowing the (still tag-checked) prototype methods; each holds
  // the wrapper alive through a property of its own, so it never outlives it.
  void BindHotMethods(Napi::Env env, Napi::Object self);
  template <Napi::Value (RingHandle::*M)(const Napi::CallbackInfo&)>
  static Napi::Value Bound(const Napi::CallbackInfo& info) {
    return (static_cast<RingHandle*>(info.Data())->*M)(info);
  }
  Napi::Value RegisterBuffers(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  // Image devices (image_devices.cc).
  Device* ImageDevice(Napi::Env env, const Napi::Value& handle);
  Napi::Value AttachImage(const Napi::CallbackInfo& info);
  Napi::Value ImageInstall(const Napi::CallbackInfo& info);
  Napi::Value ImageSet(const Napi::CallbackInfo& info);
  Napi::Value ImageHas(const Napi::CallbackInfo& info);
  Napi::Value ImageReset(const Napi::CallbackInfo& info);
  Napi::Value ResumeParked(const Napi::CallbackInfo& info);
  Napi::Value DeviceFileLength(const Napi::CallbackInfo& info);
  Napi::Value RetryParkedMany(const Napi::CallbackInfo& info);
  Napi::Value ParkedCopy(const Napi::CallbackInfo& info);
  Napi::Value DeviceInflight(const Napi::CallbackInfo& info);
  Napi::Value ExportImage(const Napi::CallbackInfo& info);
  Napi::Value Inflight(const Napi::CallbackInfo& info);
  Napi::Value EngineName(const Napi::CallbackInfo& info);
  Napi::Value EngineInfo(const Napi::CallbackInfo& info);
  Napi::Value Depth(const Napi::CallbackInfo& info);
  Napi::Value Completions(const Napi::CallbackInfo& info);

  struct Failure {
    uint32_t index = 0;
    RecordError error;
    std::string message;
  };
  std::vector<Failure> SubmitRecords(const double* sq, uint32_t count, const std::vector<View>& views, bool raw,
                                     bool atomic);
  // [{ index, error }]: the error built as the class the user sees; batch:
  // its message names requests[index].
  static Napi::Array FailuresToJs(Napi::Env env, const std::vector<Failure>& failures, bool batch);
  void OnReadable() override;
  // A wakeup's reap loop: every batch of completions to JS, one callback
  // each (OnReadable, and reap() from JS). Returns how many were delivered.
  size_t DeliverCompleted();
  void OnEnvTeardown() override { Teardown(); }
  void UpdateRefs();
  void Teardown();
  void CheckOpen(Napi::Env env);

  std::unique_ptr<Engine> engine_;
  // Promise-API requests by id (cancel()); an entry is current while its id
  // is taken in lib/ring.ts, stale after.
  std::vector<Request*> by_id_;
  // The eventfd watcher; closed (and then freed by the runtime) at teardown.
  CompletionWatch* watch_ = nullptr;
  const char* watch_name_ = "";
  bool closed_ = false;
  bool in_callback_ = false;
  bool close_pending_ = false;
  bool held_ = false;
  uint32_t depth_ = 0;
  uint64_t poll_ns_ = 0;  // pollMicros: bounded spin for the next completion (0: off)
  std::string requested_;  // engine name asked for ("auto", ...)
  std::string fallback_;   // why `auto` passed over engines; empty if it did not

  // Shared arrays (owned by JS, kept alive by these references).
  Napi::ObjectReference arrays_ref_;
  double* raw_sq_ = nullptr;
  uint32_t raw_sq_cap_ = 0;

  Napi::FunctionReference on_complete_;  // weak; JS keeps the function on the wrapper
  Napi::ObjectReference self_;           // strong while requests are in flight
  std::unique_ptr<Napi::AsyncContext> async_;

  RegisteredBuffers registered_;
  Napi::ObjectReference registered_ref_;  // pins every registered buffer
  // After registered_: it reports releases to it.
  std::unique_ptr<CompletionArrays> completions_;
};

}  // namespace blockring
