// Errors thrown to JS, built here as the user-facing classes: misuse is a
// TypeError / RangeError with a Node-style `code` or a BlockringError; errno
// failures are BlockIoErrors (`errno` negative, as in Node, and `syscall`).
// lib/native.ts hands both classes to the addon once, at load.
#pragma once

#include <napi.h>

namespace blockring {

// The JS class of a coded misuse error.
enum class ErrorClass { kType, kRange, kState };

// The classes lib/errors.ts defines, per addon instance (addon.cc keeps them).
struct ErrorClasses {
  Napi::FunctionReference block_io;   // new BlockIoError({ errno, syscall, message })
  Napi::FunctionReference blockring;  // new BlockringError(code, message)
};
ErrorClasses& ErrorClassesOf(Napi::Env env);
// setErrorClasses(BlockIoError, BlockringError)
void SetErrorClasses(const Napi::CallbackInfo& info);


[[noreturn]] void ThrowType(Napi::Env env, const char* code, const std::string& msg);
[[noreturn]] void ThrowRange(Napi::Env env, const char* code, const std::string& msg);
[[noreturn]] void ThrowState(Napi::Env env, const char* code, const std::string& msg);
[[noreturn]] void ThrowCoded(Napi::Env env, ErrorClass cls, const char* code, const std::string& msg);
// The error ThrowCoded throws, for returning instead.
Napi::Error CodedError(Napi::Env env, ErrorClass cls, const char* code, const std::string& msg);
// The error ThrowErrno throws, for rejecting a promise instead.
Napi::Error ErrnoError(Napi::Env env, int neg_errno, const char* syscall, const std::string& msg);
[[noreturn]] void ThrowErrno(Napi::Env env, int neg_errno, const char* syscall, const std::string& msg);

}  // namespace blockring
