#include "vhost_user_blk.h"

#include "errors.h"
#include "values.h"

namespace blockring {

Napi::Function VhostUserBlkHandle::Define(Napi::Env env) {
  return DefineClass(env, "VhostUserBlkHandle",
                     {
                         InstanceMethod<&VhostUserBlkHandle::Close>("close"),
                         InstanceMethod<&VhostUserBlkHandle::Stats>("stats"),
                         InstanceAccessor<&VhostUserBlkHandle::EngineName>("engine"),
                     });
}

// new VhostUserBlkHandle(fd, { socket, engine, depth, numQueues, readOnly,
// size, direct, blockSize, offsetAlign, memAlign, isBlockDevice, serial }),
// every field checked by lib/server/vhost-user-blk.ts.
VhostUserBlkHandle::VhostUserBlkHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VhostUserBlkHandle>(info) {
  Napi::Env env = info.Env();
  double fd = info[0].ToNumber().DoubleValue();
  if (!IsUint(fd, 0x7fffffff) || !info[1].IsObject()) ThrowType(env, "ERR_INVALID_ARG_TYPE", "bad arguments");
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
  server_ = std::make_unique<vhost::Server>();
  const char* syscall = "";
  std::string detail;
  int r = server_->Start(static_cast<int>(fd), s, &syscall, &detail);
  if (r < 0) {
    server_.reset();
    ThrowErrno(env, r, syscall, detail.empty() ? "cannot start vhost-user-blk server" : detail);
  }
}

// Stops serving: waits for in-flight guest requests (milliseconds), joins
// the service thread, removes the socket file.
Napi::Value VhostUserBlkHandle::Close(const Napi::CallbackInfo& info) {
  server_.reset();
  return info.Env().Undefined();
}

// { connected, connections, served }
Napi::Value VhostUserBlkHandle::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("connected", server_ ? server_->connected() : false);
  out.Set("connections", server_ ? server_->connections() : 0);
  out.Set("served", static_cast<double>(server_ ? server_->served() : 0));
  return out;
}

Napi::Value VhostUserBlkHandle::EngineName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), server_ ? server_->engine_name() : "closed");
}

}  // namespace blockring
