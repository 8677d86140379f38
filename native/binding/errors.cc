#include "errors.h"

#include <string.h>

namespace blockring {
namespace {

[[noreturn]] void ThrowWithCode(Napi::Error err, const char* code) {
  err.Set("code", code);
  throw err;
}

}  // namespace

void ThrowType(Napi::Env env, const char* code, const std::string& msg) {
  ThrowWithCode(Napi::TypeError::New(env, msg), code);
}

void ThrowRange(Napi::Env env, const char* code, const std::string& msg) {
  ThrowWithCode(Napi::RangeError::New(env, msg), code);
}

void ThrowState(Napi::Env env, const char* code, const std::string& msg) {
  ThrowWithCode(Napi::Error::New(env, msg), code);
}

void ThrowCoded(Napi::Env env, ErrorClass cls, const char* code, const std::string& msg) {
  switch (cls) {
    case ErrorClass::kType:
      ThrowType(env, code, msg);
    case ErrorClass::kRange:
      ThrowRange(env, code, msg);
    case ErrorClass::kState:
      break;
  }
  ThrowState(env, code, msg);
}

Napi::Error ErrnoError(Napi::Env env, int neg_errno, const char* syscall, const std::string& msg) {
  Napi::Error err = Napi::Error::New(env, msg + ": " + strerror(-neg_errno));
  err.Set("errno", Napi::Number::New(env, neg_errno));  // negative, as Node's
  err.Set("syscall", syscall);
  return err;
}

void ThrowErrno(Napi::Env env, int neg_errno, const char* syscall, const std::string& msg) {
  throw ErrnoError(env, neg_errno, syscall, msg);
}

}  // namespace blockring
