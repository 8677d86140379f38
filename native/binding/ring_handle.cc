#include "ring_handle.h"

#include <errno.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "../engine/factory.h"
#include "errors.h"
#include "values.h"
#include "records.h"

namespace blockring {
namespace {

constexpr double kMaxSafe = kMaxSafeInteger;

class DiscardSink final : public CompletionSink {
 public:
  bool OnComplete(Request*) override { return true; }
};

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
                         InstanceMethod<&RingHandle::DeviceSize>("deviceSize"),
                         InstanceMethod<&RingHandle::SubmitRaw>("submitRaw"),
                         InstanceMethod<&RingHandle::RegisterBuffers>("registerBuffers"),
                         InstanceMethod<&RingHandle::Close>("close"),
                         InstanceMethod<&RingHandle::Inflight>("inflight"),
                         InstanceAccessor<&RingHandle::EngineName>("engine"),
                         InstanceAccessor<&RingHandle::EngineInfo>("engineInfo"),
                         InstanceAccessor<&RingHandle::Depth>("depth"),
                         InstanceAccessor<&RingHandle::Completions>("completions"),
                     });
}

// new RingHandle({ engine, depth, threads, directSubmitBatch, trace, nullEngine?, completions, cq, rawSq, rawCq,
//                  onComplete }); completions: 'uv-poll' or 'thread' (lib/ring.ts resolves 'auto')
RingHandle::RingHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingHandle>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "options must be an object");
  Napi::Object opts = info[0].As<Napi::Object>();
  EngineChoice choice;
  choice.requested = opts.Get("engine").ToString().Utf8Value();
  double depth = opts.Get("depth").ToNumber().DoubleValue();
  if (!IsUint(depth, 65536) || depth < 1) ThrowRange(env, "ERR_OUT_OF_RANGE", "depth out of range");
  choice.depth = static_cast<uint32_t>(depth);
  Napi::Value batch = opts.Get("directSubmitBatch");
  if (!batch.IsUndefined()) {
    double n = batch.ToNumber().DoubleValue();
    if (!IsUint(n, 65536)) ThrowRange(env, "ERR_OUT_OF_RANGE", "directSubmitBatch out of range");
    choice.direct_submit_batch = static_cast<unsigned>(n);
  }
  Napi::Value threads = opts.Get("threads");
  if (!threads.IsUndefined()) {
    double n = threads.ToNumber().DoubleValue();
    if (!IsUint(n, 1024) || n < 1) ThrowRange(env, "ERR_OUT_OF_RANGE", "threads out of range");
    choice.threads = static_cast<unsigned>(n);
  }
  ReadNullOptions(env, opts.Get("nullEngine"), &choice.null_engine);
  bool trace = opts.Get("trace").ToBoolean().Value();
  std::string completions = opts.Get("completions").ToString().Utf8Value();
  if (completions != "uv-poll" && completions != "thread") {
    ThrowType(env, "ERR_INVALID_ARG_VALUE", "completions must be 'uv-poll' or 'thread'");
  }

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
    if (registered_fixed_) engine_->backend().UnregisterBuffers();
    engine_.reset();
  }
  registered_.clear();
}

void RingHandle::CheckOpen(Napi::Env env) {
  if (closed_ || close_pending_) ThrowState(env, "ERR_RING_CLOSED", "ring is closed");
}

// addDevice(fd, { direct, readOnly, growable, exclusive }) -> device info (with the engine's own fd)
Napi::Value RingHandle::AddDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  double fdv = info[0].ToNumber().DoubleValue();
  if (!IsUint(fdv, 0x7fffffff)) ThrowType(env, "ERR_INVALID_ARG_TYPE", "fd must be a non-negative integer");
  int fd = static_cast<int>(fdv);
  Napi::Object opts = info[1].As<Napi::Object>();
  Geometry g;
  int r = QueryDeviceGeometry(fd, &g);
  if (r < 0) ThrowErrno(env, r, "fstat", "cannot inspect device");
  DeviceConfig c;
  c.direct = opts.Get("direct").ToBoolean();
  c.read_only = opts.Get("readOnly").ToBoolean() || g.read_only;
  c.growable = opts.Get("growable").ToBoolean() && !g.is_block_device;
  c.is_block_device = g.is_block_device;
  c.size = g.size;
  uint32_t lbs = g.logical_block_size;
  if (c.direct) {
    // Alignment O_DIRECT needs: statx DIOALIGN (6.1+), else the block
    // device's logical block size, else probe with real reads.
    uint32_t off = g.dio_offset_align, mem = g.dio_mem_align;
    if (opts.Get("probeAlignment").ToBoolean()) off = mem = 0;  // tests: exercise the probe
    if (!off && g.is_block_device) off = mem = lbs;
    if (!off && ProbeDeviceDirectAlignment(fd, &off, &mem) < 0) off = mem = 4096;
    c.offset_align = off;
    c.mem_align = mem ? mem : off;
    if (!lbs) lbs = off;
  }
  if (opts.Get("exclusive").ToBoolean() && !g.is_block_device) {
    // Block devices get O_EXCL at open; files an OFD lock.
    r = LockDeviceExclusive(fd);
    if (r < 0) ThrowErrno(env, r == -EAGAIN ? -EBUSY : r, "fcntl", "device is in use by another exclusive opener");
  }
  if (g.is_block_device) c.block_size = lbs ? lbs : 512;
  // The engine owns a duplicate; the caller closes fd (its runtime's own).
  int own = DuplicateDeviceFd(fd);
  if (own < 0) ThrowErrno(env, own, "fcntl", "cannot duplicate the device fd");
  Device* dev = engine_->AddDevice(own, c);
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", dev->handle);
  out.Set("fd", own);
  out.Set("size", static_cast<double>(g.size));
  out.Set("isBlockDevice", g.is_block_device);
  out.Set("readOnly", c.read_only);
  out.Set("growable", c.growable);
  out.Set("logicalBlockSize", lbs ? lbs : 512);
  out.Set("physicalBlockSize", g.physical_block_size ? g.physical_block_size : (lbs ? lbs : 512));
  out.Set("offsetAlignment", c.offset_align);
  out.Set("memoryAlignment", c.mem_align);
  return out;
}

Napi::Value RingHandle::DeviceSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Device* dev = engine_ ? engine_->GetDevice(info[0].ToNumber().Uint32Value()) : nullptr;
  if (!dev) ThrowState(env, "ERR_DEVICE_CLOSED", "device is closed");
  if (info.Length() > 1) {
    double size = info[1].ToNumber().DoubleValue();
    if (!IsUint(size, kMaxSafe)) ThrowRange(env, "ERR_OUT_OF_RANGE", "size must be a safe non-negative integer");
    // A file's resize: ftruncate on the JS thread (the caller waited for
    // the device's requests; no block I/O is involved for a file).
    int r = TruncateDevice(dev->fd, static_cast<uint64_t>(size));
    if (r < 0) ThrowErrno(env, r, "ftruncate", "cannot resize device");
    engine_->SetDeviceSize(dev, static_cast<uint64_t>(size));
  }
  return Napi::Number::New(env, static_cast<double>(dev->size));
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
  return out;
}

Napi::Value RingHandle::Depth(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), depth_); }
Napi::Value RingHandle::Completions(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), watch_name_); }

// Checks one record; returns nullptr when it is valid, else fills *kind
// (0 TypeError, 1 RangeError, 2 state Error) and *code.
const char* RingHandle::CheckRecord(const double* rec, const std::vector<View>& views, bool raw, int* kind,
                                    const char** code, char* msg, size_t msg_len) const {
  auto fail = [&](int k, const char* c, const char* m) {
    *kind = k;
    *code = c;
    return m;
  };
  if (!IsUint(rec[kSqId], kMaxSafe)) return fail(0, "ERR_INVALID_ARG_VALUE", "request id must be a safe non-negative integer");
  double word = rec[kSqOpWord];
  if (!IsUint(word, 0xffffffff)) return fail(0, "ERR_INVALID_ARG_VALUE", "bad request record");
  uint32_t w = static_cast<uint32_t>(word);
  unsigned op = w & 0xff, tag = (w >> 8) & 0xff;
  if (op > static_cast<unsigned>(Op::kWriteZeroes)) return fail(0, "ERR_INVALID_ARG_VALUE", "unknown op");
  if (tag > static_cast<unsigned>(Tag::kHead)) return fail(0, "ERR_INVALID_ARG_VALUE", "unknown tag");
  if (!IsUint(rec[kSqDevice], 0xffffffff)) return fail(0, "ERR_INVALID_ARG_VALUE", "bad device handle");
  const Device* dev = engine_->GetDevice(static_cast<uint32_t>(rec[kSqDevice]));
  if (!dev) return fail(2, "ERR_DEVICE_CLOSED", "device is closed");
  if (!IsUint(rec[kSqOffset], kMaxSafe)) return fail(1, "ERR_OUT_OF_RANGE", "offset must be a safe non-negative integer");
  const DeviceConfig& c = dev->config;
  Op o = static_cast<Op>(op);
  if (o != Op::kRead && o != Op::kFlush && c.read_only) return fail(2, "ERR_READ_ONLY", "device is open read-only");
  if (o == Op::kFlush) return nullptr;
  uint64_t offset = static_cast<uint64_t>(rec[kSqOffset]);
  uint64_t length = 0;
  bool transfer = o == Op::kRead || o == Op::kWrite;
  if (!transfer) {
    if (!IsUint(rec[kSqLength], kMaxSafe)) return fail(1, "ERR_OUT_OF_RANGE", "length must be a safe non-negative integer");
    length = static_cast<uint64_t>(rec[kSqLength]);
    if (c.is_block_device && (offset % c.block_size || length % c.block_size)) {
      // The kernel refuses these with EINVAL; say why before submitting.
      snprintf(msg, msg_len, "%s on a block device: offset and length must be multiples of %u bytes",
               o == Op::kDiscard ? "discard" : "write-zeroes", c.block_size);
      return fail(1, "ERR_MISALIGNED", msg);
    }
  } else if (raw) {
    if (registered_.empty() || !IsUint(rec[kSqBuffer], registered_.size() - 1.0)) {
      return fail(1, "ERR_OUT_OF_RANGE", "registered buffer index out of range");
    }
    const View& b = registered_[static_cast<size_t>(rec[kSqBuffer])];
    if (!IsUint(rec[kSqBufOffset], static_cast<double>(b.length)) || !IsUint(rec[kSqLength], kMaxSafe) ||
        rec[kSqBufOffset] + rec[kSqLength] > static_cast<double>(b.length)) {
      return fail(1, "ERR_OUT_OF_RANGE", "request exceeds its registered buffer");
    }
    length = static_cast<uint64_t>(rec[kSqLength]);
    uintptr_t address = reinterpret_cast<uintptr_t>(b.data + static_cast<size_t>(rec[kSqBufOffset]));
    if (c.direct && address % c.mem_align) {
      snprintf(msg, msg_len,
               "O_DIRECT: buffer address 0x%llx (registered buffer %zu + %llu) is not a multiple of %u "
               "(dev.memoryAlignment); allocate buffers with allocAligned(size, dev)",
               static_cast<unsigned long long>(address), static_cast<size_t>(rec[kSqBuffer]),
               static_cast<unsigned long long>(rec[kSqBufOffset]), c.mem_align);
      return fail(1, "ERR_MISALIGNED", msg);
    }
  } else {
    double first = rec[kSqBuffer], n = rec[kSqBufCount];
    if (!IsUint(first, views.size()) || !IsUint(n, views.size()) || n < 1 || first + n > views.size()) {
      return fail(1, "ERR_OUT_OF_RANGE", "buffer index out of range");
    }
    for (size_t k = static_cast<size_t>(first); k < static_cast<size_t>(first + n); k++) {
      length += views[k].length;
      if (!c.direct) continue;
      uintptr_t address = reinterpret_cast<uintptr_t>(views[k].data);
      // One buffer: its length is the request's, checked below as "length".
      char which[32] = "buffer";
      if (n > 1) snprintf(which, sizeof(which), "buffers[%zu]", k - static_cast<size_t>(first));
      if (address % c.mem_align) {
        snprintf(msg, msg_len,
                 "O_DIRECT: %s address 0x%llx is not a multiple of %u (dev.memoryAlignment); "
                 "allocate buffers with allocAligned(size, dev)",
                 which, static_cast<unsigned long long>(address), c.mem_align);
        return fail(1, "ERR_MISALIGNED", msg);
      }
      if (n > 1 && views[k].length % c.offset_align) {
        snprintf(msg, msg_len,
                 "O_DIRECT: %s length %zu is not a multiple of %u (dev.offsetAlignment); "
                 "allocate buffers with allocAligned(size, dev) and a size that is a multiple of it",
                 which, views[k].length, c.offset_align);
        return fail(1, "ERR_MISALIGNED", msg);
      }
    }
  }
  if (c.direct && transfer && (offset % c.offset_align || length % c.offset_align)) {
    bool bad_offset = offset % c.offset_align;
    snprintf(msg, msg_len,
             "O_DIRECT: %s %llu is not a multiple of %u (dev.offsetAlignment)%s",
             bad_offset ? "offset" : "length",
             static_cast<unsigned long long>(bad_offset ? offset : length), c.offset_align,
             bad_offset ? "" : "; allocate buffers with allocAligned(size, dev) and a size that is a multiple of it");
    return fail(1, "ERR_MISALIGNED", msg);
  }
  if (o != Op::kRead && !c.growable && offset + length > dev->size) {
    snprintf(msg, msg_len, "%s beyond the end of the device (%llu + %llu > size %llu)%s",
             o == Op::kWrite ? "write" : "request", static_cast<unsigned long long>(offset),
             static_cast<unsigned long long>(length), static_cast<unsigned long long>(dev->size),
             c.is_block_device ? "" : "; open with growable: true to let writes extend it");
    return fail(1, "ERR_OUT_OF_RANGE", msg);
  }
  return nullptr;
}

// Validates count records and accepts the valid ones. With atomic, one bad
// record means none is accepted. Returns the refused records (none on the
// common path, which allocates nothing).
std::vector<RingHandle::Failure> RingHandle::SubmitRecords(const double* sq, uint32_t count,
                                                           const std::vector<View>& views, bool raw, bool atomic) {
  std::vector<Failure> failures;
  char msg[256];
  for (uint32_t i = 0; i < count; i++) {
    Failure f;
    const char* m = CheckRecord(sq + i * kSqStride, views, raw, &f.kind, &f.code, msg, sizeof(msg));
    if (!m) continue;
    f.index = i;
    f.message = m;
    failures.push_back(std::move(f));
  }
  if (!failures.empty() && atomic) return failures;
  size_t next_bad = 0;
  for (uint32_t i = 0; i < count; i++) {
    if (next_bad < failures.size() && failures[next_bad].index == i) {
      next_bad++;
      continue;
    }
    const double* rec = sq + i * kSqStride;
    uint32_t w = static_cast<uint32_t>(rec[kSqOpWord]);
    Request* r = engine_->NewRequest();
    r->user_data = static_cast<uint64_t>(rec[kSqId]);
    r->op = static_cast<Op>(w & 0xff);
    r->tag = static_cast<Tag>((w >> 8) & 0xff);
    r->flags = static_cast<uint16_t>((w >> 16) & (kFlagFua | kFlagFlushMetadata | kFlagUnmap));
    r->dev = engine_->GetDevice(static_cast<uint32_t>(rec[kSqDevice]));
    r->offset = r->op == Op::kFlush ? 0 : static_cast<uint64_t>(rec[kSqOffset]);
    if (raw) r->flags |= kFlagRaw;
    if (!r->IsTransfer()) {
      r->length = r->op == Op::kFlush ? 0 : static_cast<uint64_t>(rec[kSqLength]);
    } else if (raw) {
      size_t index = static_cast<size_t>(rec[kSqBuffer]);
      r->SetIovecs(1);
      r->iov[0].iov_base = registered_[index].data + static_cast<size_t>(rec[kSqBufOffset]);
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
        r->iov[k].iov_base = views[first + k].data;
        r->iov[k].iov_len = views[first + k].length;
        r->length += views[first + k].length;
      }
      // A buffer inside a registered pool goes as READ_FIXED/WRITE_FIXED.
      int fixed = n == 1 && registered_fixed_ ? FindRegistered(views[first].data, views[first].length) : -1;
      if (fixed >= 0) {
        r->flags |= kFlagFixedBuffer;
        r->buf_index = static_cast<uint16_t>(fixed);
        fixed_inflight_++;
      }
    }
    engine_->Accept(r);
    if (raw) raw_inflight_++;
  }
  engine_->Flush();
  UpdateRefs();
  return failures;
}

Napi::Array RingHandle::FailuresToJs(Napi::Env env, const std::vector<Failure>& failures) {
  Napi::Array out = Napi::Array::New(env, failures.size());
  for (uint32_t i = 0; i < failures.size(); i++) {
    const Failure& f = failures[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", f.index);
    o.Set("kind", f.kind);
    o.Set("code", f.code);
    o.Set("message", f.message);
    out.Set(i, o);
  }
  return out;
}

int RingHandle::FindRegistered(const char* data, size_t length) const {
  // registered_order_ is sorted by start address; registered buffers do not
  // overlap in any way that matters (the first containing one wins).
  size_t lo = 0, hi = registered_order_.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (registered_[registered_order_[mid]].data <= data) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (!lo) return -1;
  uint32_t index = registered_order_[lo - 1];
  const View& b = registered_[index];
  return data + length <= b.data + b.length ? static_cast<int>(index) : -1;
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
  for (uint32_t i = 0; i < views.size(); i++) {
    if (!ViewData(buffers.Get(i), &views[i].data, &views[i].length)) {
      ThrowType(env, "ERR_INVALID_ARG_TYPE", "buffer must be an ArrayBufferView");
    }
  }
  return FailuresToJs(env, SubmitRecords(sq.Data(), static_cast<uint32_t>(count), views, false, info[3].ToBoolean()));
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
    std::string m = "record " + std::to_string(f.index) + ": " + f.message;
    switch (f.kind) {
      case 0:
        ThrowType(env, f.code, m);
      case 1:
        ThrowRange(env, f.code, m);
      default:
        ThrowState(env, f.code, m);
    }
  }
  return Napi::Number::New(env, count);
}

// registerBuffers(views[], fixed) -> whether io_uring registered them as fixed buffers
Napi::Value RingHandle::RegisterBuffers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (raw_inflight_ || fixed_inflight_) {
    ThrowState(env, "ERR_BUFFERS_IN_USE", "requests using the registered buffers are in flight");
  }
  if (!info[0].IsArray()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "buffers must be an array");
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<View> table;
  std::vector<iovec> iov;
  for (uint32_t i = 0; i < arr.Length(); i++) {
    View b;
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
    // The kernel pins these pages until unregistered (counted against
    // RLIMIT_MEMLOCK for unprivileged users); failure just means no fixed I/O.
    registered_fixed_ = engine_->backend().RegisterBuffers(iov.data(), static_cast<unsigned>(iov.size())) == 0;
  }
  registered_ = std::move(table);
  registered_order_.resize(registered_.size());
  for (uint32_t i = 0; i < registered_order_.size(); i++) registered_order_[i] = i;
  std::sort(registered_order_.begin(), registered_order_.end(),
            [this](uint32_t a, uint32_t b) { return registered_[a].data < registered_[b].data; });
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
  if (!raw && (r->flags & kFlagFixedBuffer)) fixed_inflight_--;
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

void RingHandle::OnReadable() {
  if (!engine_) return;
  // Raw N-API here: during worker termination JS cannot run and the C++
  // wrappers would turn each failed call into a fatal error.
  napi_env env = Env();
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  in_callback_ = true;
  for (;;) {
    cq_count_ = raw_cq_count_ = 0;
    engine_->Process(this);
    if (!cq_count_ && !raw_cq_count_) break;
    bool full = cq_count_ >= cq_cap_ || raw_cq_count_ >= raw_cq_cap_;
    if (!Deliver()) break;
    if (close_pending_ || !full) break;
  }
  in_callback_ = false;
  napi_close_handle_scope(env, scope);
  if (close_pending_) {
    Teardown();
    return;
  }
  UpdateRefs();
}

bool RingHandle::Deliver() {
  napi_env env = Env();
  napi_value fn, recv, argv[2], result;
  if (napi_get_reference_value(env, on_complete_, &fn) != napi_ok || !fn) return false;
  if (napi_get_reference_value(env, self_, &recv) != napi_ok || !recv) return false;
  napi_create_uint32(env, cq_count_, &argv[0]);
  napi_create_uint32(env, raw_cq_count_, &argv[1]);
  // The C call, not Napi::Function::MakeCallback: while a worker is being
  // terminated the call fails with no exception object, and node-addon-api
  // would abort the process trying to wrap one in a Napi::Error.
  napi_status st = napi_make_callback(env, *async_, recv, fn, 2, argv, &result);
  if (st == napi_ok) return true;
  if (st != napi_pending_exception) return false;
  napi_value err;
  if (napi_get_and_clear_last_exception(env, &err) != napi_ok) return false;
  napi_valuetype type;
  if (napi_typeof(env, err, &type) != napi_ok || type == napi_undefined) return false;  // terminating
  // An exception from user code in a completion handler is an uncaught
  // exception, as for any other event-loop callback.
  napi_fatal_exception(env, err);
  return false;
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
