#include "write_log.h"

#include "errors.h"
#include "values.h"

namespace blockring {

Napi::Function WriteLogHandle::Define(Napi::Env env) {
  return DefineClass(env, "WriteLog",
                     {
                         InstanceMethod<&WriteLogHandle::Now>("now"),
                         InstanceMethod<&WriteLogHandle::Record>("record"),
                         InstanceMethod<&WriteLogHandle::Complete>("complete"),
                         InstanceMethod<&WriteLogHandle::Sync>("sync"),
                     });
}

WriteLogHandle::WriteLogHandle(const Napi::CallbackInfo& info) : TaggedWrap<WriteLogHandle>(info) {}

Napi::Value WriteLogHandle::Now(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(log_->Now()));
}

// record(kind, offset, data | length): an entry issued now, for devices
// outside the engine (lib/write-log.ts wrap()); returns its index.
Napi::Value WriteLogHandle::Record(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t kind = info[0].ToNumber().Uint32Value();
  double offset = info[1].ToNumber().DoubleValue();
  if (kind > static_cast<uint32_t>(LogKind::kZeroes) || !IsUint(offset, kMaxSafeInteger)) {
    ThrowRange(env, "ERR_OUT_OF_RANGE", "write log entry out of range");
  }
  size_t index;
  if (info[2].IsTypedArray()) {
    Napi::TypedArray t = info[2].As<Napi::TypedArray>();
    Napi::ArrayBuffer ab = t.ArrayBuffer();
    iovec iov = {static_cast<uint8_t*>(ab.Data()) + t.ByteOffset(), t.ByteLength()};
    index = log_->Issue(static_cast<LogKind>(kind), static_cast<uint64_t>(offset), iov.iov_len, &iov, 1);
  } else {
    double length = info[2].ToNumber().DoubleValue();
    if (!IsUint(length, kMaxSafeInteger)) ThrowRange(env, "ERR_OUT_OF_RANGE", "write log length out of range");
    index = log_->Issue(static_cast<LogKind>(kind), static_cast<uint64_t>(offset), static_cast<uint64_t>(length), nullptr, 0);
  }
  return Napi::Number::New(env, static_cast<double>(index));
}

// complete(index): the entry's request finished successfully.
Napi::Value WriteLogHandle::Complete(const Napi::CallbackInfo& info) {
  double index = info[0].ToNumber().DoubleValue();
  if (!IsUint(index, static_cast<double>(log_->entries().size()) - 1)) {
    ThrowRange(info.Env(), "ERR_OUT_OF_RANGE", "no such write log entry");
  }
  log_->Complete(static_cast<size_t>(index));
  return info.Env().Undefined();
}

// sync(known) -> [added, completed]: the entries from index known on, each
// [kind, offset, length, data (a Buffer copy, writes) | null, issued], and
// every entry's completed stamp (0 = in flight or failed).
Napi::Value WriteLogHandle::Sync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<LogEntry>& all = log_->entries();
  double known = info[0].ToNumber().DoubleValue();
  if (!IsUint(known, static_cast<double>(all.size()))) ThrowRange(env, "ERR_OUT_OF_RANGE", "known is past the log");
  Napi::Array added = Napi::Array::New(env);
  for (size_t i = static_cast<size_t>(known); i < all.size(); i++) {
    const LogEntry& e = all[i];
    Napi::Array row = Napi::Array::New(env, 5);
    row.Set(0u, static_cast<uint32_t>(e.kind));
    row.Set(1u, static_cast<double>(e.offset));
    row.Set(2u, static_cast<double>(e.length));
    if (e.kind == LogKind::kWrite) {
      row.Set(3u, Napi::Buffer<uint8_t>::Copy(env, e.data.data(), e.data.size()));
    } else {
      row.Set(3u, env.Null());
    }
    row.Set(4u, static_cast<double>(e.issued));
    added.Set(added.Length(), row);
  }
  Napi::Float64Array completed = Napi::Float64Array::New(env, all.size());
  for (size_t i = 0; i < all.size(); i++) completed[i] = static_cast<double>(all[i].completed);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, added);
  out.Set(1u, completed);
  return out;
}

}  // namespace blockring
