// Errors thrown to JS. Every error carries a stable `code`; errno errors
// also carry `errno` (negative, as in Node) and `syscall`, and lib/ turns them into
// BlockIoError.
#pragma once

#include <napi.h>

namespace blockring {

// The JS class of a coded misuse error.
enum class ErrorClass { kType, kRange, kState };


[[noreturn]] void ThrowType(Napi::Env env, const char* code, const std::string& msg);
[[noreturn]] void ThrowRange(Napi::Env env, const char* code, const std::string& msg);
[[noreturn]] void ThrowState(Napi::Env env, const char* code, const std::string& msg);
[[noreturn]] void ThrowCoded(Napi::Env env, ErrorClass cls, const char* code, const std::string& msg);
// The error ThrowErrno throws, for rejecting a promise instead.
Napi::Error ErrnoError(Napi::Env env, int neg_errno, const char* syscall, const std::string& msg);
[[noreturn]] void ThrowErrno(Napi::Env env, int neg_errno, const char* syscall, const std::string& msg);

}  // namespace blockring
