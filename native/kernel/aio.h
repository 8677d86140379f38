// Linux native AIO adapter on the kernel UAPI header: io_setup, io_submit,
// io_getevents, io_destroy as raw syscalls (no libaio), plus reaping
// completions straight from the ring the kernel maps at the context address.
// Functions return -errno on failure and never throw.
#pragma once

#include <linux/aio_abi.h>

#include <cstdint>

namespace blockring {

struct AioContext {
  aio_context_t id = 0;
  // The kernel's completion ring, mapped into our address space at `id`, or
  // nullptr when its header is not one we understand (then io_getevents).
  struct AioRing* ring = nullptr;
};

// Creates a context for `nr` concurrent iocbs. -EAGAIN means the system-wide
// fs.aio-max-nr budget is exhausted.
int AioSetup(unsigned nr, AioContext* ctx);
void AioDestroy(AioContext* ctx);

// Submits n iocbs; returns how many the kernel took (>= 1) or -errno for
// the first one. Each iocb may be reused as soon as this returns.
int AioSubmit(const AioContext* ctx, iocb** iocbs, long n);

// iocb encoders (on an iocb the caller may reuse): completion reported
// through resfd (IOCB_FLAG_RESFD) with data as aio_data.
void AioPrepRw(iocb* cb, uint16_t opcode, int fd, const void* buf, uint64_t nbytes, uint64_t offset, int rw_flags,
               uint64_t data, int resfd);
void AioPrepFsync(iocb* cb, int fd, bool datasync, uint64_t data, int resfd);

// Whether IOCB_CMD_FDSYNC works (Linux 4.18+; before, io_submit says
// EINVAL). Tried once on a memfd, which every kernel with aio fsync accepts.
bool AioProbeFsync(AioContext* ctx);

// Non-blocking: copies up to max completions into events. Reads the user
// ring without a syscall when possible, else io_getevents with a zero timeout.
int AioReap(AioContext* ctx, io_event* events, unsigned max);

}  // namespace blockring
