#include "io_uring_backend.h"

#include <errno.h>
#include <linux/fs.h>

#include <utility>

#include "../kernel/barrier.h"
#include "../kernel/eventfd.h"
#include "../kernel/file.h"
#include "../kernel/io_limits.h"
#include "../kernel/io_uring.h"
#include "../kernel/thread.h"
#include "device.h"
#include "io_policy.h"

namespace blockring {

const char* const kUringFeatureNames[kUringFeatureCount] = {"single-issuer", "defer-taskrun", "no-sqarray", "ring-fd",
                                                            "nowait-read"};

namespace {

constexpr uint8_t kAttemptUringDiscard = 1;
// The user_data of ASYNC_CANCEL SQEs (a Request* is never null): their
// completions are not attempts.
constexpr uint64_t kCancelUserData = 0;

class IoUringBackend final : public Backend {
 public:
  ~IoUringBackend() override { UringTeardown(&q_); }

  int Setup(const IoUringOptions& opts, std::string* why) {
    direct_submit_batch_ = opts.direct_submit_batch;
    // SUBMIT_ALL (5.18) keeps submitting past a failed SQE. DEFER_TASKRUN
    // (with SINGLE_ISSUER) posts completions only when our thread enters
    // the ring, so no task-work interrupt of the event loop's epoll_wait;
    // the registered eventfd still fires when such work is queued, and
    // TASKRUN_FLAG marks it in sq_flags so a reap knows to enter.
    // COOP_TASKRUN is not asked for: it skips the wakeup of a task asleep
    // (in epoll_wait), whose completion would then wait for some other event.
    unsigned optional = IORING_SETUP_SUBMIT_ALL;
    if (opts.features & kUringSingleIssuer) optional |= IORING_SETUP_SINGLE_ISSUER;
    if (opts.features & kUringDeferTaskrun) optional |= IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    if (opts.features & kUringNoSqArray) optional |= IORING_SETUP_NO_SQARRAY;
    int r = UringSetup(opts.depth, opts.depth * 2, optional, &q_);
    if (r < 0) {
      *why = "io_uring_setup failed";
      return r;
    }
    if (q_.setup_flags & IORING_SETUP_SINGLE_ISSUER) features_ |= kUringSingleIssuer;
    if (q_.setup_flags & IORING_SETUP_DEFER_TASKRUN) features_ |= kUringDeferTaskrun;
    if (q_.setup_flags & IORING_SETUP_NO_SQARRAY) features_ |= kUringNoSqArray;
    // A full table of registered rings (16 per thread) or an old kernel: plain fd.
    if ((opts.features & kUringRingFd) && UringRegisterRingFd(&q_) == 0) features_ |= kUringRingFd;
    if (!(q_.features & IORING_FEAT_NODROP)) {
      // Without NODROP (before 5.5) an overflowing CQ loses completions.
      *why = "kernel lacks IORING_FEAT_NODROP (needs Linux 5.5+)";
      return -EOPNOTSUPP;
    }
    bool ops[kUringProbeOps] = {};
    r = UringProbe(&q_, ops, kUringProbeOps);
    if (r < 0) {
      *why = "IORING_REGISTER_PROBE failed (needs Linux 5.6+)";
      return r;
    }
    const int needed[] = {IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC, IORING_OP_FALLOCATE};
    for (int op : needed) {
      if (!ops[op]) {
        *why = "kernel lacks a required io_uring opcode";
        return -EOPNOTSUPP;
      }
    }
    has_read_ = ops[IORING_OP_READ] && ops[IORING_OP_WRITE];
    has_fixed_ = ops[IORING_OP_READ_FIXED] && ops[IORING_OP_WRITE_FIXED];
    uring_discard_ = ops[IORING_OP_URING_CMD];
    has_cancel_ = ops[IORING_OP_ASYNC_CANCEL];
    if (opts.features & kUringNowaitRead) features_ |= kUringNowaitRead;
    return 0;
  }

  const char* name() const override { return "io_uring"; }
  int Init(int eventfd) override {
    eventfd_ = eventfd;
    return UringRegisterEventfd(&q_, eventfd);
  }
  uint32_t capacity() const override { return q_.sq_entries; }
  BackendCaps caps() const override { return {has_fixed_}; }
  std::vector<const char*> features() const override {
    std::vector<const char*> out;
    for (unsigned i = 0; i < kUringFeatureCount; i++) {
      if (features_ & (1u << i)) out.push_back(kUringFeatureNames[i]);
    }
    return out;
  }

  bool Prepare(Request* r) override {
    io_uring_sqe* sqe = UringGetSqe(&q_);
    if (!sqe) return false;
    if (r->dev->config.direct) staged_direct_++;
    lone_ = NowaitCandidate(r) ? r : nullptr;
    int fd = r->dev->fd;
    uint64_t data = reinterpret_cast<uintptr_t>(r);
    switch (r->op) {
      case Op::kRead:
      case Op::kWrite: {
        bool write = r->op == Op::kWrite;
        uint64_t off = r->RemainingOffset();
        int flags = (r->flags & kFlagFua) ? RWF_DSYNC : 0;
        const iovec& first = r->iov[0];
        if (r->iovcnt == 1 && (r->flags & kFlagFixedBuffer) && has_fixed_) {
          UringPrepRwFixed(sqe, write, fd, first.iov_base, ClampLen(first.iov_len), off, flags, r->buf_index, data);
          r->syscall = write ? Syscall::kUringWriteFixed : Syscall::kUringReadFixed;
        } else if (r->iovcnt == 1 && has_read_) {
          UringPrepRw(sqe, write ? IORING_OP_WRITE : IORING_OP_READ, fd, first.iov_base, ClampLen(first.iov_len), off,
                      flags, data);
          r->syscall = write ? Syscall::kUringWrite : Syscall::kUringRead;
        } else {
          UringPrepRw(sqe, write ? IORING_OP_WRITEV : IORING_OP_READV, fd, r->iov, ClampIovcnt(r->iovcnt), off, flags,
                      data);
          r->syscall = write ? Syscall::kUringWritev : Syscall::kUringReadv;
        }
        break;
      }
      case Op::kFlush:
        UringPrepFsync(sqe, fd, !(r->flags & kFlagFlushMetadata), data);
        r->syscall = Syscall::kUringFsync;
        break;
      case Op::kDiscard:
        if (r->dev->config.is_block_device && uring_discard_) {
          // Older kernels fail the command with EINVAL/EOPNOTSUPP/ENOTTY;
          // Reap then falls back to fallocate.
          UringPrepDiscard(sqe, fd, r->offset, r->length, data);
          r->attempt = kAttemptUringDiscard;
          r->syscall = Syscall::kUringCmdDiscard;
          break;
        }
        [[fallthrough]];
      case Op::kWriteZeroes:
        UringPrepFallocate(sqe, fd, FallocateMode(*r), r->offset, r->length, data);
        r->syscall = Syscall::kUringFallocate;
        break;
    }
    return true;
  }

  bool Cancel(Request* r) override {
    if (!has_cancel_) return false;
    io_uring_sqe* sqe = UringGetSqe(&q_);
    if (!sqe) return false;  // the queue is full of staged SQEs: let it run out
    lone_ = nullptr;
    UringPrepCancel(sqe, reinterpret_cast<uintptr_t>(r), kCancelUserData);
    return true;
  }

  int Submit() override { return SubmitStaged(); }

  int SubmitAndSpin(uint64_t spin_ns) override {
    int r = SubmitStaged();
    if (r < 0) return r;
    // A completion shows as a CQE (task work posts it on this thread, which
    // the kernel interrupts to run it) or, under DEFER_TASKRUN, as
    // IORING_SQ_TASKRUN (the next enter posts it). Reading the clock every
    // 16 turns keeps the check cheap; the bound is then a few µs coarse.
    uint64_t t0 = MonotonicNs();
    for (unsigned i = 1;; i++) {
      if (!done_.empty() || UringCqReady(&q_) || UringEnterPending(&q_)) return r;
      CpuRelax();
      if (i % 16) continue;
      if (MonotonicNs() - t0 >= spin_ns) return -ETIME;
    }
  }

  bool MuteEventfd(bool mute) override {
    // Only under DEFER_TASKRUN, where the only completion work that arrives
    // asynchronously is queued task work, which sets IORING_SQ_TASKRUN with a
    // full barrier (x86's locked RMW) before the kernel checks cq_flags; other
    // paths order the CQ tail store and that check with no full barrier, so a
    // completion could slip past both sides.
#if defined(__x86_64__)
    if (!(features_ & kUringDeferTaskrun) || !UringMuteEventfd(&q_, mute)) return false;
    muted_ = mute;
    return !mute && (!done_.empty() || UringCqReady(&q_) || UringEnterPending(&q_));
#else
    (void)mute;
    return false;
#endif
  }

  unsigned Reap(AttemptSink* sink, unsigned max) override {
    unsigned total = 0;
    // Reads that finished without the ring (SubmitStaged) first; the
    // engine orders completions by tag, not by the order reported here.
    size_t k = 0;
    for (; k < done_.size() && total < max; k++, total++) sink->OnAttempt(done_[k].first, done_[k].second);
    done_.erase(done_.begin(), done_.begin() + static_cast<ptrdiff_t>(k));
    if (total >= max) return total;
    for (;;) {
      unsigned n = UringCqReady(&q_);
      if (n > max - total) n = max - total;
      for (unsigned i = 0; i < n; i++) {
        io_uring_cqe* cqe = UringCqeAt(&q_, i);
        if (cqe->user_data == kCancelUserData) continue;  // the target reports itself
        auto* r = reinterpret_cast<Request*>(cqe->user_data);
        int res = cqe->res;
        if (r->attempt == kAttemptUringDiscard) {
          r->attempt = 0;
          if (res == -EINVAL || res == -EOPNOTSUPP || res == -ENOTTY) {
            // No async discard in this kernel: let the engine retry the
            // request, which now goes out as fallocate.
            uring_discard_ = false;
            res = -EAGAIN;
          }
        }
        sink->OnAttempt(r, res);
      }
      UringCqAdvance(&q_, n);
      total += n;
      if (total >= max) break;
      if (!n) {
        // Completions that did not fit in the CQ wait in the kernel's
        // overflow list, and under DEFER_TASKRUN finished requests wait as
        // task work, until an enter with GETEVENTS posts them.
        if (!UringEnterPending(&q_)) break;
        UringEnter(&q_, 0);
        if (!UringCqReady(&q_)) break;
      }
    }
    return total;
  }

  int Wait() override {
    if (!done_.empty()) return 0;
    int r = UringEnter(&q_, 1);
    return r < 0 ? r : 0;
  }

  int RegisterBuffers(const iovec* iov, unsigned n) override {
    if (!has_fixed_) return -EOPNOTSUPP;
    return UringRegisterBuffers(&q_, iov, n);
  }
  void UnregisterBuffers() override { UringUnregisterBuffers(&q_); }

 private:
  // A buffered read (a FIFO's only misses, with ESPIPE, and backs off):
  // worth trying without the ring when it turns out to be the only SQE of
  // a submission.
  bool NowaitCandidate(Request* r) {
    if (!(features_ & kUringNowaitRead) || r->op != Op::kRead || r->dev->config.direct) return false;
    if (r->dev->nowait_skip) {
      r->dev->nowait_skip--;
      return false;
    }
    return true;
  }

  // A submission of one buffered read: preadv2(RWF_NOWAIT) copies what the
  // page cache already holds in one syscall, cheaper than the ring's enter,
  // SQE and CQE (io_uring's own first attempt is the same non-blocking
  // read). Whatever it got is the attempt's result (a short one is
  // resubmitted by the engine, as any short read); when nothing was ready
  // the SQE goes to the ring as staged. Batches of two or more always go
  // to the ring: one enter for all of them is cheaper than a syscall each.
  bool TryNowait() {
    Request* r = lone_;
    lone_ = nullptr;
    // The one SQE the kernel has not consumed, and has not been shown.
    if (!r || UringSqPending(&q_) != 1 || UringSqUnpublished(&q_) != 1) return false;
    Device* dev = r->dev;
    int64_t res = FileReadvNowait(dev->fd, r->iov, r->iovcnt, r->RemainingOffset());
    if (res < 0) {
      // Not ready (or not supported here): back off on this device.
      if (dev->nowait_misses < 8) dev->nowait_misses++;
      dev->nowait_skip = static_cast<uint16_t>((1u << dev->nowait_misses) - 1);
      return false;
    }
    UringUnstageLast(&q_);
    dev->nowait_misses = 0;
    done_.emplace_back(r, res);
    // As the kernel signals a CQE, unless the owner is reaping anyway.
    if (!muted_) EventfdSignal(eventfd_);
    return true;
  }

  // Submits what is staged, at most the O_DIRECT chunk per enter.
  int SubmitStaged() {
    if (lone_ && TryNowait()) return 1;
    unsigned chunk = SubmitChunk(UringSqPending(&q_), staged_direct_, direct_submit_batch_);
    staged_direct_ = 0;
    if (chunk >= UringSqPending(&q_)) return UringEnter(&q_, 0);
    int total = 0;
    while (UringSqPending(&q_)) {
      int n = UringEnter(&q_, 0, chunk);
      if (n <= 0) return total ? total : n;
      total += n;
    }
    return total;
  }

  UringQueue q_;
  unsigned features_ = 0;  // kUring* in use
  bool has_read_ = false;
  bool has_fixed_ = false;
  bool uring_discard_ = false;
  bool has_cancel_ = false;
  unsigned staged_direct_ = 0;  // O_DIRECT requests among the staged SQEs
  unsigned direct_submit_batch_ = 2;
  int eventfd_ = -1;
  bool muted_ = false;
  // The last SQE staged, when it is a nowait-read candidate (TryNowait).
  Request* lone_ = nullptr;
  // Attempts TryNowait finished, for the next Reap.
  std::vector<std::pair<Request*, int64_t>> done_;
};

}  // namespace

std::unique_ptr<Backend> MakeIoUringBackend(const IoUringOptions& opts, int* err, std::string* why) {
  auto b = std::make_unique<IoUringBackend>();
  int r = b->Setup(opts, why);
  if (r < 0) {
    *err = r;
    return nullptr;
  }
  return b;
}

}  // namespace blockring
