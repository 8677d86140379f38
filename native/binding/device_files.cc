// RingHandle::OpenDevice and ResizeDevice: opening and inspecting a device
// (engine/device_open) and ftruncate on the libuv threadpool (a path lookup,
// an alignment probe or a truncation can block), then the device goes to
// the engine on the ring's thread. Device fds never pass through node:fs.
//
// One owner per fd: the engine (Device::fd, closed by Engine::CloseDevice
// once the device's last request completes). JS keeps only the device
// handle and asks deviceFd() when it needs the number (mmap, lseek, a
// server's dup); a second copy in JS could outlive the engine's close.
#include <string>

#include "../kernel/file.h"
#include "errors.h"
#include "write_log.h"
#include "ring_handle.h"
#include "values.h"

namespace blockring {

class OpenWorker final : public Napi::AsyncWorker {
 public:
  OpenWorker(Napi::Env env, RingHandle* ring, std::string path, const DeviceOpenOptions& o)
      : Napi::AsyncWorker(env, "blockring:open"),
        deferred_(Napi::Promise::Deferred::New(env)),
        ring_(ring),
        ring_ref_(Napi::Persistent(ring->Value())),
        path_(std::move(path)),
        options_(o) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override { err_ = blockring::OpenDevice(path_.c_str(), options_, &opened_); }

  // Runs on the ring's thread, also while a terminating worker's environment
  // is cleaned up (threadpool work completes before cleanup hooks run): the
  // fd is adopted or closed here, never left to JS.
  void OnOK() override {
    Napi::Env env = Env();
    try {
      if (err_ < 0) {
        deferred_.Reject(ErrnoError(env, err_, opened_.syscall, opened_.what).Value());
        return;
      }
      deferred_.Resolve(ring_->AdoptDevice(env, opened_));
    } catch (const Napi::Error& e) {
      RejectQuietly(e.Value());
    }
  }

 private:
  void RejectQuietly(Napi::Value v) {
    try {
      deferred_.Reject(v);
    } catch (const Napi::Error&) {
      // The environment can no longer run JS: nobody can observe the promise.
    }
  }

  Napi::Promise::Deferred deferred_;
  RingHandle* ring_;
  Napi::ObjectReference ring_ref_;  // the ring outlives the open
  std::string path_;
  DeviceOpenOptions options_;
  DeviceOpened opened_;
  int err_ = 0;
};

class ResizeWorker final : public Napi::AsyncWorker {
 public:
  ResizeWorker(Napi::Env env, RingHandle* ring, uint32_t handle, int fd, uint64_t size)
      : Napi::AsyncWorker(env, "blockring:ftruncate"),
        deferred_(Napi::Promise::Deferred::New(env)),
        ring_(ring),
        ring_ref_(Napi::Persistent(ring->Value())),
        handle_(handle),
        fd_(fd),
        size_(size) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

  // lib/ keeps the device open (close waits for resizes) until this is done.
  void Execute() override { err_ = TruncateFile(fd_, size_); }

  void OnOK() override {
    Napi::Env env = Env();
    try {
      if (err_ < 0) {
        deferred_.Reject(ErrnoError(env, err_, "ftruncate", "cannot resize device").Value());
        return;
      }
      Device* dev = ring_->engine_ ? ring_->engine_->GetDevice(handle_) : nullptr;
      if (dev) ring_->engine_->DeviceResized(dev, size_);
      deferred_.Resolve(env.Undefined());
    } catch (const Napi::Error&) {
      // Terminating environment: nobody can observe the promise.
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  RingHandle* ring_;
  Napi::ObjectReference ring_ref_;
  uint32_t handle_;
  int fd_;
  uint64_t size_;
  int err_ = 0;
};

// openDevice(path, { readOnly, create, direct, exclusive, growable, size?, probeAlignment })
Napi::Value RingHandle::OpenDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  if (!info[0].IsString()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "path must be a string");
  if (!info[1].IsObject()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "options must be an object");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.empty() || path.find('\0') != std::string::npos) {
    ThrowType(env, "ERR_INVALID_ARG_VALUE", "path must be a non-empty string without null bytes");
  }
  Napi::Object o = info[1].As<Napi::Object>();
  DeviceOpenOptions opts;
  opts.read_only = o.Get("readOnly").ToBoolean();
  opts.create = o.Get("create").ToBoolean();
  opts.direct = o.Get("direct").ToBoolean();
  opts.exclusive = o.Get("exclusive").ToBoolean();
  opts.growable = o.Get("growable").ToBoolean();
  opts.probe_alignment = o.Get("probeAlignment").ToBoolean();
  Napi::Value size = o.Get("size");
  if (!size.IsUndefined()) {
    double n = size.ToNumber().DoubleValue();
    if (!IsUint(n, kMaxSafeInteger)) ThrowRange(env, "ERR_OUT_OF_RANGE", "size must be a safe non-negative integer");
    opts.has_size = true;
    opts.size = static_cast<uint64_t>(n);
  }
  auto* worker = new OpenWorker(env, this, std::move(path), opts);
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value RingHandle::DeviceFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Device* dev = engine_ ? engine_->GetDevice(info[0].ToNumber().Uint32Value()) : nullptr;
  if (!dev || dev->fd < 0) ThrowState(env, "ERR_DEVICE_CLOSED", "device is closed");
  return Napi::Number::New(env, dev->fd);
}

// attachLog(handle, log): the engine records what this device sends to the
// kernel into log (a WriteLogHandle) from now on.
Napi::Value RingHandle::AttachLog(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Device* dev = engine_ ? engine_->GetDevice(info[0].ToNumber().Uint32Value()) : nullptr;
  if (!dev || dev->fd < 0) ThrowState(env, "ERR_DEVICE_CLOSED", "device is closed");
  if (!info[1].IsObject()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "expected a WriteLog handle");
  dev->log = WriteLogHandle::Unwrap(info[1].As<Napi::Object>())->log();
  return env.Undefined();
}

// resizeDevice(handle, size) -> Promise: ftruncate, then the engine's size.
Napi::Value RingHandle::ResizeDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  double handle = info[0].ToNumber().DoubleValue();
  double size = info[1].ToNumber().DoubleValue();
  Device* dev = IsUint(handle, 0xffffffff) ? engine_->GetDevice(static_cast<uint32_t>(handle)) : nullptr;
  if (!dev) ThrowState(env, "ERR_DEVICE_CLOSED", "device is closed");
  if (!IsUint(size, kMaxSafeInteger)) ThrowRange(env, "ERR_OUT_OF_RANGE", "size must be a safe non-negative integer");
  auto* worker = new ResizeWorker(env, this, dev->handle, dev->fd, static_cast<uint64_t>(size));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace blockring
