#include "completions.h"

#include "errors.h"
#include "records.h"
#include "values.h"

namespace blockring {

CompletionArrays::CompletionArrays(Napi::Env env, Napi::Object opts, RegisteredBuffers* registered)
    : registered_(registered) {
  cq_ = Float64Data(env, opts, "cq", &cap_, kCqStride);
  raw_cq_ = Float64Data(env, opts, "rawCq", &raw_cap_, kRawCqStride);
  if (!cap_ || !raw_cap_) ThrowRange(env, "ERR_OUT_OF_RANGE", "completion arrays are empty");
}

bool CompletionArrays::OnComplete(Request* r) {
  registered_->Release(*r);
  double* rec;
  if (r->flags & kFlagRaw) {
    rec = raw_cq_ + (raw_count_++) * kRawCqStride;
  } else {
    rec = cq_ + (count_++) * kCqStride;
    rec[kCqSyscall] = static_cast<double>(r->syscall);
  }
  rec[kCqId] = static_cast<double>(r->user_data);
  rec[kCqResult] = static_cast<double>(r->result);
  rec[kCqIssued] = static_cast<double>(r->issue_seq);
  rec[kCqCompleted] = static_cast<double>(r->complete_seq);
  return !full();
}

void CompletionArrays::Park(uint32_t token, const Request& r) {
  double* rec = cq_ + (count_++) * kCqStride;
  rec[kCqId] = -static_cast<double>(token);
  rec[kCqResult] = static_cast<double>(r.dev->handle);
  rec[kCqIssued] = static_cast<double>(r.offset);
  rec[kCqCompleted] = static_cast<double>(r.length) * 64 + (r.flags & 7) * 8 + static_cast<double>(r.op);
}

bool CompletionArrays::Deliver(napi_env env, napi_ref fn_ref, napi_ref recv_ref, napi_async_context context) const {
  // Raw N-API here: during worker termination JS cannot run and the C++
  // wrappers would turn each failed call into a fatal error.
  napi_value fn, recv, argv[2], result;
  if (napi_get_reference_value(env, fn_ref, &fn) != napi_ok || !fn) return false;
  if (napi_get_reference_value(env, recv_ref, &recv) != napi_ok || !recv) return false;
  napi_create_uint32(env, count_, &argv[0]);
  napi_create_uint32(env, raw_count_, &argv[1]);
  // The C call, not Napi::Function::MakeCallback: while a worker is being
  // terminated the call fails with no exception object, and node-addon-api
  // would abort the process trying to wrap one in a Napi::Error.
  napi_status st = napi_make_callback(env, context, recv, fn, 2, argv, &result);
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

}  // namespace blockring
