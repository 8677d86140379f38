#include "errors.h"

#include <string.h>

namespace blockring {
namespace {

Napi::Error WithCode(Napi::Error err, const char* code) {
  err.Set("code", code);
  return err;
}

}  // namespace

void SetErrorClasses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction() || !info[1].IsFunction()) {
    ThrowType(env, "ERR_INVALID_ARG_TYPE", "setErrorClasses(BlockIoError, BlockringError) takes two classes");
  }
  ErrorClasses& c = ErrorClassesOf(env);
  c.block_io = Napi::Persistent(info[0].As<Napi::Function>());
  c.blockring = Napi::Persistent(info[1].As<Napi::Function>());
}

Napi::Error CodedError(Napi::Env env, ErrorClass cls, const char* code, const std::string& msg) {
  switch (cls) {
    case ErrorClass::kType:
      return WithCode(Napi::TypeError::New(env, msg), code);
    case ErrorClass::kRange:
      return WithCode(Napi::RangeError::New(env, msg), code);
    case ErrorClass::kState:
      break;
  }
  ErrorClasses& c = ErrorClassesOf(env);
  if (c.blockring.IsEmpty()) return WithCode(Napi::Error::New(env, msg), code);
  return Napi::Error(env, c.blockring.New({Napi::String::New(env, code), Napi::String::New(env, msg)}));
}

void ThrowType(Napi::Env env, const char* code, const std::string& msg) { throw CodedError(env, ErrorClass::kType, code, msg); }

void ThrowRange(Napi::Env env, const char* code, const std::string& msg) { throw CodedError(env, ErrorClass::kRange, code, msg); }

void ThrowState(Napi::Env env, const char* code, const std::string& msg) { throw CodedError(env, ErrorClass::kState, code, msg); }

void ThrowCoded(Napi::Env env, ErrorClass cls, const char* code, const std::string& msg) {
  throw CodedError(env, cls, code, msg);
}

Napi::Error ErrnoError(Napi::Env env, int neg_errno, const char* syscall, const std::string& msg) {
  std::string message = msg + ": " + strerror(-neg_errno);
  ErrorClasses& c = ErrorClassesOf(env);
  if (c.block_io.IsEmpty()) {
    Napi::Error err = Napi::Error::New(env, message);
    err.Set("errno", Napi::Number::New(env, neg_errno));  // negative, as Node's
    err.Set("syscall", syscall);
    return err;
  }
  Napi::Object d = Napi::Object::New(env);
  d.Set("errno", Napi::Number::New(env, neg_errno));
  d.Set("syscall", syscall);
  d.Set("message", message);
  return Napi::Error(env, c.block_io.New({d}));
}

void ThrowErrno(Napi::Env env, int neg_errno, const char* syscall, const std::string& msg) {
  throw ErrnoError(env, neg_errno, syscall, msg);
}

}  // namespace blockring
