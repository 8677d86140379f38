#include "ring_handle.h"

#include <errno.h>

#include <cmath>

#include "../engine/factory.h"
#include "errors.h"
#include "records.h"

namespace blockring {
namespace {

constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1

class DiscardSink final : public CompletionSink {
 public:
  bool OnComplete(Request*) override { return true; }
};

bool IsUint(double v, double max) { return v >= 0 && v <= max && std::floor(v) == v; }

// Data pointer and length of any ArrayBufferView.
bool ViewData(Napi::Value v, char** data, size_t* length) {
  if (v.IsTypedArray()) {
    Napi::TypedArray ta = v.As<Napi::TypedArray>();
    *data = static_cast<char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    *length = ta.ByteLength();
    return true;
  }
  if (v.IsDataView()) {
    Napi::DataView dv = v.As<Napi::DataView>();
    *data = static_cast<char*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    *length = dv.ByteLength();
    return true;
  }
  return false;
}

double* Float64Data(Napi::Env env, Napi::Object opts, const char* key, uint32_t* cap, uint32_t stride) {
  Napi::Value v = opts.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    ThrowType(env, "ERR_INVALID_ARG_TYPE", std::string(key) + " must be a Float64Array");
  }
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  *cap = static_cast<uint32_t>(a.ElementLength() / stride);
  return a.Data();
}

// A bound, or UINT64_MAX for Infinity (unbounded).
uint64_t BoundOrMax(Napi::Env env, Napi::Value v, const char* what) {
  double d = v.ToNumber().DoubleValue();
  if (std::isinf(d) && d > 0) return UINT64_MAX;
  if (!IsUint(d, kMaxSafe)) ThrowRange(env, "ERR_OUT_OF_RANGE", std::string("nullEngine: bad ") + what);
  return static_cast<uint64_t>(d);
}

// nullEngine: { latencyMinUs, latencyMaxUs, seed, faults: [{ op, offsetStart,
// offsetEnd, count, errno }] }, normalized by lib/null-engine.ts (op -1 = any).
void ReadNullOptions(Napi::Env env, Napi::Value v, NullOptions* out) {
  if (!v.IsObject()) return;
  Napi::Object o = v.As<Napi::Object>();
  double lo = o.Get("latencyMinUs").ToNumber().DoubleValue();
  double hi = o.Get("latencyMaxUs").ToNumber().DoubleValue();
  if (!IsUint(lo, 60e6) || !IsUint(hi, 60e6) || lo > hi) ThrowRange(env, "ERR_OUT_OF_RANGE", "nullEngine: bad latency");
  out->latency_min_us = static_cast<uint32_t>(lo);
  out->latency_max_us = static_cast<uint32_t>(hi);
  out->seed = BoundOrMax(env, o.Get("seed"), "seed");
  Napi::Value faults = o.Get("faults");
  if (!faults.IsArray()) return;
  Napi::Array list = faults.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Object f = list.Get(i).ToObject();
    NullFault nf;
    double op = f.Get("op").ToNumber().DoubleValue();
    double err = f.Get("errno").ToNumber().DoubleValue();
    if (op != -1 && !IsUint(op, static_cast<double>(Op::kWriteZeroes))) ThrowRange(env, "ERR_OUT_OF_RANGE", "nullEngine: bad op");
    if (!IsUint(err, 4095) || err < 1) ThrowRange(env, "ERR_OUT_OF_RANGE", "nullEngine: bad errno");
    nf.op = static_cast<int>(op);
    nf.error = static_cast<int>(err);
    nf.offset_start = BoundOrMax(env, f.Get("offsetStart"), "offsetStart");
    nf.offset_end = BoundOrMax(env, f.Get("offsetEnd"), "offsetEnd");
    nf.count = BoundOrMax(env, f.Get("count"), "count");
    out->faults.push_back(nf);
  }
}

}  // namespace

Napi::Function RingHandle::Define(Napi::Env env) {
  return DefineClass(env, "RingHandle",
                     {
                         InstanceMethod<&RingHandle::AddDevice>("addDevice"),
                         InstanceMethod<&RingHandle::CloseDevice>("closeDevice"),
                         InstanceMethod<&RingHandle::Submit>("submit"),
                         InstanceMethod<&RingHandle::SubmitRaw>("submitRaw"),
                         InstanceMethod<&RingHandle::RegisterBuffers>("registerBuffers"),
                         InstanceMethod<&RingHandle::Close>("close"),
                         InstanceMethod<&RingHandle::Inflight>("inflight"),
                         InstanceAccessor<&RingHandle::EngineName>("engine"),
                         InstanceAccessor<&RingHandle::Depth>("depth"),
                     });
}

// new RingHandle({ engine, depth, trace, nullEngine?, sq, cq, rawSq, rawCq, onComplete })
RingHandle::RingHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingHandle>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "options must be an object");
  Napi::Object opts = info[0].As<Napi::Object>();
  EngineChoice choice;
  choice.requested = opts.Get("engine").ToString().Utf8Value();
  double depth = opts.Get("depth").ToNumber().DoubleValue();
  if (!IsUint(depth, 65536) || depth < 1) ThrowRange(env, "ERR_OUT_OF_RANGE", "depth out of range");
  choice.depth = static_cast<uint32_t>(depth);
  ReadNullOptions(env, opts.Get("nullEngine"), &choice.null_engine);
  bool trace = opts.Get("trace").ToBoolean().Value();

  sq_ = Float64Data(env, opts, "sq", &sq_cap_, kSqStride);
  cq_ = Float64Data(env, opts, "cq", &cq_cap_, kCqStride);
  raw_sq_ = Float64Data(env, opts, "rawSq", &raw_sq_cap_, kSqStride);
  raw_cq_ = Float64Data(env, opts, "rawCq", &raw_cq_cap_, kCqStride);
  if (!cq_cap_ || !raw_cq_cap_) ThrowRange(env, "ERR_OUT_OF_RANGE", "completion arrays are empty");
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
    ThrowErrno(env, made.err, "io_uring_setup", "cannot start engine '" + choice.requested + "' (" + made.fallback + ")");
  }
  engine_ = std::make_unique<Engine>(std::move(made.backend));
  engine_->set_trace(trace);
  int r = engine_->Init();
  if (r < 0) {
    engine_.reset();
    ThrowErrno(env, r, "eventfd", "cannot set up completion eventfd");
  }
  depth_ = engine_->backend().capacity();

  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  poll_ = new uv_poll_t;
  poll_->data = this;
  uv_poll_init(loop, poll_, engine_->event_fd());
  uv_poll_start(poll_, UV_READABLE, OnPoll);
  uv_unref(reinterpret_cast<uv_handle_t*>(poll_));  // idle rings never hold the loop open

  async_ = std::make_unique<Napi::AsyncContext>(env, "blockring:ring");
  self_ = Napi::Weak(info.This().As<Napi::Object>());
  napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
  cleanup_hook_ = true;
}

RingHandle::~RingHandle() { Teardown(); }

void RingHandle::OnEnvCleanup(void* arg) {
  // The environment is going away (worker exit/terminate, process teardown)
  // with requests possibly in flight: wait for the kernel to finish with
  // every buffer before V8 frees them.
  auto* self = static_cast<RingHandle*>(arg);
  self->cleanup_hook_ = false;
  self->Teardown();
}

void RingHandle::Teardown() {
  if (cleanup_hook_) {
    napi_remove_env_cleanup_hook(Env(), OnEnvCleanup, this);
    cleanup_hook_ = false;
  }
  closed_ = true;
  if (poll_) {
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (engine_) {
    DiscardSink sink;
    engine_->Drain(&sink);
    if (registered_fixed_) engine_->backend().UnregisterBuffers();
    engine_.reset();
  }
  registered_.clear();
}

void RingHandle::CheckOpen(Napi::Env env) {
  if (closed_ || close_pending_) ThrowState(env, "ERR_RING_CLOSED", "ring is closed");
}

// addDevice(fd, direct, readOnly) -> { handle, size, isBlockDevice, ... }
Napi::Value RingHandle::AddDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  double fd = info[0].ToNumber().DoubleValue();
  if (!IsUint(fd, 0x7fffffff)) ThrowType(env, "ERR_INVALID_ARG_TYPE", "fd must be a non-negative integer");
  Geometry g;
  int r = QueryDeviceGeometry(static_cast<int>(fd), &g);
  if (r < 0) ThrowErrno(env, r, "fstat", "cannot inspect device");
  Device* dev = engine_->AddDevice(static_cast<int>(fd), info[1].ToBoolean(), info[2].ToBoolean());
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", dev->handle);
  out.Set("size", static_cast<double>(g.size));
  out.Set("isBlockDevice", g.is_block_device);
  out.Set("deviceReadOnly", g.read_only);
  out.Set("logicalBlockSize", g.logical_block_size);
  out.Set("physicalBlockSize", g.physical_block_size);
  out.Set("dioMemAlign", g.dio_mem_align);
  out.Set("dioOffsetAlign", g.dio_offset_align);
  return out;
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

Napi::Value RingHandle::Depth(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), depth_); }

void RingHandle::SubmitRecords(Napi::Env env, const double* sq, uint32_t count, Napi::Array* buffers, bool raw) {
  // Pass 1: validate everything, so a bad record submits nothing.
  uint32_t nbuf = buffers ? buffers->Length() : 0;
  for (uint32_t i = 0; i < count; i++) {
    const double* rec = sq + i * kSqStride;
    double word = rec[kSqOpWord];
    if (!IsUint(word, 0xffffffff)) ThrowType(env, "ERR_INVALID_ARG_VALUE", "bad request record");
    uint32_t w = static_cast<uint32_t>(word);
    unsigned op = w & 0xff, tag = (w >> 8) & 0xff;
    if (op > static_cast<unsigned>(Op::kWriteZeroes)) ThrowType(env, "ERR_INVALID_ARG_VALUE", "unknown op");
    if (tag > static_cast<unsigned>(Tag::kHead)) ThrowType(env, "ERR_INVALID_ARG_VALUE", "unknown tag");
    if (!IsUint(rec[kSqDevice], 0xffffffff)) ThrowType(env, "ERR_INVALID_ARG_VALUE", "bad device handle");
    Device* dev = engine_->GetDevice(static_cast<uint32_t>(rec[kSqDevice]));
    if (!dev) ThrowState(env, "ERR_DEVICE_CLOSED", "device is closed");
    if (!IsUint(rec[kSqOffset], kMaxSafe)) ThrowRange(env, "ERR_OUT_OF_RANGE", "offset must be a safe non-negative integer");
    bool transfer = op == static_cast<unsigned>(Op::kRead) || op == static_cast<unsigned>(Op::kWrite);
    if (op != static_cast<unsigned>(Op::kRead) && dev->read_only) ThrowState(env, "ERR_READ_ONLY", "device is open read-only");
    if (!transfer) {
      if (!IsUint(rec[kSqLength], kMaxSafe)) ThrowRange(env, "ERR_OUT_OF_RANGE", "length must be a safe non-negative integer");
      continue;
    }
    if (raw) {
      if (!IsUint(rec[kSqBuffer], registered_.size() - 1.0) || registered_.empty()) {
        ThrowRange(env, "ERR_OUT_OF_RANGE", "registered buffer index out of range");
      }
      const RegisteredBuffer& b = registered_[static_cast<size_t>(rec[kSqBuffer])];
      if (!IsUint(rec[kSqBufOffset], static_cast<double>(b.length)) || !IsUint(rec[kSqLength], kMaxSafe) ||
          rec[kSqBufOffset] + rec[kSqLength] > static_cast<double>(b.length)) {
        ThrowRange(env, "ERR_OUT_OF_RANGE", "request exceeds its registered buffer");
      }
    } else {
      double first = rec[kSqBuffer], n = rec[kSqBufCount];
      if (!IsUint(first, nbuf) || !IsUint(n, nbuf) || n < 1 || first + n > nbuf) {
        ThrowRange(env, "ERR_OUT_OF_RANGE", "buffer index out of range");
      }
    }
  }
  // Pass 2: build requests and hand them to the engine.
  for (uint32_t i = 0; i < count; i++) {
    const double* rec = sq + i * kSqStride;
    uint32_t w = static_cast<uint32_t>(rec[kSqOpWord]);
    Request* r = engine_->NewRequest();
    r->user_data = static_cast<uint64_t>(rec[kSqId]);
    r->op = static_cast<Op>(w & 0xff);
    r->tag = static_cast<Tag>((w >> 8) & 0xff);
    r->flags = static_cast<uint16_t>(((w >> 16) & 0xffff) & ~(kFlagRaw | kFlagFixedBuffer));
    r->dev = engine_->GetDevice(static_cast<uint32_t>(rec[kSqDevice]));
    r->offset = static_cast<uint64_t>(rec[kSqOffset]);
    if (raw) r->flags |= kFlagRaw;
    if (!r->IsTransfer()) {
      r->length = static_cast<uint64_t>(rec[kSqLength]);
    } else if (raw) {
      size_t index = static_cast<size_t>(rec[kSqBuffer]);
      const RegisteredBuffer& b = registered_[index];
      r->SetIovecs(1);
      r->iov[0].iov_base = b.data + static_cast<size_t>(rec[kSqBufOffset]);
      r->iov[0].iov_len = static_cast<size_t>(rec[kSqLength]);
      r->length = r->iov[0].iov_len;
      if (registered_fixed_) {
        r->flags |= kFlagFixedBuffer;
        r->buf_index = static_cast<uint16_t>(index);
      }
    } else {
      uint32_t first = static_cast<uint32_t>(rec[kSqBuffer]);
      uint32_t n = static_cast<uint32_t>(rec[kSqBufCount]);
      r->SetIovecs(n);
      r->length = 0;
      for (uint32_t k = 0; k < n; k++) {
        char* data = nullptr;
        size_t len = 0;
        ViewData(buffers->Get(first + k), &data, &len);  // checked in Submit
        r->iov[k].iov_base = data;
        r->iov[k].iov_len = len;
        r->length += len;
      }
    }
    engine_->Accept(r);
    if (raw) raw_inflight_++;
  }
  engine_->Flush();
  UpdateRefs();
}

// submit(count, buffers)
Napi::Value RingHandle::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  double count = info[0].ToNumber().DoubleValue();
  if (!IsUint(count, sq_cap_)) ThrowRange(env, "ERR_OUT_OF_RANGE", "count exceeds the submission array");
  if (!info[1].IsArray()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "buffers must be an array");
  Napi::Array buffers = info[1].As<Napi::Array>();
  // Check every buffer up front: pass 2 must not fail half way.
  for (uint32_t i = 0; i < buffers.Length(); i++) {
    char* d;
    size_t l;
    if (!ViewData(buffers.Get(i), &d, &l)) ThrowType(env, "ERR_INVALID_ARG_TYPE", "buffer must be an ArrayBufferView");
  }
  SubmitRecords(env, sq_, static_cast<uint32_t>(count), &buffers, false);
  return env.Undefined();
}

// submitRaw(count): records in rawSq, buffers from the registered table.
Napi::Value RingHandle::SubmitRaw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  double count = info[0].ToNumber().DoubleValue();
  if (!IsUint(count, raw_sq_cap_)) ThrowRange(env, "ERR_OUT_OF_RANGE", "count exceeds the raw submission array");
  SubmitRecords(env, raw_sq_, static_cast<uint32_t>(count), nullptr, true);
  return Napi::Number::New(env, count);
}

// registerBuffers(views[], fixed) -> whether io_uring registered them as fixed buffers
Napi::Value RingHandle::RegisterBuffers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (raw_inflight_) ThrowState(env, "ERR_BUFFERS_IN_USE", "raw requests are in flight");
  if (!info[0].IsArray()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "buffers must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<RegisteredBuffer> table;
  std::vector<iovec> iov;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    RegisteredBuffer b;
    if (!ViewData(arr.Get(i), &b.data, &b.length)) ThrowType(env, "ERR_INVALID_ARG_TYPE", "buffer must be an ArrayBufferView");
    table.push_back(b);
    iov.push_back({b.data, b.length});
  }
  if (registered_fixed_) {
    engine_->backend().UnregisterBuffers();
    registered_fixed_ = false;
  }
  bool want_fixed = info[1].ToBoolean();
  if (want_fixed && !table.empty() && table.size() <= 16384) {
    registered_fixed_ = engine_->backend().RegisterBuffers(iov.data(), static_cast<unsigned>(iov.size())) == 0;
  }
  registered_ = std::move(table);
  registered_ref_ = Napi::Persistent(arr.As<Napi::Object>());  // pins every registered buffer
  return Napi::Boolean::New(env, registered_fixed_);
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

bool RingHandle::OnComplete(Request* r) {
  bool raw = r->flags & kFlagRaw;
  double* rec;
  if (raw) {
    raw_inflight_--;
    rec = raw_cq_ + (raw_cq_count_++) * kCqStride;
  } else {
    rec = cq_ + (cq_count_++) * kCqStride;
  }
  rec[kCqId] = static_cast<double>(r->user_data);
  rec[kCqResult] = static_cast<double>(r->result);
  rec[kCqIssued] = static_cast<double>(r->issue_seq);
  rec[kCqCompleted] = static_cast<double>(r->complete_seq);
  return cq_count_ < cq_cap_ && raw_cq_count_ < raw_cq_cap_;
}

void RingHandle::OnPoll(uv_poll_t* handle, int status, int) {
  auto* self = static_cast<RingHandle*>(handle->data);
  if (status < 0 || !self->engine_) return;
  self->OnReadable();
}

void RingHandle::OnReadable() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  in_callback_ = true;
  for (;;) {
    cq_count_ = raw_cq_count_ = 0;
    engine_->Process(this);
    if (!cq_count_ && !raw_cq_count_) break;
    bool full = cq_count_ >= cq_cap_ || raw_cq_count_ >= raw_cq_cap_;
    Deliver();
    if (close_pending_ || !full) break;
  }
  in_callback_ = false;
  if (close_pending_) {
    Teardown();
    return;
  }
  UpdateRefs();
}

void RingHandle::Deliver() {
  Napi::Env env = Env();
  Napi::Function fn = on_complete_.Value();
  if (fn.IsEmpty()) return;
  try {
    fn.MakeCallback(Value(), {Napi::Number::New(env, cq_count_), Napi::Number::New(env, raw_cq_count_)}, *async_);
  } catch (const Napi::Error& e) {
    // An exception from user code in a completion handler is an uncaught
    // exception, as for any other event-loop callback.
    napi_fatal_exception(env, e.Value());
  }
}

void RingHandle::UpdateRefs() {
  if (!engine_ || !poll_) return;
  bool busy = engine_->inflight() > 0;
  if (busy == held_) return;
  held_ = busy;
  // While requests are in flight the loop stays alive and the JS wrapper
  // (with the buffers its pending table pins) cannot be collected.
  if (busy) {
    uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
    self_.Ref();
  } else {
    uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    self_.Unref();
  }
}

}  // namespace blockring
