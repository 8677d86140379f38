#include "io_uring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>

#include "barrier.h"

namespace blockring {
namespace {

int SysSetup(unsigned entries, io_uring_params* p) {
  long r = syscall(__NR_io_uring_setup, entries, p);
  return r < 0 ? -errno : static_cast<int>(r);
}

int SysEnter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
  long r = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, nullptr, 0);
  return r < 0 ? -errno : static_cast<int>(r);
}

int SysRegister(int fd, unsigned opcode, const void* arg, unsigned nr_args) {
  long r = syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
  return r < 0 ? -errno : static_cast<int>(r);
}

template <typename T>
T* At(void* base, unsigned off) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + off);
}

int MapRings(UringQueue* q, const io_uring_params& p) {
  // NO_SQARRAY (6.6, so SINGLE_MMAP too) leaves sq_off.array 0: the CQ size covers the rings.
  bool sq_array = !(p.flags & IORING_SETUP_NO_SQARRAY);
  q->sq_map_size = sq_array ? p.sq_off.array + p.sq_entries * sizeof(unsigned) : 0;
  q->cq_map_size = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    if (q->cq_map_size > q->sq_map_size) q->sq_map_size = q->cq_map_size;
    q->cq_map_size = q->sq_map_size;
  }
  q->sq_map = mmap(nullptr, q->sq_map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                   q->fd, IORING_OFF_SQ_RING);
  if (q->sq_map == MAP_FAILED) {
    q->sq_map = nullptr;
    return -errno;
  }
  if (p.features & IORING_FEAT_SINGLE_MMAP) {
    q->cq_map = q->sq_map;
  } else {
    q->cq_map = mmap(nullptr, q->cq_map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                     q->fd, IORING_OFF_CQ_RING);
    if (q->cq_map == MAP_FAILED) {
      q->cq_map = nullptr;
      return -errno;
    }
  }
  q->sqe_map_size = p.sq_entries * sizeof(io_uring_sqe);
  q->sqe_map = mmap(nullptr, q->sqe_map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                    q->fd, IORING_OFF_SQES);
  if (q->sqe_map == MAP_FAILED) {
    q->sqe_map = nullptr;
    return -errno;
  }
  q->sq_head = At<unsigned>(q->sq_map, p.sq_off.head);
  q->sq_tail = At<unsigned>(q->sq_map, p.sq_off.tail);
  q->sq_mask = *At<unsigned>(q->sq_map, p.sq_off.ring_mask);
  q->sq_flags = At<unsigned>(q->sq_map, p.sq_off.flags);
  q->sq_array = sq_array ? At<unsigned>(q->sq_map, p.sq_off.array) : nullptr;
  q->sqes = static_cast<io_uring_sqe*>(q->sqe_map);
  q->cq_head = At<unsigned>(q->cq_map, p.cq_off.head);
  q->cq_tail = At<unsigned>(q->cq_map, p.cq_off.tail);
  q->cq_mask = *At<unsigned>(q->cq_map, p.cq_off.ring_mask);
  q->cq_overflow = At<unsigned>(q->cq_map, p.cq_off.overflow);
  q->cqes = At<io_uring_cqe>(q->cq_map, p.cq_off.cqes);
  unsigned flags_off;
  memcpy(&flags_off, reinterpret_cast<const char*>(&p.cq_off) + kCqOffFlags, sizeof(flags_off));
  if (flags_off) q->cq_flags = At<unsigned>(q->cq_map, flags_off);
  // The SQ index array is an identity map: slot i always holds SQE i (as
  // the kernel reads the ring without one under NO_SQARRAY).
  if (q->sq_array) {
    for (unsigned i = 0; i < p.sq_entries; i++) q->sq_array[i] = i;
  }
  q->sqe_tail = *q->sq_tail;
  return 0;
}

// Optional setup flags, newest kernel first: the order they are dropped in
// when setup fails with EINVAL.
const unsigned kDropOrder[] = {
    IORING_SETUP_NO_SQARRAY,     // 6.6
    IORING_SETUP_DEFER_TASKRUN,  // 6.1
    IORING_SETUP_SINGLE_ISSUER,  // 6.0
    IORING_SETUP_COOP_TASKRUN,   // 5.19
    IORING_SETUP_SUBMIT_ALL,     // 5.18
};

// TASKRUN_FLAG is only valid with DEFER_TASKRUN or COOP_TASKRUN, and
// DEFER_TASKRUN only with SINGLE_ISSUER.
unsigned Consistent(unsigned f) {
  if (!(f & IORING_SETUP_SINGLE_ISSUER)) f &= ~IORING_SETUP_DEFER_TASKRUN;
  if (!(f & (IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN))) f &= ~IORING_SETUP_TASKRUN_FLAG;
  return f;
}

}  // namespace

int UringSetup(unsigned entries, unsigned cq_entries, unsigned optional, UringQueue* q) {
  // CLAMP caps sizes at the kernel maximum instead of failing.
  const unsigned base = IORING_SETUP_CLAMP | (cq_entries ? IORING_SETUP_CQSIZE : 0);
  optional = Consistent(optional);
  int fd = -EINVAL;
  io_uring_params p;
  for (size_t drop = 0;; drop++) {
    memset(&p, 0, sizeof(p));
    p.flags = base | optional;
    p.cq_entries = cq_entries;
    fd = SysSetup(entries, &p);
    if (fd != -EINVAL) break;
    while (drop < sizeof(kDropOrder) / sizeof(kDropOrder[0]) && !(optional & kDropOrder[drop])) drop++;
    if (drop == sizeof(kDropOrder) / sizeof(kDropOrder[0])) break;
    optional = Consistent(optional & ~kDropOrder[drop]);
  }
  if (fd < 0) return fd;
  q->fd = fd;  // io_uring fds are O_CLOEXEC from creation.
  q->enter_fd = fd;
  q->features = p.features;
  q->setup_flags = p.flags;
  q->sq_entries = p.sq_entries;
  q->cq_entries = p.cq_entries;
  int r = MapRings(q, p);
  if (r < 0) {
    UringTeardown(q);
    return r;
  }
  return 0;
}

int UringRegisterRingFd(UringQueue* q) {
  UringRsrcUpdate up = {};
  up.offset = UINT32_MAX;  // any free slot; the kernel writes the index back
  up.data = static_cast<uint64_t>(q->fd);
  int r = SysRegister(q->fd, IORING_REGISTER_RING_FDS, &up, 1);
  if (r < 0) return r;
  if (r != 1) return -EINVAL;
  q->enter_fd = static_cast<int>(up.offset);
  q->enter_flags = IORING_ENTER_REGISTERED_RING;
  return 0;
}

void UringTeardown(UringQueue* q) {
  if (q->enter_flags & IORING_ENTER_REGISTERED_RING) {
    // The slot holds a reference to the ring until unregistered (or the
    // thread exits): without this the ring would outlive its close.
    UringRsrcUpdate up = {};
    up.offset = static_cast<uint32_t>(q->enter_fd);
    SysRegister(q->fd, IORING_UNREGISTER_RING_FDS, &up, 1);
  }
  if (q->sqe_map) munmap(q->sqe_map, q->sqe_map_size);
  if (q->cq_map && q->cq_map != q->sq_map) munmap(q->cq_map, q->cq_map_size);
  if (q->sq_map) munmap(q->sq_map, q->sq_map_size);
  if (q->fd >= 0) close(q->fd);
  *q = UringQueue();
}

io_uring_sqe* UringGetSqe(UringQueue* q) {
  // Acquire pairs with the kernel's release of sq_head after it has read SQEs.
  unsigned head = LoadAcquire(q->sq_head);
  if (q->sqe_tail - head >= q->sq_entries) return nullptr;
  io_uring_sqe* sqe = &q->sqes[q->sqe_tail & q->sq_mask];
  q->sqe_tail++;
  memset(sqe, 0, sizeof(*sqe));
  return sqe;
}

unsigned UringSqPending(const UringQueue* q) {
  return q->sqe_tail - LoadAcquire(q->sq_head);
}

unsigned UringSqUnpublished(const UringQueue* q) {
  // sq_tail is ours to write; the kernel reads SQEs only up to it.
  return q->sqe_tail - *q->sq_tail;
}

bool UringUnstageLast(UringQueue* q) {
  if (!UringSqUnpublished(q)) return false;
  q->sqe_tail--;
  return true;
}

int UringEnter(UringQueue* q, unsigned wait_nr, unsigned max_submit) {
  // Release makes the SQE contents visible before the kernel sees the new tail.
  if (*q->sq_tail != q->sqe_tail) StoreRelease(q->sq_tail, q->sqe_tail);
  // Everything published and not yet consumed, including SQEs a previous
  // enter left behind.
  unsigned to_submit = UringSqPending(q);
  if (max_submit && to_submit > max_submit) to_submit = max_submit;
  unsigned flags = q->enter_flags;
  // GETEVENTS also runs deferred task work and flushes the overflow list.
  if (wait_nr || UringEnterPending(q)) flags |= IORING_ENTER_GETEVENTS;
  if (!to_submit && !(flags & IORING_ENTER_GETEVENTS)) return 0;
  return SysEnter(q->enter_fd, to_submit, wait_nr, flags);
}

bool UringEnterPending(const UringQueue* q) {
  return LoadRelaxed(q->sq_flags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW);
}

unsigned UringCqReady(const UringQueue* q) {
  // Acquire pairs with the kernel's release of cq_tail after writing CQEs.
  return LoadAcquire(q->cq_tail) - *q->cq_head;
}

io_uring_cqe* UringCqeAt(UringQueue* q, unsigned i) {
  return &q->cqes[(*q->cq_head + i) & q->cq_mask];
}

void UringCqAdvance(UringQueue* q, unsigned n) {
  // Release: we are done reading these CQEs before the kernel may reuse them.
  StoreRelease(q->cq_head, *q->cq_head + n);
}

int UringRegisterEventfd(UringQueue* q, int efd) {
  return SysRegister(q->fd, IORING_REGISTER_EVENTFD, &efd, 1);
}

bool UringMuteEventfd(UringQueue* q, bool muted) {
  if (!q->cq_flags) return false;
  unsigned f = LoadRelaxed(q->cq_flags);
  f = muted ? f | IORING_CQ_EVENTFD_DISABLED : f & ~IORING_CQ_EVENTFD_DISABLED;
  // The full fence orders the store before the loads of cq_tail and
  // sq_flags that follow an unmute (store-load order). The kernel sets
  // IORING_SQ_TASKRUN with a locked RMW before it reads cq_flags, so one
  // side always sees the other.
  StoreRelaxed(q->cq_flags, f);
  FullFence();
  return true;
}

int UringRegisterBuffers(UringQueue* q, const iovec* iov, unsigned n) {
  return SysRegister(q->fd, IORING_REGISTER_BUFFERS, iov, n);
}

int UringUnregisterBuffers(UringQueue* q) {
  return SysRegister(q->fd, IORING_UNREGISTER_BUFFERS, nullptr, 0);
}

int UringProbe(UringQueue* q, bool* supported, unsigned n) {
  const unsigned ops = 256;
  size_t size = sizeof(UringProbeHeader) + ops * sizeof(UringProbeOp);
  std::unique_ptr<char[]> mem(new char[size]());
  auto* probe = reinterpret_cast<UringProbeHeader*>(mem.get());
  auto* entry = reinterpret_cast<UringProbeOp*>(mem.get() + sizeof(UringProbeHeader));
  int r = SysRegister(q->fd, IORING_REGISTER_PROBE, probe, ops);
  if (r < 0) return r;
  for (unsigned i = 0; i < n; i++) supported[i] = false;
  for (unsigned i = 0; i < probe->ops_len && i < ops; i++) {
    unsigned op = entry[i].op;
    if (op < n && (entry[i].flags & IO_URING_OP_SUPPORTED)) supported[op] = true;
  }
  return 0;
}

}  // namespace blockring
