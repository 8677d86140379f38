// Completion delivery: the engine's finished requests written into the
// shared completion arrays JS reads (records.h layout), and the one
// callback per batch that tells JS how many there are. Runs on the ring's
// thread.
#pragma once

#include <napi.h>

#include "../engine/engine.h"
#include "registered_buffers.h"

namespace blockring {

class CompletionArrays final : public CompletionSink {
 public:
  // cq and rawCq from the ring's options (Float64Arrays JS keeps alive).
  CompletionArrays(Napi::Env env, Napi::Object options, RegisteredBuffers* registered);

  void Reset() { count_ = raw_count_ = 0; }
  bool empty() const { return !count_ && !raw_count_; }
  uint32_t count() const { return count_ + raw_count_; }
  bool full() const { return count_ >= cap_ || raw_count_ >= raw_cap_; }
  // onComplete(count, rawCount) through napi_make_callback. False when JS
  // cannot run (environment teardown) or the callback threw (reported as
  // an uncaught exception).
  // A parked image request (Engine::TakeParked) as a record with id
  // -token: result = device handle, issued = offset, completed =
  // length * 64 + flags * 8 + op.
  void Park(uint32_t token, const Request& r);
  bool Deliver(napi_env env, napi_ref fn, napi_ref recv, napi_async_context context) const;

 private:
  bool OnComplete(Request* r) override;

  RegisteredBuffers* registered_;
  double* cq_ = nullptr;
  uint32_t cap_ = 0;
  double* raw_cq_ = nullptr;
  uint32_t raw_cap_ = 0;
  uint32_t count_ = 0;
  uint32_t raw_count_ = 0;
};

}  // namespace blockring
