#include "aio.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "barrier.h"

namespace blockring {

// Layout of the completion ring at the context address (fs/aio.c). Not in
// the UAPI headers, but stable since 2.6: userspace libaio reads it too.
struct AioRing {
  unsigned id;
  unsigned nr;    // number of io_event slots
  unsigned head;  // next slot to consume: written by us (or io_getevents)
  unsigned tail;  // next slot the kernel fills
  unsigned magic;
  unsigned compat_features;
  unsigned incompat_features;
  unsigned header_length;
  io_event io_events[];
};

namespace {

constexpr unsigned kAioRingMagic = 0xa10a10a1;

long Ret(long r) { return r < 0 ? -errno : r; }

}  // namespace

int AioSetup(unsigned nr, AioContext* ctx) {
  aio_context_t id = 0;
  long r = Ret(syscall(__NR_io_setup, nr, &id));
  if (r < 0) return static_cast<int>(r);
  ctx->id = id;
  auto* ring = reinterpret_cast<AioRing*>(id);
  // Only read the ring directly when it is the layout we know; any
  // incompatible feature bit means the kernel changed it.
  ctx->ring = ring->magic == kAioRingMagic && ring->incompat_features == 0 && ring->nr ? ring : nullptr;
  return 0;
}

void AioDestroy(AioContext* ctx) {
  if (!ctx->id) return;
  // Waits for (or cancels) outstanding iocbs before it returns.
  syscall(__NR_io_destroy, ctx->id);
  ctx->id = 0;
  ctx->ring = nullptr;
}

int AioSubmit(const AioContext* ctx, iocb** iocbs, long n) {
  return static_cast<int>(Ret(syscall(__NR_io_submit, ctx->id, n, iocbs)));
}

void AioPrepRw(iocb* cb, uint16_t opcode, int fd, const void* buf, uint64_t nbytes, uint64_t offset, int rw_flags,
               uint64_t data, int resfd) {
  memset(cb, 0, sizeof(*cb));
  cb->aio_lio_opcode = opcode;
  cb->aio_fildes = static_cast<uint32_t>(fd);
  cb->aio_buf = reinterpret_cast<uintptr_t>(buf);
  cb->aio_nbytes = nbytes;  // iovec count for PREADV/PWRITEV
  cb->aio_offset = static_cast<int64_t>(offset);
  cb->aio_rw_flags = rw_flags;
  cb->aio_data = data;
  cb->aio_flags = IOCB_FLAG_RESFD;
  cb->aio_resfd = static_cast<uint32_t>(resfd);
}

void AioPrepFsync(iocb* cb, int fd, bool datasync, uint64_t data, int resfd) {
  AioPrepRw(cb, datasync ? IOCB_CMD_FDSYNC : IOCB_CMD_FSYNC, fd, nullptr, 0, 0, 0, data, resfd);
}

bool AioProbeFsync(AioContext* ctx) {
  int fd = memfd_create("blockring-aio-probe", MFD_CLOEXEC);
  if (fd < 0) return false;
  iocb cb;
  AioPrepFsync(&cb, fd, true, 0, 0);
  cb.aio_flags = 0;  // no eventfd: reaped right here
  iocb* list[1] = {&cb};
  bool ok = false;
  if (AioSubmit(ctx, list, 1) == 1) {
    io_event ev;
    int n;
    do {
      n = AioReap(ctx, &ev, 1);
      // A no-op fsync completes almost at once.
      if (n == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
    } while (n == 0);
    ok = n == 1 && ev.res == 0;
  }
  close(fd);
  return ok;
}

int AioReap(AioContext* ctx, io_event* events, unsigned max) {
  AioRing* ring = ctx->ring;
  if (!ring) {
    timespec zero = {0, 0};
    return static_cast<int>(Ret(syscall(__NR_io_getevents, ctx->id, 0L, static_cast<long>(max), events, &zero)));
  }
  unsigned nr = ring->nr;
  unsigned head = LoadRelaxed(&ring->head);  // only we move it
  // Acquire pairs with the kernel's smp_wmb() between filling a slot and
  // publishing the new tail: slots before tail are complete.
  unsigned tail = LoadAcquire(&ring->tail);
  if (head >= nr || tail >= nr) return -EIO;  // corrupted header: refuse to index
  unsigned n = 0;
  while (head != tail && n < max) {
    events[n++] = ring->io_events[head];
    head = head + 1 == nr ? 0 : head + 1;
  }
  if (n) {
    // Release: our slot reads happen before the kernel sees the slots as
    // free (it reads head when refilling its request budget).
    StoreRelease(&ring->head, head);
  }
  return static_cast<int>(n);
}

}  // namespace blockring
