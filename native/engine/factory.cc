#include "factory.h"

#include <errno.h>
#include <string.h>

#include "io_uring_backend.h"
#include "libaio_backend.h"
#include "threads_backend.h"
#include "mmap_backend.h"
#include "null_backend.h"

namespace blockring {
namespace {

std::string Reason(const char* engine, const std::string& why, int err) {
  return std::string(engine) + ": " + why + " (" + strerror(-err) + ")";
}

}  // namespace

// `auto` tries, in order:
//   1. io_uring, when a ring can be set up and has every opcode we use;
//   2. libaio, with buffered (non-O_DIRECT) reads and writes sent to its
//      helper threads, since io_submit would run those synchronously;
//   3. threads, which works on any kernel.
// fallback records why each earlier engine was passed over.
BackendResult MakeBackend(const EngineChoice& choice) {
  BackendResult out;
  const std::string& name = choice.requested;
  bool is_auto = name == "auto";
  if (name == "io_uring" || is_auto) {
    IoUringOptions opts;
    opts.depth = choice.depth;
    opts.direct_submit_batch = choice.direct_submit_batch;
    opts.features = choice.uring_features & kUringAllFeatures;
    std::string why;
    out.backend = MakeIoUringBackend(opts, &out.err, &why);
    if (out.backend || !is_auto) {
      if (!out.backend) out.fallback = why;
      return out;
    }
    out.fallback = Reason("io_uring", why, out.err);
  }
  if (name == "libaio" || is_auto) {
    LibaioOptions opts;
    opts.depth = choice.depth;
    opts.threads = choice.threads;
    opts.buffered_to_threads = is_auto;
    opts.direct_submit_batch = choice.direct_submit_batch;
    std::string why;
    int err = 0;
    out.backend = MakeLibaioBackend(opts, &err, &why);
    if (out.backend || !is_auto) {
      if (!out.backend) {
        out.err = err;
        out.syscall = "io_setup";
        out.fallback = why;
      }
      return out;
    }
    out.fallback += "; " + Reason("libaio", why, err);
  }
  if (name == "threads" || is_auto) {
    ThreadsOptions opts;
    opts.depth = choice.depth;
    opts.threads = choice.threads;
    out.backend = MakeThreadsBackend(opts);
    out.err = 0;
    return out;
  }
  if (name == "mmap") {
    out.backend = MakeMmapBackend(choice.depth);
    return out;
  }
  if (name == "null") {
    out.backend = MakeNullBackend(choice.depth, choice.null_engine);
    return out;
  }
  out.err = -EINVAL;
  out.fallback = "unknown engine '" + name + "'";
  return out;
}

}  // namespace blockring
