// Backend on io_uring: one SQE per attempt, completions signalled on the
// engine's eventfd through IORING_REGISTER_EVENTFD.
#pragma once

#include <memory>
#include <string>

#include "backend.h"

namespace blockring {

// Setup features a ring may use, each probed at run time (kernels without
// one get the ring without it). engineInfo and $BLOCKRING_IO_URING name them.
enum UringFeature : unsigned {
  kUringSingleIssuer = 1u << 0,  // IORING_SETUP_SINGLE_ISSUER (6.0)
  kUringDeferTaskrun = 1u << 1,  // IORING_SETUP_DEFER_TASKRUN + TASKRUN_FLAG (6.1)
  kUringNoSqArray = 1u << 2,     // IORING_SETUP_NO_SQARRAY (6.6)
  kUringRingFd = 1u << 3,        // IORING_REGISTER_RING_FDS (5.18)
  kUringNowaitRead = 1u << 4,    // a lone buffered read tries preadv2(RWF_NOWAIT) first (4.14)
  kUringAllFeatures = (1u << 5) - 1,
};
constexpr unsigned kUringFeatureCount = 5;
// Names in bit order: "single-issuer", "defer-taskrun", "no-sqarray", "ring-fd", "nowait-read".
extern const char* const kUringFeatureNames[kUringFeatureCount];

struct IoUringOptions {
  uint32_t depth = 256;
  // Features to ask for. single-issuer, defer-taskrun and ring-fd bind the
  // ring to the creating thread: only a ring used on one thread asks.
  unsigned features = kUringAllFeatures;
  // Most SQEs per io_uring_enter when the batch holds O_DIRECT requests
  // (0: no limit). The block layer plugs submissions of more than two.
  unsigned direct_submit_batch = 2;
};

// Creates the backend, or returns nullptr with *err = -errno and *why set
// (io_uring_setup refused, opcodes missing, ...).
std::unique_ptr<Backend> MakeIoUringBackend(const IoUringOptions& opts, int* err, std::string* why);

}  // namespace blockring
