#include "blk_backend.h"

#include <errno.h>

#include <algorithm>
#include <cstring>

#include "../kernel/eventfd.h"
#include "../kernel/file.h"
#include "../kernel/socket.h"

namespace blockring {
namespace vhost {
namespace {

constexpr uint32_t kSegMax = 126;                  // what a 128-entry queue can carry besides header and status
constexpr uint32_t kMaxDiscardSectors = 1u << 22;  // 2 GiB per discard or write-zeroes request
constexpr uint32_t kMaxConfigBytes = 256;

template <typename T>
bool ReadPayload(const uint8_t* p, uint32_t size, T* out) {
  if (size < sizeof(T)) return false;
  memcpy(out, p, sizeof(T));
  return true;
}

void StartReply(uint32_t request, uint32_t size, std::vector<uint8_t>* reply) {
  MsgHeader h = {request, kVersion | kFlagReply, size};
  reply->resize(sizeof(h) + size);
  memcpy(reply->data(), &h, sizeof(h));
}

void ReplyU64(uint32_t request, uint64_t v, std::vector<uint8_t>* reply) {
  StartReply(request, sizeof(v), reply);
  memcpy(reply->data() + sizeof(MsgHeader), &v, sizeof(v));
}

bool HasOwnReply(uint32_t request) {
  return request == kGetFeatures || request == kGetProtocolFeatures || request == kGetVringBase ||
         request == kGetQueueNum || request == kGetConfig;
}

void CloseAll(int* fds, size_t n) {
  for (size_t i = 0; i < n; i++) CloseFd(fds[i]);
}

}  // namespace

BlkBackend::BlkBackend(Engine* engine, Device* dev, Delegate* delegate, const std::atomic<bool>* stopping,
                       const BlkOptions& options, int epoll_fd)
    : engine_(engine),
      dev_(dev),
      delegate_(delegate),
      stopping_(stopping),
      options_(options),
      epoll_(epoll_fd),
      queues_(options.num_queues) {
  offered_ = kFeatureVersion1 | kFeatureIndirectDesc | kFeatureEventIdx | kFeatureProtocolFeatures | kBlkSegMax |
             kBlkBlkSize | kBlkFlush | kBlkMq;
  if (options.read_only) {
    offered_ |= kBlkRo;
  } else {
    offered_ |= kBlkDiscard | kBlkWriteZeroes;
  }
  uint32_t sectors_per_block = options.block_size / kSectorSize;
  config_.capacity = options.size / kSectorSize;
  config_.seg_max = kSegMax;
  config_.blk_size = options.block_size;
  config_.num_queues = options.num_queues;
  config_.max_discard_sectors = kMaxDiscardSectors;
  config_.max_discard_seg = 1;
  config_.discard_sector_alignment = sectors_per_block;
  config_.max_write_zeroes_sectors = kMaxDiscardSectors;
  config_.max_write_zeroes_seg = 1;
  config_.write_zeroes_may_unmap = 1;
}

BlkBackend::~BlkBackend() { Disconnect(); }

bool BlkBackend::Handle(const MsgHeader& h, const uint8_t* p, int* fds, size_t nfds, std::vector<uint8_t>* reply) {
  reply->clear();
  // Messages that carry fds take them; for every other message they are
  // closed here so a frontend cannot make us leak descriptors.
  bool takes_fds = h.request == kSetMemTable || h.request == kSetVringKick || h.request == kSetVringCall ||
                   h.request == kSetVringErr;
  if (!takes_fds) {
    CloseAll(fds, nfds);
    nfds = 0;
  }
  uint32_t size = h.size;
  bool ok;
  switch (h.request) {
    case kGetFeatures: ok = GetFeatures(reply); break;
    case kSetFeatures: ok = SetFeatures(p, size); break;
    case kSetOwner: ok = SetOwner(); break;
    case kResetOwner:
    case kResetDevice: ok = ResetOwner(); break;
    case kSetMemTable: ok = SetMemTable(p, size, fds, nfds); break;
    case kSetVringNum: ok = SetVringNum(p, size); break;
    case kSetVringAddr: ok = SetVringAddr(p, size); break;
    case kSetVringBase: ok = SetVringBase(p, size); break;
    case kGetVringBase: ok = GetVringBase(p, size, reply); break;
    case kSetVringKick:
    case kSetVringCall:
    case kSetVringErr: ok = SetVringFd(h.request, p, size, fds, nfds); break;
    case kGetProtocolFeatures: ok = GetProtocolFeatures(reply); break;
    case kSetProtocolFeatures: ok = SetProtocolFeatures(p, size); break;
    case kGetQueueNum: ok = GetQueueNum(reply); break;
    case kSetVringEnable: ok = SetVringEnable(p, size); break;
    case kGetConfig: ok = GetConfig(p, size, reply); break;
    case kSetConfig: ok = SetConfig(p, size); break;
    default: ok = false; break;  // not offered (logging, postcopy, inflight, ...)
  }
  if (HasOwnReply(h.request)) return ok;
  if ((h.flags & kFlagNeedReply) && (protocol_ & kProtocolReplyAck)) {
    ReplyU64(h.request, ok ? 0 : 1, reply);
    return true;  // the frontend hears about the failure and decides
  }
  return ok;
}

bool BlkBackend::GetFeatures(std::vector<uint8_t>* reply) {
  ReplyU64(kGetFeatures, offered_, reply);
  return true;
}

bool BlkBackend::SetFeatures(const uint8_t* p, uint32_t size) {
  uint64_t f;
  if (!ReadPayload(p, size, &f) || (f & ~offered_)) return false;
  acked_ = f;
  features_set_ = true;
  return true;
}

bool BlkBackend::SetOwner() { return true; }

bool BlkBackend::ResetOwner() {
  ResetState();
  return true;
}

bool BlkBackend::SetMemTable(const uint8_t* p, uint32_t size, int* fds, size_t nfds) {
  MemTable t = {};
  memcpy(&t, p, std::min<size_t>(size, sizeof(t)));
  // The payload holds nregions entries (not always all eight), one fd each.
  if (size < 8 || t.nregions == 0 || t.nregions > kMaxMemRegions || size < 8 + t.nregions * sizeof(MemRegion) ||
      nfds != t.nregions) {
    CloseAll(fds, nfds);
    return false;
  }
  // Buffers of requests in flight point into the old mappings.
  Quiesce();
  int r = mem_.Set(t.regions, t.nregions, fds);
  for (uint32_t q = 0; q < queues_.size(); q++) {
    // Ring addresses now translate differently.
    if (queues_[q].vq.started()) {
      StartQueue(q);
    } else {
      queues_[q].vq.ForgetRings();
    }
  }
  return r == 0;
}

BlkBackend::Queue* BlkBackend::QueueAt(uint64_t index) {
  return index < queues_.size() ? &queues_[static_cast<size_t>(index)] : nullptr;
}

bool BlkBackend::SetVringNum(const uint8_t* p, uint32_t size) {
  VringState s;
  if (!ReadPayload(p, size, &s)) return false;
  Queue* q = QueueAt(s.index);
  // Split rings: a power of two up to 32768 (2.7).
  if (!q || q->vq.started() || !s.num || s.num > kMaxQueueSize || (s.num & (s.num - 1))) return false;
  q->vq.num = s.num;
  return true;
}

bool BlkBackend::SetVringAddr(const uint8_t* p, uint32_t size) {
  VringAddr a;
  if (!ReadPayload(p, size, &a)) return false;
  Queue* q = QueueAt(a.index);
  if (!q) return false;
  q->vq.desc_uva = a.desc_user_addr;
  q->vq.avail_uva = a.avail_user_addr;
  q->vq.used_uva = a.used_user_addr;
  q->vq.addr_set = true;
  if (q->vq.started()) StartQueue(a.index);
  return true;
}

bool BlkBackend::SetVringBase(const uint8_t* p, uint32_t size) {
  VringState s;
  if (!ReadPayload(p, size, &s)) return false;
  Queue* q = QueueAt(s.index);
  if (!q || q->vq.started() || s.num > 0xffff) return false;
  q->vq.last_avail = static_cast<uint16_t>(s.num);
  return true;
}

bool BlkBackend::GetVringBase(const uint8_t* p, uint32_t size, std::vector<uint8_t>* reply) {
  VringState s;
  if (!ReadPayload(p, size, &s)) return false;
  Queue* q = QueueAt(s.index);
  if (!q) return false;
  // The ring stops; the frontend may reuse it once we answer, so every
  // request popped from it must have completed first.
  StopQueue(q);
  Quiesce();
  if (q->kick >= 0) {
    CloseFd(q->kick);
    q->kick = -1;
  }
  VringState out = {s.index, q->vq.last_avail};
  StartReply(kGetVringBase, sizeof(out), reply);
  memcpy(reply->data() + sizeof(MsgHeader), &out, sizeof(out));
  return true;
}

bool BlkBackend::SetVringFd(uint32_t request, const uint8_t* p, uint32_t size, int* fds, size_t nfds) {
  uint64_t v;
  bool no_fd = ReadPayload(p, size, &v) && (v & kVringNoFd);
  Queue* q = size >= 8 ? QueueAt(v & kVringIndexMask) : nullptr;
  // Bits above the index and the no-fd flag are reserved.
  if (!q || (v & ~(kVringIndexMask | kVringNoFd)) || nfds != (no_fd ? 0u : 1u)) {
    CloseAll(fds, nfds);
    return false;
  }
  int fd = no_fd ? -1 : fds[0];
  uint32_t index = static_cast<uint32_t>(v & kVringIndexMask);
  if (request == kSetVringKick) {
    StopQueue(q);
    if (q->kick >= 0) CloseFd(q->kick);
    q->kick = fd;
    // Without protocol features a ring is enabled as soon as it starts.
    if (!(acked_ & kFeatureProtocolFeatures)) q->enabled = true;
    if (fd < 0) return true;  // polling mode is not offered: the ring stays idle
    if (EpollAdd(epoll_, fd, kTagKickBase + index) < 0) return false;
    q->watched = true;
    StartQueue(index);
    return true;
  }
  int* slot = request == kSetVringCall ? &q->call : &q->err;
  if (*slot >= 0) CloseFd(*slot);
  *slot = fd;
  return true;
}

bool BlkBackend::GetProtocolFeatures(std::vector<uint8_t>* reply) {
  ReplyU64(kGetProtocolFeatures, kProtocolMq | kProtocolReplyAck | kProtocolConfig | kProtocolResetDevice, reply);
  return true;
}

bool BlkBackend::SetProtocolFeatures(const uint8_t* p, uint32_t size) {
  uint64_t f;
  uint64_t offered = kProtocolMq | kProtocolReplyAck | kProtocolConfig | kProtocolResetDevice;
  if (!ReadPayload(p, size, &f) || (f & ~offered)) return false;
  protocol_ = f;
  return true;
}

bool BlkBackend::GetQueueNum(std::vector<uint8_t>* reply) {
  ReplyU64(kGetQueueNum, options_.num_queues, reply);
  return true;
}

bool BlkBackend::SetVringEnable(const uint8_t* p, uint32_t size) {
  VringState s;
  if (!ReadPayload(p, size, &s)) return false;
  Queue* q = QueueAt(s.index);
  if (!q || s.num > 1) return false;
  q->enabled = s.num == 1;
  if (q->enabled) Process(s.index);
  return true;
}

bool BlkBackend::GetConfig(const uint8_t* p, uint32_t size, std::vector<uint8_t>* reply) {
  ConfigHeader c;
  if (!ReadPayload(p, size, &c) || c.size > kMaxConfigBytes || size != sizeof(c) + c.size) return false;
  StartReply(kGetConfig, size, reply);
  uint8_t* out = reply->data() + sizeof(MsgHeader);
  memcpy(out, &c, sizeof(c));
  uint8_t* data = out + sizeof(c);
  memset(data, 0, c.size);
  // Fields past what we describe (secure erase, zoned) read as zero.
  const auto* cfg = reinterpret_cast<const uint8_t*>(&config_);
  if (c.offset < sizeof(config_)) {
    size_t n = std::min<size_t>(c.size, sizeof(config_) - c.offset);
    memcpy(data, cfg + c.offset, n);
  }
  return true;
}

bool BlkBackend::SetConfig(const uint8_t* p, uint32_t size) {
  // The writeback byte is the only writable field, and only with CONFIG_WCE,
  // which is not offered.
  (void)p;
  (void)size;
  return false;
}

void BlkBackend::StartQueue(uint32_t index) {
  Queue& q = queues_[index];
  if (!q.vq.Start(mem_, (acked_ & kFeatureEventIdx) != 0, (acked_ & kFeatureIndirectDesc) != 0)) {
    q.vq.MarkBroken();
    if (q.err >= 0) EventfdSignal(q.err);
    return;
  }
  Process(index);  // buffers may already be waiting (a reconnect, a restarted backend)
}

void BlkBackend::StopQueue(Queue* q) {
  if (q->watched) EpollRemove(epoll_, q->kick);
  q->watched = false;
  q->vq.Stop();
}

void BlkBackend::CloseQueueFds(Queue* q) {
  StopQueue(q);
  for (int* fd : {&q->kick, &q->call, &q->err}) {
    if (*fd >= 0) CloseFd(*fd);
    *fd = -1;
  }
}

void BlkBackend::ResetState() {
  for (Queue& q : queues_) StopQueue(&q);
  Quiesce();
  for (Queue& q : queues_) {
    CloseQueueFds(&q);
    q = Queue();
  }
  acked_ = 0;
  protocol_ = 0;
  features_set_ = false;
}

void BlkBackend::Disconnect() {
  ResetState();
  mem_.Clear();
}

void BlkBackend::Quiesce() {
  // An image device's parked requests wait for the owner's format layer:
  // keep passing them on and resuming them until none is in flight (unless
  // the server is stopping: then Drain fails what is parked).
  while (delegate_ && dev_ && engine_->inflight() && !stopping_->load()) {
    engine_->Dispatch();
    engine_->Process(this);
    PostParked();
    if (!engine_->inflight()) break;
    WaitFd(delegate_->event_fd(), false, 1);
    OnDelegate();
  }
  engine_->Drain(this);
  // Delegated requests finish on the owner's thread; unless the server is
  // stopping (then the owner thread is the one waiting for us, and cancels
  // them after), wait for each.
  while (delegate_ && !dev_ && delegate_->outstanding() && !stopping_->load()) {
    WaitFd(delegate_->event_fd(), false, 50);
    OnDelegate();
  }
  // What is left are answers for parked requests that Drain already failed.
  if (delegate_ && dev_) OnDelegate();
  SignalCalls();
}

void BlkBackend::OnDelegate() {
  bool resumed = false;
  for (DelegatedRequest* r : delegate_->TakeCompleted()) {
    if (r->parked) {
      // False when Drain failed it meanwhile.
      if (r->retry) {
        engine_->RetryParked(r->token);
      } else {
        engine_->FinishParked(r->token, r->result);
      }
      resumed = true;
    } else {
      bool transfer = r->op == Op::kRead || r->op == Op::kWrite;
      Finish(static_cast<Task*>(r->task), r->result, transfer);
    }
    delete r;
  }
  if (resumed) engine_->Dispatch();
  SignalCalls();
}

void BlkBackend::PostParked() {
  if (!delegate_ || !dev_) return;
  uint32_t token;
  Request* r;
  while (engine_->TakeParked(&token, &r)) {
    auto* d = new DelegatedRequest;
    d->op = r->op;
    d->flags = r->flags;
    d->offset = r->offset;
    d->length = r->length;
    d->parked = true;
    d->token = token;
    if (r->IsTransfer()) d->iov.assign(r->iov, r->iov + r->iovcnt);
    delegate_->Post(d);
  }
}

void BlkBackend::OnKick(uint32_t index) {
  if (index >= queues_.size()) return;
  Queue& q = queues_[index];
  if (q.kick >= 0) EventfdDrain(q.kick);
  Process(index);
}

void BlkBackend::OnEngine() {
  engine_->Process(this);
  PostParked();
  SignalCalls();
}

BlkBackend::Task* BlkBackend::NewTask() {
  if (!free_tasks_) {
    tasks_.push_back(std::make_unique<Task>());
    return tasks_.back().get();
  }
  Task* t = free_tasks_;
  free_tasks_ = t->next_free;
  *t = Task();
  return t;
}

void BlkBackend::Process(uint32_t index) {
  Queue& q = queues_[index];
  if (!q.enabled || mem_.empty()) return;
  for (;;) {
    Virtqueue::Pop got;
    while ((got = q.vq.Next(mem_, &chain_)) == Virtqueue::Pop::kChain) {
      ParseBlkRequest(chain_, &req_);
      Task* t = NewTask();
      t->queue = static_cast<uint16_t>(index);
      t->head = chain_.head;
      t->status = req_.status;
      inflight_++;
      if (!req_.status) {
        Complete(t, kBlkStatusIoErr);  // nowhere to say so; the used entry carries length 0
      } else if (chain_.bad_address || !req_.header_ok) {
        Complete(t, kBlkStatusIoErr);
      } else {
        Submit(index, req_, t);
      }
    }
    if (got == Virtqueue::Pop::kBroken) {
      // The ring is malformed: stop serving it (virtio 2.1.2: the device
      // may treat it as needing reset) and tell the frontend.
      if (q.err >= 0) EventfdSignal(q.err);
      break;
    }
    if (!q.vq.ArmKick()) break;
  }
  engine_->Dispatch();
  SignalCalls();
}

void BlkBackend::Submit(uint32_t /*q*/, const BlkRequest& req, Task* t) {
  uint64_t cap_bytes = (options_.size / kSectorSize) * kSectorSize;
  auto in_range = [&](uint64_t sector, uint64_t bytes) {
    return sector <= cap_bytes / kSectorSize && bytes <= cap_bytes - sector * kSectorSize;
  };
  Op op;
  uint64_t offset = 0, length = 0;
  uint16_t flags = 0;
  switch (req.type) {
    case kBlkTypeIn:
    case kBlkTypeOut: {
      bool write = req.type == kBlkTypeOut;
      if ((write && options_.read_only) || req.data_len % kSectorSize || !in_range(req.sector, req.data_len) ||
          req.data.size() > Virtqueue::kMaxSegments) {
        Complete(t, kBlkStatusIoErr);
        return;
      }
      if (!req.data_len) {
        Complete(t, kBlkStatusOk);
        return;
      }
      op = write ? Op::kWrite : Op::kRead;
      offset = req.sector * kSectorSize;
      length = req.data_len;
      t->used_len = write ? 1 : static_cast<uint32_t>(std::min<uint64_t>(req.data_len + 1, UINT32_MAX));
      break;
    }
    case kBlkTypeFlush:
      op = Op::kFlush;
      t->used_len = 1;
      break;
    case kBlkTypeGetId: {
      char id[kBlkIdBytes] = {};
      memcpy(id, options_.serial.data(), std::min<size_t>(options_.serial.size(), sizeof(id)));
      t->used_len = static_cast<uint32_t>(ScatterBytes(req.data, id, sizeof(id))) + 1;
      Complete(t, kBlkStatusOk);
      return;
    }
    case kBlkTypeDiscard:
    case kBlkTypeWriteZeroes: {
      BlkDiscardSegment s;
      bool zeroes = req.type == kBlkTypeWriteZeroes;
      t->used_len = 1;
      if (options_.read_only || req.data_len != sizeof(s) || GatherBytes(req.data, &s, sizeof(s)) != sizeof(s)) {
        Complete(t, options_.read_only ? kBlkStatusIoErr : kBlkStatusUnsupported);
        return;
      }
      uint32_t align = options_.block_size / kSectorSize;
      // Discard defines no flags; write-zeroes only unmap (bit 0).
      if ((s.flags & ~(zeroes ? 1u : 0u)) || s.num_sectors > kMaxDiscardSectors) {
        Complete(t, kBlkStatusUnsupported);
        return;
      }
      if (!in_range(s.sector, static_cast<uint64_t>(s.num_sectors) * kSectorSize) || s.sector % align ||
          s.num_sectors % align) {
        Complete(t, kBlkStatusIoErr);
        return;
      }
      op = zeroes ? Op::kWriteZeroes : Op::kDiscard;
      offset = s.sector * kSectorSize;
      length = static_cast<uint64_t>(s.num_sectors) * kSectorSize;
      if (zeroes && (s.flags & 1)) flags |= kFlagUnmap;
      if (!length) {
        Complete(t, kBlkStatusOk);
        return;
      }
      break;
    }
    default:
      t->used_len = 1;
      Complete(t, kBlkStatusUnsupported);
      return;
  }
  if (delegate_ && !dev_) {
    auto* d = new DelegatedRequest;
    d->op = op;
    d->flags = flags;
    d->offset = offset;
    d->length = length;
    if (op == Op::kRead || op == Op::kWrite) {
      d->iov = req.data;
      t->expect = length;
    }
    d->task = t;
    delegate_->Post(d);
    return;
  }
  Request* r = engine_->NewRequest();
  r->user_data = reinterpret_cast<uintptr_t>(t);
  r->op = op;
  // A virtio-blk flush covers every write completed before it; as an
  // ORDERED request it also waits for writes still in flight.
  r->tag = op == Op::kFlush ? Tag::kOrdered : Tag::kSimple;
  r->flags = flags;
  r->dev = dev_;
  r->offset = offset;
  r->length = length;
  if (r->IsTransfer()) {
    r->SetIovecs(static_cast<uint32_t>(req.data.size()));
    std::copy(req.data.begin(), req.data.end(), r->iov);
    t->expect = length;
  }
  engine_->Accept(r);
}

bool BlkBackend::OnComplete(Request* r) {
  Finish(reinterpret_cast<Task*>(static_cast<uintptr_t>(r->user_data)), r->result, r->IsTransfer());
  return true;
}

void BlkBackend::Finish(Task* t, int64_t result, bool transfer) {
  bool ok = result >= 0 && (!transfer || static_cast<uint64_t>(result) == t->expect);
  Complete(t, ok ? kBlkStatusOk : kBlkStatusIoErr);
}

void BlkBackend::Complete(Task* t, uint8_t status) {
  Queue& q = queues_[t->queue];
  uint32_t len = 0;
  if (t->status) {
    // The status byte is guest memory inside a mapped region (checked when
    // the chain was popped); written before the used index is published.
    *t->status = status;
    len = status == kBlkStatusOk ? t->used_len : 1;
    if (!len) len = 1;
  }
  // A queue stopped or reset meanwhile keeps its rings mapped until the
  // memory table goes, which waits for us (Quiesce), so this stays in bounds.
  if (q.vq.has_rings()) q.vq.PushUsed(t->head, len);
  q.call_pending = true;
  inflight_--;
  served_++;
  t->next_free = free_tasks_;
  free_tasks_ = t;
}

void BlkBackend::SignalCalls() {
  for (Queue& q : queues_) {
    if (!q.call_pending) continue;
    q.call_pending = false;
    if (q.call >= 0 && q.vq.ShouldCall()) EventfdSignal(q.call);
  }
}

}  // namespace vhost
}  // namespace blockring
