// The native half of a Ring: owns an Engine, watches its eventfd (a
// CompletionWatch: uv_poll_t or a waiter thread) for the creating thread,
// and delivers completions to JS in batches (one MakeCallback per batch).
// Runs only on that thread.
#pragma once

#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "../engine/engine.h"
#include "completion_watch.h"

namespace blockring {

class RingHandle final : public Napi::ObjectWrap<RingHandle>, private CompletionSink, private CompletionListener {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit RingHandle(const Napi::CallbackInfo& info);
  ~RingHandle() override;

 private:
  struct View {
    char* data = nullptr;
    size_t length = 0;
  };

  Napi::Value AddDevice(const Napi::CallbackInfo& info);
  Napi::Value CloseDevice(const Napi::CallbackInfo& info);
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value DeviceSize(const Napi::CallbackInfo& info);
  Napi::Value SubmitRaw(const Napi::CallbackInfo& info);
  Napi::Value RegisterBuffers(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Inflight(const Napi::CallbackInfo& info);
  Napi::Value EngineName(const Napi::CallbackInfo& info);
  Napi::Value EngineInfo(const Napi::CallbackInfo& info);
  Napi::Value Depth(const Napi::CallbackInfo& info);
  Napi::Value Completions(const Napi::CallbackInfo& info);

  const char* CheckRecord(const double* rec, const std::vector<View>& views, bool raw, int* kind, const char** code,
                          char* msg, size_t msg_len) const;
  struct Failure {
    uint32_t index = 0;
    int kind = 0;  // 0 TypeError, 1 RangeError, 2 state error
    const char* code = "";
    std::string message;
  };
  std::vector<Failure> SubmitRecords(const double* sq, uint32_t count, const std::vector<View>& views, bool raw,
                                     bool atomic);
  static Napi::Array FailuresToJs(Napi::Env env, const std::vector<Failure>& failures);
  int FindRegistered(const char* data, size_t length) const;
  bool OnComplete(Request* r) override;
  void OnReadable() override;
  void OnEnvTeardown() override { Teardown(); }
  bool Deliver();  // false when JS cannot run (env teardown)
  void UpdateRefs();
  void Teardown();
  void CheckOpen(Napi::Env env);

  std::unique_ptr<Engine> engine_;
  // The eventfd watcher; closed (and then freed by the runtime) at teardown.
  CompletionWatch* watch_ = nullptr;
  const char* watch_name_ = "";
  bool closed_ = false;
  bool in_callback_ = false;
  bool close_pending_ = false;
  bool held_ = false;
  uint32_t depth_ = 0;
  std::string requested_;  // engine name asked for ("auto", ...)
  std::string fallback_;   // why `auto` passed over engines; empty if it did not

  // Shared arrays (owned by JS, kept alive by these references).
  Napi::ObjectReference arrays_ref_;
  double* cq_ = nullptr;
  uint32_t cq_cap_ = 0;
  double* raw_sq_ = nullptr;
  uint32_t raw_sq_cap_ = 0;
  double* raw_cq_ = nullptr;
  uint32_t raw_cq_cap_ = 0;
  uint32_t cq_count_ = 0;
  uint32_t raw_cq_count_ = 0;

  Napi::FunctionReference on_complete_;  // weak; JS keeps the function on the wrapper
  Napi::ObjectReference self_;           // strong while requests are in flight
  std::unique_ptr<Napi::AsyncContext> async_;

  std::vector<View> registered_;
  std::vector<uint32_t> registered_order_;  // indices sorted by address
  Napi::ObjectReference registered_ref_;
  bool registered_fixed_ = false;
  uint64_t raw_inflight_ = 0;
  uint64_t fixed_inflight_ = 0;  // non-raw requests using a registered buffer
};

}  // namespace blockring
