#include "engine.h"

#include <errno.h>

#include <chrono>
#include <thread>

#include "../kernel/eventfd.h"
#include "../kernel/file.h"

namespace blockring {
namespace {

constexpr uint32_t kMaxRetries = 1000;  // EAGAIN/EINTR attempts per request
constexpr size_t kSlabSize = 256;

}  // namespace

void Request::AdvanceIovecs(uint64_t bytes) {
  while (bytes && iovcnt) {
    if (bytes < iov->iov_len) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + bytes;
      iov->iov_len -= bytes;
      return;
    }
    bytes -= iov->iov_len;
    iov++;
    iovcnt--;
  }
}

Engine::Engine(std::unique_ptr<Backend> backend) : backend_(std::move(backend)) {}

Engine::~Engine() {
  // The backend first: its threads must be joined before the fds they use
  // and the eventfd they signal go away.
  backend_.reset();
  for (auto& dev : devices_) {
    if (dev->fd >= 0) CloseFd(dev->fd);
  }
  if (eventfd_ >= 0) CloseFd(eventfd_);
}

int Engine::Init() {
  int fd = EventfdCreate();
  if (fd < 0) return fd;
  eventfd_ = fd;
  return backend_->Init(eventfd_);
}

Device* Engine::AddDevice(int fd, const DeviceConfig& config) {
  uint32_t handle;
  if (!free_handles_.empty()) {
    handle = free_handles_.back();
    free_handles_.pop_back();
    *devices_[handle] = Device();
  } else {
    handle = static_cast<uint32_t>(devices_.size());
    devices_.push_back(std::make_unique<Device>());
  }
  Device* dev = devices_[handle].get();
  dev->fd = fd;
  dev->handle = handle;
  dev->config = config;
  dev->size = config.size;
  return dev;
}

Device* Engine::GetDevice(uint32_t handle) const {
  if (handle >= devices_.size()) return nullptr;
  Device* dev = devices_[handle].get();
  return dev->fd >= 0 && !dev->closing ? dev : nullptr;
}

bool Engine::CloseDevice(Device* dev) {
  dev->closing = true;
  if (dev->inflight) return false;
  FreeDevice(dev);
  return true;
}

void Engine::DeviceResized(Device* dev, uint64_t size) {
  dev->size = size;
  backend_->DeviceResized(dev);
}

void Engine::FreeDevice(Device* dev) {
  backend_->ReleaseDevice(dev);
  CloseFd(dev->fd);
  dev->fd = -1;
  free_handles_.push_back(dev->handle);
}

Request* Engine::NewRequest() {
  if (!free_requests_) {
    std::unique_ptr<Request[]> slab(new Request[kSlabSize]);
    for (size_t i = 0; i < kSlabSize; i++) {
      slab[i].next = free_requests_;
      free_requests_ = &slab[i];
    }
    request_slabs_.push_back(std::move(slab));
  }
  Request* r = free_requests_;
  free_requests_ = r->next;
  r->next = nullptr;
  return r;
}

void Engine::FreeRequest(Request* r) {
  std::vector<iovec> keep;
  keep.swap(r->iov_heap);
  *r = Request();
  if (keep.capacity() <= 64) {
    keep.clear();
    r->iov_heap.swap(keep);  // reuse small vectors; drop big ones
  }
  r->next = free_requests_;
  free_requests_ = r;
}

void Engine::Accept(Request* r) {
  inflight_++;
  r->dev->inflight++;
  r->stage = Stage::kDormant;
  if (r->dev->tasks.Arrive(r)) Ready(r);
}

Engine::CancelResult Engine::Cancel(Request* r) {
  switch (r->stage) {
    case Stage::kDormant: {
      Device* dev = r->dev;
      dev->tasks.RemoveDormant(r, [this](Request* d) { Ready(d); });
      r->result = -ECANCELED;
      r->stage = Stage::kDone;
      if (finished_.empty()) EventfdSignal(eventfd_);
      finished_.push_back(r);
      if (--dev->inflight == 0 && dev->closing) FreeDevice(dev);
      return CancelResult::kDropped;
    }
    case Stage::kBacklog: {
      Request** link = &backlog_head_;
      Request* prev = nullptr;
      while (*link != r) {
        prev = *link;
        link = &prev->next;
      }
      *link = r->next;
      if (backlog_tail_ == r) backlog_tail_ = prev;
      r->next = nullptr;
      if (finished_.empty()) EventfdSignal(eventfd_);
      Finish(r, -ECANCELED);
      return CancelResult::kDropped;
    }
    case Stage::kIssued:
      r->cancelled = true;
      return backend_->Cancel(r) ? CancelResult::kKernel : CancelResult::kRunsOut;
    case Stage::kInstant:
    case Stage::kDone:
      break;
  }
  return CancelResult::kFinished;
}

void Engine::Ready(Request* r) {
  if (r->length == 0 && (r->op == Op::kDiscard || r->op == Op::kWriteZeroes)) {
    // Nothing to deallocate or zero: complete with 0 like a zero-length
    // write, in order, without the kernel (fallocate refuses length 0).
    if (trace_ && !r->issue_seq) r->issue_seq = ++trace_seq_;
    if (instant_.empty()) EventfdSignal(eventfd_);
    r->stage = Stage::kInstant;
    instant_.push_back(r);
    return;
  }
  if (!backlog_head_ && in_backend_ < backend_->capacity() && backend_->Prepare(r)) {
    in_backend_++;
    r->stage = Stage::kIssued;
    if (trace_ && !r->issue_seq) r->issue_seq = ++trace_seq_;
    return;
  }
  r->next = nullptr;
  r->stage = Stage::kBacklog;
  if (!backlog_head_) {
    backlog_head_ = backlog_tail_ = r;
  } else if (r->tag == Tag::kHead) {
    // HEAD OF QUEUE goes ahead of every request still waiting for room.
    r->next = backlog_head_;
    backlog_head_ = r;
  } else {
    backlog_tail_->next = r;
    backlog_tail_ = r;
  }
}

int Engine::Dispatch() {
  while (backlog_head_ && in_backend_ < backend_->capacity()) {
    Request* r = backlog_head_;
    if (!backend_->Prepare(r)) break;
    backlog_head_ = r->next;
    if (!backlog_head_) backlog_tail_ = nullptr;
    r->next = nullptr;
    in_backend_++;
    r->stage = Stage::kIssued;
    if (trace_ && !r->issue_seq) r->issue_seq = ++trace_seq_;
  }
  if (hold_) return 0;
  int res = backend_->Submit();
  if (res < 0) {
    // The kernel is short of resources or must flush completions first.
    // Staged requests stay staged; ring our own doorbell so the next reap
    // pass retries even if no completion arrives to wake us.
    EventfdSignal(eventfd_);
  }
  return res;
}

void Engine::OnAttempt(Request* r, int64_t res) {
  in_backend_--;
  if (r->cancelled) {
    // Cancelled while in the kernel: this attempt is its last, whatever it got.
    Finish(r, res < 0 ? res : static_cast<int64_t>(r->done) + res);
    return;
  }
  if ((res == -EAGAIN || res == -EINTR) && r->retries++ < kMaxRetries) {
    Ready(r);
    return;
  }
  if (res < 0) {
    Finish(r, res);
    return;
  }
  if (!r->IsTransfer()) {
    // Discard and write-zeroes report the bytes they covered; flush 0.
    Finish(r, r->op == Op::kFlush ? 0 : static_cast<int64_t>(r->length));
    return;
  }
  r->done += static_cast<uint64_t>(res);
  if (res == 0 || r->done >= r->length) {
    // res == 0: a read at end of file returns what it got.
    Finish(r, static_cast<int64_t>(r->done));
    return;
  }
  // Short transfer in the middle: resubmit for the remainder.
  r->AdvanceIovecs(static_cast<uint64_t>(res));
  Ready(r);
}

void Engine::Finish(Request* r, int64_t result) {
  r->result = result;
  r->stage = Stage::kDone;
  if (trace_) r->complete_seq = ++trace_seq_;
  Device* dev = r->dev;
  // A write that extended the file (growable devices, or a partial write
  // before ENOSPC) moves the end: track the bytes that actually landed.
  bool zeroed = r->op == Op::kWriteZeroes && !(r->flags & kFlagUnmap) && result >= 0;
  uint64_t end = r->offset + (zeroed ? r->length : r->done);
  if ((r->op == Op::kWrite || zeroed) && end > dev->size) dev->size = end;
  dev->tasks.Complete(r, [this](Request* d) { Ready(d); });
  finished_.push_back(r);
  if (--dev->inflight == 0 && dev->closing) FreeDevice(dev);
}

void Engine::MuteEventfd(bool mute) {
  if (backend_->MuteEventfd(mute)) EventfdSignal(eventfd_);
}

bool Engine::SpinForCompletion(uint64_t spin_ns) {
  if (!in_backend_ || !finished_.empty() || !instant_.empty()) return false;
  int r = backend_->SubmitAndSpin(spin_ns);
  if (r == -EAGAIN || r == -EBUSY) EventfdSignal(eventfd_);  // as Dispatch: retry on the next pass
  return r != -EOPNOTSUPP;
}

size_t Engine::Process(CompletionSink* sink, bool drain_eventfd) {
  if (drain_eventfd) EventfdDrain(eventfd_);
  // What a completion callback staged goes out now, in the enter that also
  // posts completions the kernel holds (DEFER_TASKRUN).
  Dispatch();
  size_t delivered = 0;
  size_t next = 0;
  for (;;) {
    for (; next < finished_.size(); next++) {
      Request* r = finished_[next];
      inflight_--;
      delivered++;
      bool more = sink->OnComplete(r);
      FreeRequest(r);
      if (!more) {
        finished_.erase(finished_.begin(), finished_.begin() + static_cast<ptrdiff_t>(next + 1));
        // Sink is full: the caller hands this batch to JS and calls again.
        EventfdSignal(eventfd_);
        return delivered;
      }
    }
    finished_.clear();
    next = 0;
    // Finishing may enable more of them (dormant behind an ORDERED one).
    bool instant = !instant_.empty();
    while (!instant_.empty()) {
      std::vector<Request*> now;
      now.swap(instant_);
      for (Request* r : now) Finish(r, 0);
    }
    unsigned reaped = backend_->Reap(this, 4096);
    Dispatch();
    if (!reaped && !instant && finished_.empty()) break;
  }
  return delivered;
}

void Engine::Drain(CompletionSink* sink) {
  while (inflight_) {
    Dispatch();
    if (!Process(sink) && inflight_) {
      if (in_backend_) {
        backend_->Wait();
      } else {
        // Submission refused for now; try again shortly.
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
}

}  // namespace blockring
