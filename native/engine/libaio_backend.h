// Backend on Linux native AIO (io_submit): completions ring the engine's
// eventfd through IOCB_FLAG_RESFD and are read from the user-mapped aio
// ring. aio is only asynchronous for O_DIRECT files; buffered reads and
// writes run synchronously inside io_submit.
#pragma once

#include <memory>
#include <string>

#include "backend.h"

namespace blockring {

struct LibaioOptions {
  uint32_t depth = 256;
  // Send buffered (non-O_DIRECT) reads and writes to the helper threads
  // instead of io_submit, where they would block the ring's thread. Used
  // when `auto` falls back to libaio.
  bool buffered_to_threads = false;
  unsigned threads = 4;
  // Most iocbs per io_submit when O_DIRECT requests are staged (0: no
  // limit): io_submit plugs larger batches, as io_uring_enter does.
  unsigned direct_submit_batch = 2;
};

// Creates the backend, or returns nullptr with *err = -errno and *why set
// (io_setup refused, fs.aio-max-nr exhausted, ...).
std::unique_ptr<Backend> MakeLibaioBackend(const LibaioOptions& opts, int* err, std::string* why);

}  // namespace blockring
