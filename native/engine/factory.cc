#include "factory.h"

#include <errno.h>

#include "io_uring_backend.h"
#include "null_backend.h"

namespace blockring {

BackendResult MakeBackend(const EngineChoice& choice) {
  BackendResult out;
  const std::string& name = choice.requested;
  if (name == "io_uring" || name == "auto") {
    IoUringOptions opts;
    opts.depth = choice.depth;
    std::string why;
    out.backend = MakeIoUringBackend(opts, &out.err, &why);
    if (!out.backend) out.fallback = why;
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
