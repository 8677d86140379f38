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
  // What io_uring_enter takes: fd, or the registered index (RING_FDS) with
  // IORING_ENTER_REGISTERED_RING in enter_flags.
  int enter_fd = -1;
  unsigned enter_flags = 0;
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
  unsigned* cq_flags = nullptr;  // 5.8+; nullptr before
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
// `optional` setup flags (IORING_SETUP_*) are asked for; kernels older than a
// flag reject it with EINVAL, so the newest is dropped and setup retried
// until it succeeds. q->setup_flags says what was kept.
int UringSetup(unsigned entries, unsigned cq_entries, unsigned optional, UringQueue* q);
// Unregisters the ring fd (if registered) and unmaps and closes the ring.
// With a registered ring fd, runs on the thread that registered it.
void UringTeardown(UringQueue* q);
// IORING_REGISTER_RING_FDS (5.18): later enters skip the fd table lookup.
// The index belongs to the calling thread: only that thread may enter.
int UringRegisterRingFd(UringQueue* q);

// A free SQE, zeroed, or nullptr when the submission queue is full.
io_uring_sqe* UringGetSqe(UringQueue* q);
// SQE encoders, like liburing's io_uring_prep_*: each fills, on an SQE
// UringGetSqe zeroed, the fields its opcode reads.
inline void UringPrepRw(io_uring_sqe* sqe, uint8_t opcode, int fd, const void* addr, uint32_t len, uint64_t offset,
                        int rw_flags, uint64_t user_data) {
  sqe->opcode = opcode;
  sqe->fd = fd;
  sqe->addr = reinterpret_cast<uintptr_t>(addr);
  sqe->len = len;
  sqe->off = offset;
  sqe->rw_flags = rw_flags;
  sqe->user_data = user_data;
}
// READ_FIXED/WRITE_FIXED: addr lies inside registered buffer buf_index.
inline void UringPrepRwFixed(io_uring_sqe* sqe, bool write, int fd, const void* addr, uint32_t len, uint64_t offset,
                             int rw_flags, uint16_t buf_index, uint64_t user_data) {
  UringPrepRw(sqe, write ? IORING_OP_WRITE_FIXED : IORING_OP_READ_FIXED, fd, addr, len, offset, rw_flags, user_data);
  sqe->buf_index = buf_index;
}
inline void UringPrepFsync(io_uring_sqe* sqe, int fd, bool datasync, uint64_t user_data) {
  sqe->opcode = IORING_OP_FSYNC;
  sqe->fd = fd;
  sqe->fsync_flags = datasync ? IORING_FSYNC_DATASYNC : 0;
  sqe->user_data = user_data;
}
inline void UringPrepFallocate(io_uring_sqe* sqe, int fd, int mode, uint64_t offset, uint64_t length,
                               uint64_t user_data) {
  sqe->opcode = IORING_OP_FALLOCATE;
  sqe->fd = fd;
  sqe->off = offset;
  sqe->addr = length;  // fallocate takes the length in addr
  sqe->len = static_cast<uint32_t>(mode);
  sqe->user_data = user_data;
}
// Asynchronous BLKDISCARD on a block device (6.12+).
inline void UringPrepDiscard(io_uring_sqe* sqe, int fd, uint64_t offset, uint64_t length, uint64_t user_data) {
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd;
  SqeSetCmdOp(sqe, BLOCK_URING_CMD_DISCARD);
  sqe->addr = offset;
  SqeSetAddr3(sqe, length);
  sqe->user_data = user_data;
}

// ASYNC_CANCEL (5.5+): cancels the request submitted with user_data
// `target`; its own completion says 0 (cancelled), -ENOENT (not found:
// already completed) or -EALREADY (running, cannot be stopped now).
inline void UringPrepCancel(io_uring_sqe* sqe, uint64_t target, uint64_t user_data) {
  sqe->opcode = IORING_OP_ASYNC_CANCEL;
  sqe->fd = -1;
  sqe->addr = target;
  sqe->user_data = user_data;
}

// SQEs handed out but not yet consumed by the kernel.
unsigned UringSqPending(const UringQueue* q);
// SQEs handed out and not yet published (by an enter): the kernel has not
// seen them.
unsigned UringSqUnpublished(const UringQueue* q);
// Takes back the SQE UringGetSqe handed out last, if it is unpublished.
// True when taken back.
bool UringUnstageLast(UringQueue* q);

// Publishes staged SQEs and enters the kernel, which consumes at most
// max_submit of them (0: all). wait_nr > 0 blocks until that many
// completions are available. Any enter also asks for events when the kernel
// holds completion work only an enter runs (DEFER_TASKRUN, CQ overflow), so
// one syscall submits and reaps. Returns SQEs consumed or -errno.
int UringEnter(UringQueue* q, unsigned wait_nr, unsigned max_submit = 0);
// True when completions wait for an enter to be posted: deferred task work
// (IORING_SQ_TASKRUN) or the kernel's CQ overflow list.
bool UringEnterPending(const UringQueue* q);

// Completions ready to read, without a syscall.
unsigned UringCqReady(const UringQueue* q);
io_uring_cqe* UringCqeAt(UringQueue* q, unsigned i);  // i-th unread CQE
void UringCqAdvance(UringQueue* q, unsigned n);

int UringRegisterEventfd(UringQueue* q, int efd);
// IORING_CQ_EVENTFD_DISABLED (5.8): while muted the kernel skips the
// registered eventfd. Unmuting is a full barrier, so the caller's next look
// at the CQ and sq_flags sees what was posted while muted. False (and no
// change) on kernels without cq_flags.
bool UringMuteEventfd(UringQueue* q, bool muted);
int UringRegisterBuffers(UringQueue* q, const iovec* iov, unsigned n);
int UringUnregisterBuffers(UringQueue* q);
// Opcodes a probe reports on (every opcode blockring uses is below this).
constexpr unsigned kUringProbeOps = 64;
// Fills `supported` (indexed by opcode, size n) from IORING_REGISTER_PROBE.
int UringProbe(UringQueue* q, bool* supported, unsigned n);

}  // namespace blockring
