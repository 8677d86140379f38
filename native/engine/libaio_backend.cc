#include "libaio_backend.h"

#include <errno.h>
#include <limits.h>
#include <linux/fs.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "../kernel/aio.h"
#include "../kernel/eventfd.h"
#include "device.h"
#include "threads_backend.h"

namespace blockring {
namespace {

// aio_nbytes is 64 bits, but the kernel moves at most MAX_RW_COUNT per call;
// the engine resubmits the rest as a short transfer.
uint64_t ClampLen(size_t len) { return len > 0x7ffff000u ? 0x7ffff000u : len; }

// Whether IOCB_CMD_FDSYNC works (Linux 4.18+; before, io_submit says
// EINVAL). Tried once on a memfd, which every kernel with aio fsync accepts.
bool ProbeAioFsync(AioContext* ctx) {
  int fd = memfd_create("blockring-aio-probe", MFD_CLOEXEC);
  if (fd < 0) return false;
  iocb cb;
  memset(&cb, 0, sizeof(cb));
  cb.aio_lio_opcode = IOCB_CMD_FDSYNC;
  cb.aio_fildes = static_cast<uint32_t>(fd);
  iocb* list[1] = {&cb};
  bool ok = false;
  if (AioSubmit(ctx, list, 1) == 1) {
    io_event ev;
    int n;
    do {
      n = AioReap(ctx, &ev, 1);
      if (n == 0) usleep(100);  // a no-op fsync completes almost at once
    } while (n == 0);
    ok = n == 1 && ev.res == 0;
  }
  close(fd);
  return ok;
}

class LibaioBackend final : public Backend {
 public:
  explicit LibaioBackend(const LibaioOptions& opts)
      : depth_(opts.depth),
        buffered_to_threads_(opts.buffered_to_threads),
        direct_chunk_(opts.direct_submit_batch),
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
    aio_fsync_ = ProbeAioFsync(&ctx_);
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
    memset(cb, 0, sizeof(*cb));
    cb->aio_data = reinterpret_cast<uintptr_t>(r);
    cb->aio_fildes = static_cast<uint32_t>(r->dev->fd);
    cb->aio_flags = IOCB_FLAG_RESFD;
    cb->aio_resfd = static_cast<uint32_t>(eventfd_);
    if (r->op == Op::kFlush) {
      cb->aio_lio_opcode = (r->flags & kFlagFlushMetadata) ? IOCB_CMD_FSYNC : IOCB_CMD_FDSYNC;
      return true;
    }
    bool write = r->op == Op::kWrite;
    cb->aio_offset = static_cast<int64_t>(r->RemainingOffset());
    if (write && (r->flags & kFlagFua)) cb->aio_rw_flags = RWF_DSYNC;  // Linux 4.13+
    if (r->iovcnt == 1) {
      cb->aio_lio_opcode = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
      cb->aio_buf = reinterpret_cast<uintptr_t>(r->iov[0].iov_base);
      cb->aio_nbytes = ClampLen(r->iov[0].iov_len);
    } else {
      // The kernel refuses more than IOV_MAX iovecs: send that many, the
      // engine resubmits the rest as a short transfer.
      cb->aio_lio_opcode = write ? IOCB_CMD_PWRITEV : IOCB_CMD_PREADV;
      cb->aio_buf = reinterpret_cast<uintptr_t>(r->iov);
      cb->aio_nbytes = r->iovcnt > IOV_MAX ? IOV_MAX : r->iovcnt;
    }
    return true;
  }

  int Submit() override {
    helper_.Kick();
    int total = 0;
    uint32_t pos = 0;
    // Small chunks with O_DIRECT: a larger io_submit is plugged and the
    // device starts only when the whole batch is issued (see io_uring).
    uint32_t chunk = staged_direct_ && direct_chunk_ ? direct_chunk_ : staged_;
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
  const unsigned direct_chunk_;
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
