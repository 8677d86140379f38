#include "aio.h"

#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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

int AioReap(AioContext* ctx, io_event* events, unsigned max) {
  AioRing* ring = ctx->ring;
  if (!ring) {
    timespec zero = {0, 0};
    return static_cast<int>(Ret(syscall(__NR_io_getevents, ctx->id, 0L, static_cast<long>(max), events, &zero)));
  }
  unsigned nr = ring->nr;
  unsigned head = __atomic_load_n(&ring->head, __ATOMIC_RELAXED);  // only we move it
  // Acquire pairs with the kernel's smp_wmb() between filling a slot and
  // publishing the new tail: slots before tail are complete.
  unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
  if (head >= nr || tail >= nr) return -EIO;  // corrupted header: refuse to index
  unsigned n = 0;
  while (head != tail && n < max) {
    events[n++] = ring->io_events[head];
    head = head + 1 == nr ? 0 : head + 1;
  }
  if (n) {
    // Release: our slot reads happen before the kernel sees the slots as
    // free (it reads head when refilling its request budget).
    __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
  }
  return static_cast<int>(n);
}

}  // namespace blockring
