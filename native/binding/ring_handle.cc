#include "ring_handle.h"

#include "../engine/device_open.h"
#include "../kernel/file.h"
#include "engine_options.h"
#include "errors.h"
#include "records.h"
#include "values.h"

namespace blockring {
namespace {

// Completion callbacks one wakeup may make before yielding to the event loop.
constexpr unsigned kBatchesPerWakeup = 64;

class DiscardSink final : public CompletionSink {
 public:
  bool OnComplete(Request*) override { return true; }
};

}  // namespace

Napi::Function RingHandle::Define(Napi::Env env) {
  return DefineClass(env, "RingHandle",
                     {
                         InstanceMethod<&RingHandle::OpenDevice>("openDevice"),
                         InstanceMethod<&RingHandle::ResizeDevice>("resizeDevice"),
                         InstanceMethod<&RingHandle::CloseDevice>("closeDevice"),
                         InstanceMethod<&RingHandle::Submit>("submit"),
                         InstanceMethod<&RingHandle::DeviceSize>("deviceSize"),
                         InstanceMethod<&RingHandle::DeviceFileLength>("deviceFileLength"),
                         InstanceMethod<&RingHandle::DeviceFd>("deviceFd"),
                         InstanceMethod<&RingHandle::AttachLog>("attachLog"),
                         InstanceMethod<&RingHandle::SubmitRaw>("submitRaw"),
                         InstanceMethod<&RingHandle::Reap>("reap"),
                         InstanceMethod<&RingHandle::RegisterBuffers>("registerBuffers"),
                         InstanceMethod<&RingHandle::Close>("close"),
                         InstanceMethod<&RingHandle::Cancel>("cancel"),
                         InstanceMethod<&RingHandle::AttachImage>("attachImage"),
                         InstanceMethod<&RingHandle::ImageInstall>("imageInstall"),
                         InstanceMethod<&RingHandle::ImageSet>("imageSet"),
                         InstanceMethod<&RingHandle::ImageHas>("imageHas"),
                         InstanceMethod<&RingHandle::ImageReset>("imageReset"),
                         InstanceMethod<&RingHandle::ResumeParked>("resumeParked"),
                         InstanceMethod<&RingHandle::RetryParkedMany>("retryParkedMany"),
                         InstanceMethod<&RingHandle::ParkedCopy>("parkedCopy"),
                         InstanceMethod<&RingHandle::DeviceInflight>("deviceInflight"),
                         InstanceMethod<&RingHandle::ExportImage>("exportImage"),
                         InstanceMethod<&RingHandle::Inflight>("inflight"),
                         InstanceAccessor<&RingHandle::EngineName>("engine"),
                         InstanceAccessor<&RingHandle::EngineInfo>("engineInfo"),
                         InstanceAccessor<&RingHandle::Depth>("depth"),
                         InstanceAccessor<&RingHandle::Completions>("completions"),
                     });
}

// new RingHandle({ engine, depth, threads, directSubmitBatch, trace, nullEngine?, completions, cq, rawSq, rawCq,
//                  onComplete }); completions: 'uv-poll' or 'thread' (lib/ring.ts resolves 'auto')
RingHandle::RingHandle(const Napi::CallbackInfo& info) : TaggedWrap<RingHandle>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "options must be an object");
  Napi::Object opts = info[0].As<Napi::Object>();
  EngineChoice choice = ReadEngineChoice(env, opts);
  bool trace = opts.Get("trace").ToBoolean().Value();
  double poll = opts.Get("pollMicros").ToNumber().DoubleValue();
  if (!IsUint(poll, 1e6)) ThrowRange(env, "ERR_OUT_OF_RANGE", "pollMicros out of range");
  poll_ns_ = static_cast<uint64_t>(poll) * 1000;
  std::string completions = opts.Get("completions").ToString().Utf8Value();
  if (completions != "uv-poll" && completions != "thread") {
    ThrowType(env, "ERR_INVALID_ARG_VALUE", "completions must be 'uv-poll' or 'thread'");
  }

  raw_sq_ = Float64Data(env, opts, "rawSq", &raw_sq_cap_, kSqStride);
  completions_ = std::make_unique<CompletionArrays>(env, opts, &registered_);
  Napi::Value cb = opts.Get("onComplete");
  if (!cb.IsFunction()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "onComplete must be a function");
  // The function lives on the JS wrapper too, so this reference can be weak
  // without the function dying, and without a cycle keeping the ring alive.
  info.This().As<Napi::Object>().Set("_onComplete", cb);
  on_complete_ = Napi::Weak(cb.As<Napi::Function>());
  arrays_ref_ = Napi::Weak(opts);
  info.This().As<Napi::Object>().Set("_arrays", opts);

  BackendResult made = MakeBackend(choice);
  if (!made.backend) {
    ThrowErrno(env, made.err, made.syscall, "cannot start engine '" + choice.requested + "' (" + made.fallback + ")");
  }
  requested_ = choice.requested;
  fallback_ = made.fallback;
  engine_ = std::make_unique<Engine>(std::move(made.backend));
  engine_->set_trace(trace);
  int r = engine_->Init();
  if (r < 0) {
    engine_.reset();
    ThrowErrno(env, r, "eventfd", "cannot set up completion eventfd");
  }
  depth_ = engine_->backend().capacity();

  async_ = std::make_unique<Napi::AsyncContext>(env, "blockring:ring");
  self_ = Napi::Weak(info.This().As<Napi::Object>());
  const char* what = "";
  watch_ = StartCompletionWatch(env, completions == "thread" ? WatchKind::kThread : WatchKind::kUvPoll,
                                engine_->event_fd(), this, &r, &what);
  if (!watch_) {
    engine_.reset();
    ThrowErrno(env, r, what, "cannot watch the completion eventfd (completions: '" + completions + "')");
  }
  watch_name_ = watch_->name();
  BindHotMethods(env, info.This().As<Napi::Object>());
}

void RingHandle::BindHotMethods(Napi::Env env, Napi::Object self) {
  const std::pair<const char*, Napi::Function> hot[] = {
      {"submit", Napi::Function::New<&RingHandle::Bound<&RingHandle::Submit>>(env, "submit", this)},
      {"submitRaw", Napi::Function::New<&RingHandle::Bound<&RingHandle::SubmitRaw>>(env, "submitRaw", this)},
      {"reap", Napi::Function::New<&RingHandle::Bound<&RingHandle::Reap>>(env, "reap", this)},
  };
  for (const auto& [name, fn] : hot) {
    fn.DefineProperty(Napi::PropertyDescriptor::Value("owner", self, napi_default));
    self.DefineProperty(Napi::PropertyDescriptor::Value(name, fn, napi_writable));
  }
}

RingHandle::~RingHandle() { Teardown(); }

void RingHandle::Teardown() {
  closed_ = true;
  if (watch_) {
    // The environment stays until the watch's last callback has run.
    watch_->Close();
    watch_ = nullptr;
  }
  if (engine_) {
    DiscardSink sink;
    engine_->Drain(&sink);
    registered_.Unregister(engine_->backend());
    engine_.reset();
  }
  registered_.Clear();  // and the memory it held: the kernel is done with it (drained above)
}

void RingHandle::CheckOpen(Napi::Env env) {
  if (closed_ || close_pending_) ThrowState(env, "ERR_RING_CLOSED", "ring is closed");
}

// Gives a device OpenDevice opened to the engine (the fd is closed instead
// when the ring closed meanwhile: no JS code ever owns it). Returns its info.
Napi::Object RingHandle::AdoptDevice(Napi::Env env, const DeviceOpened& d) {
  if (closed_ || close_pending_ || !engine_) {
    CloseFd(d.fd);
    ThrowState(env, "ERR_RING_CLOSED", "ring is closed");
  }
  const DeviceConfig& c = d.config;
  Device* dev = engine_->AddDevice(d.fd, c);
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", dev->handle);
  out.Set("size", static_cast<double>(c.size));
  out.Set("isBlockDevice", c.is_block_device);
  out.Set("readOnly", c.read_only);
  out.Set("growable", c.growable);
  out.Set("logicalBlockSize", d.logical_block_size);
  out.Set("physicalBlockSize", d.physical_block_size);
  out.Set("offsetAlignment", c.offset_align);
  out.Set("memoryAlignment", c.mem_align);
  return out;
}

Napi::Value RingHandle::DeviceSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Device* dev = engine_ ? engine_->GetDevice(info[0].ToNumber().Uint32Value()) : nullptr;
  if (!dev) ThrowState(env, "ERR_DEVICE_CLOSED", "device is closed");
  return Napi::Number::New(env, static_cast<double>(dev->size));
}

// deviceFileLength(handle): the file's length now (fstat), which writes by
// other engines (a vhost-user-blk server's) change too; -1 if fstat fails.
Napi::Value RingHandle::DeviceFileLength(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Device* dev = engine_ ? engine_->GetDevice(info[0].ToNumber().Uint32Value()) : nullptr;
  if (!dev || dev->fd < 0) ThrowState(env, "ERR_DEVICE_CLOSED", "device is closed");
  int64_t n = FileLength(dev->fd);
  return Napi::Number::New(env, n < 0 ? -1 : static_cast<double>(n));
}

Napi::Value RingHandle::CloseDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!engine_) return Napi::Boolean::New(env, true);
  Device* dev = engine_->GetDevice(info[0].ToNumber().Uint32Value());
  if (!dev) return Napi::Boolean::New(env, true);
  return Napi::Boolean::New(env, engine_->CloseDevice(dev));
}

Napi::Value RingHandle::Inflight(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), engine_ ? static_cast<double>(engine_->inflight()) : 0);
}

Napi::Value RingHandle::EngineName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), engine_ ? engine_->backend().name() : "closed");
}

// { name, requested, fallbackReason }: what `auto` chose and why.
Napi::Value RingHandle::EngineInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", EngineName(info));
  out.Set("requested", requested_);
  out.Set("fallbackReason", fallback_.empty() ? env.Null() : Napi::String::New(env, fallback_));
  std::vector<const char*> features;
  if (engine_) features = engine_->backend().features();
  Napi::Array list = Napi::Array::New(env, features.size());
  for (uint32_t i = 0; i < features.size(); i++) list.Set(i, features[i]);
  out.Set("features", list);
  return out;
}

Napi::Value RingHandle::Depth(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), depth_); }
Napi::Value RingHandle::Completions(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), watch_name_); }

// Validates count records and accepts the valid ones. With atomic, one bad
// record means none is accepted. Returns the refused records (none on the
// common path, which allocates nothing).
std::vector<RingHandle::Failure> RingHandle::SubmitRecords(const double* sq, uint32_t count,
                                                           const std::vector<View>& views, bool raw, bool atomic) {
  std::vector<Failure> failures;
  RecordBuffers bufs{views, registered_, raw};
  char msg[256];
  for (uint32_t i = 0; i < count; i++) {
    Failure f;
    if (CheckRecord(sq + i * kSqStride, bufs, *engine_, &f.error, msg, sizeof(msg))) continue;
    f.index = i;
    f.message = f.error.message;
    failures.push_back(std::move(f));
  }
  if (!failures.empty() && atomic) return failures;
  size_t next_bad = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (next_bad < failures.size() && failures[next_bad].index == i) {
      next_bad++;
      continue;
    }
    Request* r = engine_->NewRequest();
    DecodeRecord(sq + i * kSqStride, bufs, *engine_, r);
    registered_.Acquire(*r);
    if (!raw) {
      // lib/ring.ts's ids are small and reused: a slot per id, for cancel().
      if (r->user_data >= by_id_.size()) by_id_.resize(r->user_data * 2 + 64);
      by_id_[r->user_data] = r;
    }
    engine_->Accept(r);
  }
  engine_->Dispatch();
  UpdateRefs();
  return failures;
}

Napi::Array RingHandle::FailuresToJs(Napi::Env env, const std::vector<Failure>& failures, bool batch) {
  Napi::Array out = Napi::Array::New(env, failures.size());
  for (uint32_t i = 0; i < failures.size(); i++) {
    const Failure& f = failures[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", f.index);
    // In a batch the record index is the request's index (lib/ submits the
    // single requests before a batch).
    std::string msg = batch ? "requests[" + std::to_string(f.index) + "]: " + f.message : f.message;
    o.Set("error", CodedError(env, f.error.cls, f.error.code, msg).Value());
    out.Set(i, o);
  }
  return out;
}

// submit(sq, count, buffers, atomic) -> failures[]
Napi::Value RingHandle::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    ThrowType(env, "ERR_INVALID_ARG_TYPE", "sq must be a Float64Array");
  }
  Napi::Float64Array sq = info[0].As<Napi::Float64Array>();
  double count = info[1].ToNumber().DoubleValue();
  if (!IsUint(count, static_cast<double>(sq.ElementLength() / kSqStride))) {
    ThrowRange(env, "ERR_OUT_OF_RANGE", "count exceeds the submission array");
  }
  if (!info[2].IsArray()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "buffers must be an array");
  Napi::Array buffers = info[2].As<Napi::Array>();
  std::vector<View> views(buffers.Length());
  // lib/ checked every view when its call was made; one that is not a view
  // now refuses only the records using it, never the rest of the tick.
  for (uint32_t i = 0; i < views.size(); i++) views[i].bad = !ViewData(buffers.Get(i), &views[i].data, &views[i].length);
  bool atomic = info[3].ToBoolean();
  return FailuresToJs(env, SubmitRecords(sq.Data(), static_cast<uint32_t>(count), views, false, atomic), atomic);
}

// submitRaw(count): records in rawSq, buffers from the registered table.
// Atomic; throws the first failure.
Napi::Value RingHandle::SubmitRaw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  double count = info[0].ToNumber().DoubleValue();
  if (!IsUint(count, raw_sq_cap_)) ThrowRange(env, "ERR_OUT_OF_RANGE", "count exceeds the raw submission array");
  static const std::vector<View> kNone;
  std::vector<Failure> failures = SubmitRecords(raw_sq_, static_cast<uint32_t>(count), kNone, true, true);
  if (!failures.empty()) {
    const Failure& f = failures[0];
    ThrowCoded(env, f.error.cls, f.error.code, "record " + std::to_string(f.index) + ": " + f.message);
  }
  return Napi::Number::New(env, count);
}

// registerBuffers(views[], fixed) -> whether io_uring registered them as fixed buffers
Napi::Value RingHandle::RegisterBuffers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (registered_.in_use()) {
    ThrowState(env, "ERR_BUFFERS_IN_USE", "requests using the registered buffers are in flight");
  }
  if (!info[0].IsArray()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "buffers must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<View> table(arr.Length());
  for (uint32_t i = 0; i < table.size(); i++) {
    if (!ViewData(arr.Get(i), &table[i].data, &table[i].length)) {
      ThrowType(env, "ERR_INVALID_ARG_TYPE", "buffer must be an ArrayBufferView");
    }
  }
  registered_.Replace(engine_->backend(), std::move(table), info[1].ToBoolean());
  registered_ref_ = Napi::Persistent(arr.As<Napi::Object>());
  return Napi::Boolean::New(env, registered_.fixed());
}

// cancel(id): the request lib/ring.ts submitted as id (not yet completed to
// JS: its id is still taken, so by_id_ holds it) was aborted. Dropped if
// never issued, else the kernel is asked to cancel it where the engine can;
// either way it completes later (-ECANCELED or its result), and its memory
// stays held until then.
Napi::Value RingHandle::Cancel(const Napi::CallbackInfo& info) {
  double id = info[0].ToNumber().DoubleValue();
  if (!engine_ || !IsUint(id, static_cast<double>(by_id_.size()) - 1)) return info.Env().Undefined();
  Request* r = by_id_[static_cast<size_t>(id)];
  if (!r || r->user_data != static_cast<uint64_t>(id) || (r->flags & kFlagRaw) || r->parent) {
    return info.Env().Undefined();
  }
  if (engine_->Cancel(r) == Engine::CancelResult::kKernel) engine_->Dispatch();
  return info.Env().Undefined();
}

Napi::Value RingHandle::Close(const Napi::CallbackInfo& info) {
  if (in_callback_) {
    close_pending_ = true;  // finish after the completion callback returns
  } else {
    Teardown();
  }
  if (held_) {
    self_.Unref();
    held_ = false;
  }
  return info.Env().Undefined();
}

// reap() -> completions delivered: what the kernel has already posted (the
// page-cache reads a submit finished inside io_uring_enter, say) goes to JS
// now, inside this call, the way a wakeup would deliver it. 0 inside a
// completion callback: the wakeup's own loop reaps again when it returns.
Napi::Value RingHandle::Reap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!engine_ || in_callback_) return Napi::Number::New(env, 0);
  return Napi::Number::New(env, static_cast<double>(DeliverCompleted()));
}

void RingHandle::OnReadable() {
  if (!engine_) return;
  // Raw N-API here: during worker termination JS cannot run and the C++
  // wrappers would turn each failed call into a fatal error.
  napi_env env = Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  DeliverCompleted();
  napi_close_handle_scope(env, scope);
}

size_t RingHandle::DeliverCompleted() {
  napi_env env = Env();
  size_t delivered = 0;
  in_callback_ = true;
  // After each batch, reap again: completions posted while JS ran (page-cache
  // reads that the callback's own submissions finished inside
  // io_uring_enter) go out in the same wakeup, skipping the trip through
  // epoll, the eventfd and libuv. Each batch is its own callback, so user
  // code never runs inside a submit. The bound keeps a stream of such
  // completions from starving the event loop; whatever is left has
  // signalled the eventfd and comes on the next turn.
  //
  // Submissions a callback makes are only staged (HoldSubmits); the next
  // Process submits them in the one io_uring_enter that also reaps, and
  // the Dispatch after the loop submits what the last callback staged. In
  // polling mode (pollMicros) this thread then spins, bounded, for the next
  // completion instead of sleeping in epoll_wait; it is then busy for at
  // most kBatchesPerWakeup spins per wakeup.
  // The kernel's eventfd write per completion is wasted while this loop
  // reaps anyway: muted until the loop ends (engine.h).
  engine_->MuteEventfd(true);
  for (unsigned round = 0; round < kBatchesPerWakeup; round++) {
    completions_->Reset();
    if (round > 0 && poll_ns_) engine_->SpinForCompletion(poll_ns_);
    engine_->Process(completions_.get(), round == 0);  // the eventfd needs draining once
    // Parked image requests go to the format layer in the same array.
    uint32_t token;
    Request* parked;
    while (!completions_->full() && engine_->TakeParked(&token, &parked)) completions_->Park(token, *parked);
    if (completions_->empty()) break;
    delivered += completions_->count();
    engine_->HoldSubmits(true);
    bool more = completions_->Deliver(env, on_complete_, self_, *async_);
    if (!engine_) break;  // torn down from inside the callback (environment teardown)
    engine_->HoldSubmits(false);
    if (!more || close_pending_) break;
  }
  if (engine_) {
    engine_->HoldSubmits(false);
    engine_->Dispatch();
    engine_->MuteEventfd(false);
  }
  in_callback_ = false;
  if (engine_ && engine_->has_new_parked()) engine_->Wake();  // the array was full: next turn
  if (close_pending_) {
    Teardown();
    return delivered;
  }
  UpdateRefs();
  return delivered;
}

void RingHandle::UpdateRefs() {
  if (!engine_ || !watch_) return;
  bool busy = engine_->inflight() > 0;
  if (busy == held_) return;
  held_ = busy;
  // While requests are in flight the loop stays alive and the JS wrapper
  // (with the buffers its pending table pins) cannot be collected.
  watch_->SetRef(busy);
  if (busy) {
    self_.Ref();
  } else {
    self_.Unref();
  }
}

}  // namespace blockring
