#include "libaio_backend.h"

#include <errno.h>
#include <linux/fs.h>

#include <cstring>
#include <vector>

#include "../kernel/aio.h"
#include "../kernel/eventfd.h"
#include "../kernel/io_limits.h"
#include "device.h"
#include "io_policy.h"
#include "threads_backend.h"

namespace blockring {
namespace {

class LibaioBackend final : public Backend {
 public:
  explicit LibaioBackend(const LibaioOptions& opts)
      : depth_(opts.depth),
        buffered_to_threads_(opts.buffered_to_threads),
        direct_submit_batch_(opts.direct_submit_batch),
        helper_(opts.threads) {}

  ~LibaioBackend() override { AioDestroy(&ctx_); }

  int Setup(std::string* why) {
    int r = AioSetup(depth_, &ctx_);
    if (r == -EAGAIN) {
      *why = "io_setup: the system-wide aio request limit fs.aio-max-nr is exhausted "
             "(see /proc/sys/fs/aio-nr; raise /proc/sys/fs/aio-max-nr or lower the ring depth)";
      return r;
    }
    if (r < 0) {
      *why = r == -ENOSYS ? "io_setup: kernel built without AIO" : "io_setup failed";
      return r;
    }
    aio_fsync_ = AioProbeFsync(&ctx_);
    iocbs_.resize(depth_);
    ptrs_.resize(depth_);
    for (uint32_t i = 0; i < depth_; i++) ptrs_[i] = &iocbs_[i];
    events_.resize(depth_ < 256 ? depth_ : 256);
    return 0;
  }

  const char* name() const override { return "libaio"; }
  int Init(int eventfd) override {
    eventfd_ = eventfd;
    helper_.set_eventfd(eventfd);
    return 0;
  }
  uint32_t capacity() const override { return depth_; }

  bool Prepare(Request* r) override {
    bool via_aio = r->IsTransfer() ? !(buffered_to_threads_ && !r->dev->config.direct) : r->op == Op::kFlush && aio_fsync_;
    if (!via_aio) {
      // Discard and write-zeroes (fallocate) are no aio ops; flush is not
      // before 4.18.
      helper_.Stage(r);
      return true;
    }
    if (staged_ == iocbs_.size()) return false;
    if (r->dev->config.direct) staged_direct_++;
    iocb* cb = &iocbs_[staged_++];
    uint64_t data = reinterpret_cast<uintptr_t>(r);
    int fd = r->dev->fd;
    if (r->op == Op::kFlush) {
      AioPrepFsync(cb, fd, !(r->flags & kFlagFlushMetadata), data, eventfd_);
      r->syscall = r->flags & kFlagFlushMetadata ? Syscall::kAioFsync : Syscall::kAioFdsync;
      return true;
    }
    bool write = r->op == Op::kWrite;
    int flags = write && (r->flags & kFlagFua) ? RWF_DSYNC : 0;  // Linux 4.13+
    if (r->iovcnt == 1) {
      AioPrepRw(cb, write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD, fd, r->iov[0].iov_base, ClampLen(r->iov[0].iov_len),
                r->RemainingOffset(), flags, data, eventfd_);
      r->syscall = write ? Syscall::kAioPwrite : Syscall::kAioPread;
    } else {
      AioPrepRw(cb, write ? IOCB_CMD_PWRITEV : IOCB_CMD_PREADV, fd, r->iov, ClampIovcnt(r->iovcnt),
                r->RemainingOffset(), flags, data, eventfd_);
      r->syscall = write ? Syscall::kAioPwritev : Syscall::kAioPreadv;
    }
    return true;
  }

  int Submit() override {
    helper_.Kick();
    int total = 0;
    uint32_t pos = 0;
    uint32_t chunk = SubmitChunk(staged_, staged_direct_, direct_submit_batch_);
    while (pos < staged_) {
      uint32_t n = staged_ - pos < chunk ? staged_ - pos : chunk;
      int r = AioSubmit(&ctx_, &ptrs_[pos], static_cast<long>(n));
      if (r > 0) {
        pos += static_cast<uint32_t>(r);
        total += r;
        continue;
      }
      if (r == 0 || r == -EAGAIN || r == -EINTR) {
        // Out of kernel aio slots: keep the rest staged, in order, and let
        // the engine retry after the next reap.
        memmove(&iocbs_[0], &iocbs_[pos], (staged_ - pos) * sizeof(iocb));
        staged_ -= pos;
        return -EAGAIN;
      }
      // io_submit refused the first iocb outright (EBADF, EINVAL, ...): it
      // fails alone, through the helper's completion list.
      helper_.Complete(reinterpret_cast<Request*>(iocbs_[pos].aio_data), r);
      pos++;
    }
    staged_ = 0;
    staged_direct_ = 0;
    return total;
  }

  unsigned Reap(AttemptSink* sink, unsigned max) override {
    unsigned total = helper_.Reap(sink, max);
    while (total < max) {
      unsigned want = max - total;
      if (want > events_.size()) want = static_cast<unsigned>(events_.size());
      int n = AioReap(&ctx_, events_.data(), want);
      if (n <= 0) break;
      for (int i = 0; i < n; i++) {
        sink->OnAttempt(reinterpret_cast<Request*>(events_[i].data), events_[i].res);
      }
      total += static_cast<unsigned>(n);
      if (static_cast<unsigned>(n) < want) break;
    }
    return total;
  }

  // aio (through RESFD) and the helper both ring the eventfd after a
  // completion becomes reapable.
  int Wait() override { return EventfdWait(eventfd_); }

 private:
  const uint32_t depth_;
  const bool buffered_to_threads_;
  const unsigned direct_submit_batch_;
  uint32_t staged_direct_ = 0;  // O_DIRECT iocbs among the staged ones
  AioContext ctx_;
  bool aio_fsync_ = false;
  int eventfd_ = -1;
  std::vector<iocb> iocbs_;  // staged, not yet taken by io_submit
  std::vector<iocb*> ptrs_;  // ptrs_[i] == &iocbs_[i], the io_submit argument
  uint32_t staged_ = 0;
  std::vector<io_event> events_;
  WorkerPool helper_;  // flush before 4.18, fallocate, buffered I/O in auto
};

}  // namespace

std::unique_ptr<Backend> MakeLibaioBackend(const LibaioOptions& opts, int* err, std::string* why) {
  auto b = std::make_unique<LibaioBackend>(opts);
  int r = b->Setup(why);
  if (r < 0) {
    *err = r;
    return nullptr;
  }
  return b;
}

}  // namespace blockring
