#include "threads_backend.h"

#include <errno.h>

#include "../kernel/eventfd.h"
#include "../kernel/file.h"
#include "../kernel/thread.h"
#include "device.h"
#include "io_policy.h"

namespace blockring {

int64_t RunBlocking(Request& r, int fd) {
  // More iovecs than the kernel takes in one call go as the first
  // kIovMax; the engine resubmits the rest as a short transfer.
  uint64_t off = r.RemainingOffset();
  switch (r.op) {
    case Op::kRead:
      r.syscall = Syscall::kPreadv;
      return FileReadv(fd, r.iov, r.iovcnt, off);
    case Op::kWrite:
      // FUA: pwritev2(RWF_DSYNC) (before Linux 4.7: pwritev, then fdatasync).
      r.syscall = r.flags & kFlagFua ? Syscall::kPwritev2 : Syscall::kPwritev;
      return FileWritev(fd, r.iov, r.iovcnt, off, r.flags & kFlagFua);
    case Op::kFlush:
      r.syscall = r.flags & kFlagFlushMetadata ? Syscall::kFsync : Syscall::kFdatasync;
      return FileSync(fd, r.flags & kFlagFlushMetadata);
    case Op::kDiscard:
    case Op::kWriteZeroes:
      r.syscall = Syscall::kFallocate;
      return FileFallocate(fd, FallocateMode(r), r.offset, r.length);
  }
  return -EINVAL;
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void WorkerPool::Stage(Request* r) { staged_.push_back({r, r->dev->fd}); }

void WorkerPool::Start() {
  // Workers block every signal so process signals keep going to Node's
  // threads; they inherit the mask current at creation.
  AllSignalsBlocked blocked;
  try {
    while (threads_.size() < nthreads_) threads_.emplace_back([this] { Run(); });
  } catch (const std::system_error&) {
    // Out of threads: run with those we have (none: see Kick).
  }
}

void WorkerPool::Kick() {
  if (staged_.empty()) return;
  if (threads_.size() < nthreads_) Start();
  if (threads_.empty()) {
    // Not one thread could start: fail the attempts with EAGAIN, which the
    // engine retries a bounded number of times.
    for (const Task& t : staged_) Complete(t.r, -EAGAIN);
    staged_.clear();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.insert(queue_.end(), staged_.begin(), staged_.end());
  }
  if (staged_.size() == 1) {
    cv_.notify_one();
  } else {
    cv_.notify_all();
  }
  staged_.clear();
}

void WorkerPool::Complete(Request* r, int64_t res) {
  bool was_empty;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_empty = done_.empty();
    done_.push_back({r, res});
  }
  // One doorbell per empty-to-non-empty transition: the ring thread takes
  // the whole list on each pass, so later entries ride on that wakeup.
  if (was_empty) EventfdSignal(eventfd_);
}

void WorkerPool::Run() {
  for (;;) {
    Task t;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and nothing left to run
      t = queue_.front();
      queue_.pop_front();
    }
    Complete(t.r, RunBlocking(*t.r, t.fd));
  }
}

unsigned WorkerPool::Reap(AttemptSink* sink, unsigned max) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = done_.size() < max ? done_.size() : max;
    reaping_.assign(done_.begin(), done_.begin() + static_cast<ptrdiff_t>(n));
    done_.erase(done_.begin(), done_.begin() + static_cast<ptrdiff_t>(n));
  }
  // Outside the lock: the sink may stage new attempts.
  for (const Done& d : reaping_) sink->OnAttempt(d.r, d.res);
  unsigned n = static_cast<unsigned>(reaping_.size());
  reaping_.clear();
  return n;
}

namespace {

class ThreadsBackend final : public Backend {
 public:
  explicit ThreadsBackend(const ThreadsOptions& opts) : depth_(opts.depth), pool_(opts.threads) {}

  const char* name() const override { return "threads"; }
  int Init(int eventfd) override {
    eventfd_ = eventfd;
    pool_.set_eventfd(eventfd);
    return 0;
  }
  uint32_t capacity() const override { return depth_; }
  bool Prepare(Request* r) override {
    pool_.Stage(r);
    return true;
  }
  int Submit() override {
    pool_.Kick();
    return 0;
  }
  unsigned Reap(AttemptSink* sink, unsigned max) override { return pool_.Reap(sink, max); }
  // Every finished attempt rings the eventfd after it is listed, so a
  // wakeup after the engine's last drain means something may be reapable.
  int Wait() override { return EventfdWait(eventfd_); }

 private:
  const uint32_t depth_;
  int eventfd_ = -1;
  WorkerPool pool_;
};

}  // namespace

std::unique_ptr<Backend> MakeThreadsBackend(const ThreadsOptions& opts) {
  return std::make_unique<ThreadsBackend>(opts);
}

}  // namespace blockring
