// Minimal io_uring adapter on the kernel UAPI header: setup, SQE/CQE access,
// submit, eventfd and probe. Raw syscalls, no liburing. Functions return
// -errno on failure and never throw.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>

#include "uapi_compat.h"

namespace blockring {

struct UringQueue {
  int fd = -1;
  unsigned features = 0;
  unsigned setup_flags = 0;
  unsigned sq_entries = 0;
  unsigned cq_entries = 0;

  // Submission queue (shared with the kernel).
  unsigned* sq_head = nullptr;
  unsigned* sq_tail = nullptr;
  unsigned* sq_flags = nullptr;
  unsigned* sq_array = nullptr;
  unsigned sq_mask = 0;
  io_uring_sqe* sqes = nullptr;
  unsigned sqe_tail = 0;  // next SQE we hand out; published on submit

  // Completion queue (shared with the kernel).
  unsigned* cq_head = nullptr;
  unsigned* cq_tail = nullptr;
  unsigned* cq_overflow = nullptr;
  unsigned cq_mask = 0;
  io_uring_cqe* cqes = nullptr;

  void* sq_map = nullptr;
  size_t sq_map_size = 0;
  void* cq_map = nullptr;
  size_t cq_map_size = 0;
  void* sqe_map = nullptr;
  size_t sqe_map_size = 0;
};

// Creates a ring with `entries` SQEs and `cq_entries` CQEs (0: kernel default).
// Optional setup flags the kernel rejects are dropped and retried.
int UringSetup(unsigned entries, unsigned cq_entries, UringQueue* q);
void UringTeardown(UringQueue* q);

// A free SQE, zeroed, or nullptr when the submission queue is full.
io_uring_sqe* UringGetSqe(UringQueue* q);
// SQEs handed out but not yet consumed by the kernel.
unsigned UringSqPending(const UringQueue* q);

// Publishes staged SQEs and enters the kernel, which consumes at most
// max_submit of them (0: all). wait_nr > 0 blocks until that many
// completions are available. Returns SQEs consumed or -errno.
int UringEnter(UringQueue* q, unsigned wait_nr, unsigned max_submit = 0);

// Completions ready to read, without a syscall.
unsigned UringCqReady(const UringQueue* q);
io_uring_cqe* UringCqeAt(UringQueue* q, unsigned i);  // i-th unread CQE
void UringCqAdvance(UringQueue* q, unsigned n);
// True when the kernel holds completions that did not fit in the CQ ring.
bool UringCqOverflowPending(const UringQueue* q);

int UringRegisterEventfd(UringQueue* q, int efd);
int UringRegisterBuffers(UringQueue* q, const iovec* iov, unsigned n);
int UringUnregisterBuffers(UringQueue* q);
// Opcodes a probe reports on (every opcode blockring uses is below this).
constexpr unsigned kUringProbeOps = 64;
// Fills `supported` (indexed by opcode, size n) from IORING_REGISTER_PROBE.
int UringProbe(UringQueue* q, bool* supported, unsigned n);

}  // namespace blockring
