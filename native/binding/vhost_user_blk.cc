#include "vhost_user_blk.h"

#include <cmath>

#include "errors.h"
#include "image_source.h"
#include "values.h"

namespace blockring {

Napi::Function VhostUserBlkHandle::Define(Napi::Env env) {
  return DefineClass(env, "VhostUserBlkHandle",
                     {
                         InstanceMethod<&VhostUserBlkHandle::Close>("close"),
                         InstanceMethod<&VhostUserBlkHandle::Stats>("stats"),
                         InstanceMethod<&VhostUserBlkHandle::CopyOut>("copyOut"),
                         InstanceMethod<&VhostUserBlkHandle::CopyIn>("copyIn"),
                         InstanceMethod<&VhostUserBlkHandle::Complete>("complete"),
                         InstanceAccessor<&VhostUserBlkHandle::EngineName>("engine"),
                     });
}

namespace {

struct Posted {
  double id, op, offset, length, flags;
  bool parked;
};

}  // namespace

// new VhostUserBlkHandle(fd, { socket, engine, depth, numQueues, readOnly,
// size, direct, blockSize, offsetAlign, memAlign, isBlockDevice, serial,
// onRequest?, image? }), every field checked by lib/server/vhost-user-blk.ts.
// With onRequest (fd -1) requests go to JS: onRequest(id, op, offset,
// length, flags, parked). With image too (an id from ring.exportImage) reads
// and writes run in place on the server's engine and only parked requests
// (parked true, no data) go to JS, answered by complete(id, result, retry).
VhostUserBlkHandle::VhostUserBlkHandle(const Napi::CallbackInfo& info) : TaggedWrap<VhostUserBlkHandle>(info) {
  Napi::Env env = info.Env();
  double fd = info[0].ToNumber().DoubleValue();
  if ((fd != -1 && !IsUint(fd, 0x7fffffff)) || !info[1].IsObject()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "bad arguments");
  Napi::Object o = info[1].As<Napi::Object>();
  vhost::ServerOptions s;
  s.socket_path = o.Get("socket").ToString().Utf8Value();
  s.engine.requested = o.Get("engine").ToString().Utf8Value();
  s.engine.depth = o.Get("depth").ToNumber().Uint32Value();
  s.device.direct = o.Get("direct").ToBoolean();
  s.device.read_only = o.Get("readOnly").ToBoolean();
  s.device.is_block_device = o.Get("isBlockDevice").ToBoolean();
  s.device.size = static_cast<uint64_t>(o.Get("size").ToNumber().DoubleValue());
  s.device.offset_align = o.Get("offsetAlign").ToNumber().Uint32Value();
  s.device.mem_align = o.Get("memAlign").ToNumber().Uint32Value();
  s.device.block_size = o.Get("blockSize").ToNumber().Uint32Value();
  s.blk.size = s.device.size;
  s.blk.read_only = s.device.read_only;
  s.blk.block_size = s.device.block_size;
  s.blk.num_queues = static_cast<uint16_t>(o.Get("numQueues").ToNumber().Uint32Value());
  s.blk.serial = o.Get("serial").ToString().Utf8Value();
  Napi::Value image = o.Get("image");
  ImageSource source;
  if (image.IsNumber() && !TakeImageSource(static_cast<uint64_t>(image.ToNumber().DoubleValue()), &source)) {
    ThrowType(env, "ERR_INVALID_ARG_VALUE", "unknown image export");
  }
  if (source.map) {
    s.map = source.map;
    s.device = source.image;
    s.device.read_only = s.device.read_only || s.blk.read_only;
    s.file_fd = source.file_fd;
    s.file_device = source.file;
    s.backing_fd = source.backing_fd;
    s.backing_device = source.backing;
  }
  std::unique_ptr<vhost::Delegate> delegate;
  Napi::Value on_request = o.Get("onRequest");
  if (on_request.IsFunction()) {
    tsfn_ = Napi::ThreadSafeFunction::New(env, on_request.As<Napi::Function>(), "blockring:vhost-user-blk", 0, 1);
    tsfn_.Unref(env);  // like a ring: an idle server does not hold the loop open
    has_tsfn_ = true;
    Napi::ThreadSafeFunction tsfn = tsfn_;
    delegate = std::make_unique<vhost::Delegate>([tsfn](const vhost::DelegatedRequest& r) mutable {
      auto* p = new Posted{static_cast<double>(r.id), static_cast<double>(r.op), static_cast<double>(r.offset),
                           static_cast<double>(r.length), static_cast<double>(r.flags), r.parked};
      napi_status st = tsfn.NonBlockingCall(p, [](Napi::Env env, Napi::Function fn, Posted* p) {
        if (env != nullptr && fn != nullptr) {
          fn.Call({Napi::Number::New(env, p->id), Napi::Number::New(env, p->op), Napi::Number::New(env, p->offset),
                   Napi::Number::New(env, p->length), Napi::Number::New(env, p->flags),
                   Napi::Boolean::New(env, p->parked)});
        }
        delete p;
      });
      if (st != napi_ok) delete p;  // closing: the request is cancelled with the server
    });
  }
  server_ = std::make_unique<vhost::Server>();
  const char* syscall = "";
  std::string detail;
  int r = server_->Start(static_cast<int>(fd), std::move(delegate), s, &syscall, &detail);
  if (r < 0) {
    Shutdown();
    ThrowErrno(env, r, syscall, detail.empty() ? "cannot start vhost-user-blk server" : detail);
  }
}

// Stops serving: waits for in-flight guest requests (milliseconds), joins
// the service thread, removes the socket file.
Napi::Value VhostUserBlkHandle::Close(const Napi::CallbackInfo& info) {
  Shutdown();
  return info.Env().Undefined();
}

VhostUserBlkHandle::~VhostUserBlkHandle() { Shutdown(); }

void VhostUserBlkHandle::Shutdown() {
  server_.reset();
  if (has_tsfn_) {
    has_tsfn_ = false;
    tsfn_.Release();
  }
}

namespace {

bool IdAndView(const Napi::CallbackInfo& info, uint64_t* id, char** data, size_t* len) {
  double d = info[0].ToNumber().DoubleValue();
  if (!IsUint(d, kMaxSafeInteger) || !ViewData(info[1], data, len)) {
    ThrowType(info.Env(), "ERR_INVALID_ARG_TYPE", "copy(id, buffer)");
  }
  *id = static_cast<uint64_t>(d);
  return true;
}

}  // namespace

// copyOut(id, buffer) -> bool: the guest's data of write request id into buffer.
Napi::Value VhostUserBlkHandle::CopyOut(const Napi::CallbackInfo& info) {
  uint64_t id;
  char* data;
  size_t len;
  IdAndView(info, &id, &data, &len);
  bool ok = server_ && server_->delegate() && server_->delegate()->CopyOut(id, data, len);
  return Napi::Boolean::New(info.Env(), ok);
}

// copyIn(id, buffer) -> bool: buffer into the guest's buffers of read request id.
Napi::Value VhostUserBlkHandle::CopyIn(const Napi::CallbackInfo& info) {
  uint64_t id;
  char* data;
  size_t len;
  IdAndView(info, &id, &data, &len);
  bool ok = server_ && server_->delegate() && server_->delegate()->CopyIn(id, data, len);
  return Napi::Boolean::New(info.Env(), ok);
}

// complete(id, result, retry?): bytes or -errno; retry (parked requests):
// split it again by the map, which knows more now.
Napi::Value VhostUserBlkHandle::Complete(const Napi::CallbackInfo& info) {
  double id = info[0].ToNumber().DoubleValue();
  double result = info[1].ToNumber().DoubleValue();
  if (!IsUint(id, kMaxSafeInteger) || !std::isfinite(result)) ThrowType(info.Env(), "ERR_INVALID_ARG_TYPE", "complete(id, result)");
  if (server_ && server_->delegate()) server_->delegate()->Complete(static_cast<uint64_t>(id), static_cast<int64_t>(result), info[2].ToBoolean());
  return info.Env().Undefined();
}

// { connected, connections, served, copied }
Napi::Value VhostUserBlkHandle::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("connected", server_ ? server_->connected() : false);
  out.Set("connections", server_ ? server_->connections() : 0);
  out.Set("served", static_cast<double>(server_ ? server_->served() : 0));
  out.Set("copied", static_cast<double>(server_ ? server_->copied() : 0));
  return out;
}

Napi::Value VhostUserBlkHandle::EngineName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), server_ ? server_->engine_name() : "closed");
}

}  // namespace blockring
