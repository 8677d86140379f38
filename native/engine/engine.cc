#include "engine.h"

#include <errno.h>

#include <algorithm>
#include <cstring>

#include "../kernel/eventfd.h"
#include "../kernel/file.h"
#include "../kernel/thread.h"

namespace blockring {
namespace {

constexpr uint32_t kMaxRetries = 1000;  // EAGAIN/EINTR attempts per request
constexpr size_t kSlabSize = 256;

// Points r's iovecs at bytes [at, at + len) of iov.
void SliceIovecs(const iovec* iov, uint32_t cnt, uint64_t at, uint64_t len, Request* r) {
  uint32_t first = 0;
  while (first < cnt && at >= iov[first].iov_len) at -= iov[first++].iov_len;
  uint32_t n = 0;
  for (uint64_t left = len + at, k = first; left && k < cnt; k++, n++) left -= std::min<uint64_t>(left, iov[k].iov_len);
  r->SetIovecs(n);
  for (uint32_t k = 0; k < n; k++) {
    const iovec& src = iov[first + k];
    uint64_t skip = k == 0 ? at : 0;
    uint64_t take = std::min<uint64_t>(src.iov_len - skip, len);
    r->iov[k].iov_base = static_cast<char*>(src.iov_base) + skip;
    r->iov[k].iov_len = take;
    len -= take;
  }
}

void ZeroIovecs(const iovec* iov, uint32_t cnt, uint64_t at, uint64_t len) {
  for (uint32_t k = 0; k < cnt && len; k++) {
    if (at >= iov[k].iov_len) {
      at -= iov[k].iov_len;
      continue;
    }
    uint64_t n = std::min<uint64_t>(iov[k].iov_len - at, len);
    std::memset(static_cast<char*>(iov[k].iov_base) + at, 0, n);
    len -= n;
    at = 0;
  }
}

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
    if (dev->fd >= 0 && !dev->map) CloseFd(dev->fd);
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

Device* Engine::AddImageDevice(const DeviceConfig& config, std::shared_ptr<ClusterMap> map, Device* file,
                               Device* backing) {
  Device* dev = AddDevice(-1, config);
  dev->map = std::move(map);
  dev->file = file;
  dev->backing = backing;
  return dev;
}

Device* Engine::GetDevice(uint32_t handle) const {
  if (handle >= devices_.size()) return nullptr;
  Device* dev = devices_[handle].get();
  return (dev->fd >= 0 || dev->map) && !dev->closing ? dev : nullptr;
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
  if (dev->map) {
    dev->map.reset();
    dev->file = dev->backing = nullptr;
  } else {
    backend_->ReleaseDevice(dev);
    CloseFd(dev->fd);
  }
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
      if (!dev->tasks.RemoveDormant(r, [this](Request* d) { Ready(d); })) return CancelResult::kRunsOut;
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
    case Stage::kTranslated:
      // An image device's request, split into pieces or parked: it runs out.
      return CancelResult::kRunsOut;
    case Stage::kInstant:
    case Stage::kDone:
      break;
  }
  return CancelResult::kFinished;
}

void Engine::Ready(Request* r) {
  if (r->dev->map) {
    r->stage = Stage::kTranslated;
    Translate(r);
    return;
  }
  if (r->length == 0 && (r->op == Op::kDiscard || r->op == Op::kWriteZeroes)) {
    // Nothing to deallocate or zero: complete with 0 like a zero-length
    // write, in order, without the kernel (fallocate refuses length 0).
    if (trace_ && !r->issue_seq) r->issue_seq = ++trace_seq_;
    r->result = 0;
    if (instant_.empty()) EventfdSignal(eventfd_);
    r->stage = Stage::kInstant;
    instant_.push_back(r);
    return;
  }
  if (!backlog_head_ && in_backend_ < backend_->capacity() && backend_->Prepare(r)) {
    Issued(r);
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

// The backend took r (Prepare): it is the kernel's from here on.
void Engine::Issued(Request* r) {
  in_backend_++;
  r->stage = Stage::kIssued;
  if (trace_ && !r->issue_seq) r->issue_seq = ++trace_seq_;
  WriteLog* log = r->dev->log.get();
  if (log && !r->log_entry && r->op != Op::kRead) {
    // The first attempt only: a short transfer's resubmission is the same write.
    LogKind kind = r->op == Op::kWrite ? LogKind::kWrite : r->op == Op::kFlush ? LogKind::kFlush : LogKind::kZeroes;
    r->log_entry = log->Issue(kind, r->offset, r->length, r->iov, r->iovcnt) + 1;
  }
}

int Engine::Dispatch() {
  while (backlog_head_ && in_backend_ < backend_->capacity()) {
    Request* r = backlog_head_;
    if (!backend_->Prepare(r)) break;
    backlog_head_ = r->next;
    if (!backlog_head_) backlog_tail_ = nullptr;
    r->next = nullptr;
    Issued(r);
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
  if (r->log_entry && result >= 0) r->dev->log->Complete(r->log_entry - 1);
  if (r->parent) {
    PieceDone(r);
    return;
  }
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
      for (Request* r : now) Finish(r, r->result);
    }
    unsigned reaped = backend_->Reap(this, 4096);
    Dispatch();
    if (!reaped && !instant && finished_.empty()) break;
  }
  return delivered;
}

// Runs when the task set enabled r, a request on an image device: split
// into pieces on the image file and the backing device, or parked.
void Engine::Translate(Request* r) {
  if (trace_ && !r->issue_seq) r->issue_seq = ++trace_seq_;
  Device* dev = r->dev;
  bool fua = r->flags & kFlagFua;
  if (!r->IsTransfer() || (r->op == Op::kWrite && fua)) {
    Park(r);
    return;
  }
  uint64_t size = dev->map->size();
  uint64_t len = r->offset >= size ? 0 : std::min(r->length, size - r->offset);
  if (len && !dev->map->Plan(r->op == Op::kWrite, r->offset, len, &plan_)) {
    Park(r);
    return;
  }
  r->result = static_cast<int64_t>(len);  // reads stop at the end of the image
  r->done = len;
  // Build every piece before accepting any: accepting one may translate it
  // again (a backing image) and reuse plan_.
  Request* first = nullptr;
  Request** link = &first;
  if (!len) plan_.clear();
  for (const ClusterMap::Piece& p : plan_) {
    Device* target = p.kind == ClusterMap::PieceKind::kHost ? dev->file : dev->backing;
    if (p.kind == ClusterMap::PieceKind::kZero || !target) {
      ZeroIovecs(r->iov, r->iovcnt, p.at, p.length);
      continue;
    }
    Request* c = NewRequest();
    c->op = r->op;
    c->flags = r->flags & kFlagFua;
    c->dev = target;
    c->offset = p.target;
    c->length = p.length;
    c->parent = r;
    SliceIovecs(r->iov, r->iovcnt, p.at, p.length, c);
    c->user_data = p.at;  // where it lies in the parent (zero-filling a short backing read)
    r->pieces++;
    *link = c;
    link = &c->next;
  }
  if (!r->pieces) {
    if (instant_.empty()) EventfdSignal(eventfd_);
    instant_.push_back(r);
    return;
  }
  while (first) {
    Request* c = first;
    first = c->next;
    c->next = nullptr;
    Accept(c);
  }
}

void Engine::PieceDone(Request* c) {
  Request* r = c->parent;
  Device* dev = c->dev;
  dev->tasks.Complete(c, [this](Request* d) { Ready(d); });
  if (c->result < 0) {
    if (!r->piece_error) r->piece_error = c->result;
  } else if (c->done < c->length) {
    if (c->op == Op::kRead) {
      // Past the end of a shorter backing file: zeros.
      ZeroIovecs(r->iov, r->iovcnt, c->user_data + c->done, c->length - c->done);
    } else if (!r->piece_error) {
      r->piece_error = -EIO;
    }
  }
  if (c->op == Op::kWrite && c->offset + c->done > dev->size) dev->size = c->offset + c->done;
  inflight_--;
  if (--dev->inflight == 0 && dev->closing) FreeDevice(dev);
  FreeRequest(c);
  if (--r->pieces == 0) Finish(r, r->piece_error ? r->piece_error : r->result);
}

void Engine::Park(Request* r) {
  uint32_t slot;
  if (!free_parked_.empty()) {
    slot = free_parked_.back();
    free_parked_.pop_back();
    parked_[slot] = r;
  } else {
    slot = static_cast<uint32_t>(parked_.size());
    parked_.push_back(r);
  }
  r->park_token = slot + 1;
  if (new_parked_next_ == new_parked_.size()) EventfdSignal(eventfd_);
  new_parked_.push_back(slot + 1);
}

bool Engine::TakeParked(uint32_t* token, Request** r) {
  while (new_parked_next_ < new_parked_.size()) {
    uint32_t t = new_parked_[new_parked_next_++];
    Request* p = ParkedRequest(t);
    if (!p) continue;  // finished meanwhile (teardown)
    *token = t;
    *r = p;
    return true;
  }
  new_parked_.clear();
  new_parked_next_ = 0;
  return false;
}

Request* Engine::ParkedRequest(uint32_t token) const {
  if (token == 0 || token > parked_.size()) return nullptr;
  return parked_[token - 1];
}

Request* Engine::Unpark(uint32_t token) {
  Request* r = ParkedRequest(token);
  if (!r) return nullptr;
  parked_[token - 1] = nullptr;
  free_parked_.push_back(token - 1);
  r->park_token = 0;
  return r;
}

void Engine::Wake() { EventfdSignal(eventfd_); }

bool Engine::RetryParked(uint32_t token, bool wake) {
  Request* r = Unpark(token);
  if (!r) return false;
  Translate(r);
  if (wake) EventfdSignal(eventfd_);
  return true;
}

bool Engine::FinishParked(uint32_t token, int64_t result) {
  Request* r = Unpark(token);
  if (!r) return false;
  r->done = result > 0 ? static_cast<uint64_t>(result) : 0;
  Finish(r, result);
  EventfdSignal(eventfd_);
  return true;
}

void Engine::Drain(CompletionSink* sink) {
  // Nobody resolves parked requests any more.
  for (uint32_t t = 1; t <= parked_.size(); t++) {
    if (parked_[t - 1]) FinishParked(t, -ECANCELED);
  }
  new_parked_.clear();
  new_parked_next_ = 0;
  while (inflight_) {
    Dispatch();
    if (!Process(sink) && inflight_) {
      if (in_backend_) {
        backend_->Wait();
      } else {
        // Submission refused for now; try again shortly.
        SleepMs(1);
      }
    }
  }
}

}  // namespace blockring
