// Backend on io_uring: one SQE per attempt, completions signalled on the
// engine's eventfd through IORING_REGISTER_EVENTFD.
#pragma once

#include <memory>
#include <string>

#include "backend.h"

namespace blockring {

struct IoUringOptions {
  uint32_t depth = 256;
  // Most SQEs per io_uring_enter when the batch holds O_DIRECT requests
  // (0: no limit). The block layer plugs submissions of more than two.
  unsigned direct_submit_batch = 2;
};

// Creates the backend, or returns nullptr with *err = -errno and *why set
// (io_uring_setup refused, opcodes missing, ...).
std::unique_ptr<Backend> MakeIoUringBackend(const IoUringOptions& opts, int* err, std::string* why);

}  // namespace blockring
