// SCSI task-attribute ordering (SAM-5 SIMPLE / ORDERED / HEAD OF QUEUE) for
// one device's task set. Pure bookkeeping: no syscalls, no allocation.
//
// A request is dormant until it may be issued, then enabled until it
// completes. "Older" means accepted earlier by this task set.
//   SIMPLE   enabled once every older ORDERED and HEAD OF QUEUE completed.
//   ORDERED  enabled once every older request completed.
//   HEAD     enabled on arrival.
// A failed request counts as completed.
//
// Invariant: a dormant request is older than every dormant request behind it
// and newer than every enabled request except HEAD OF QUEUE requests that
// arrived after it. Release therefore only ever looks at the dormant front.
#pragma once

#include <cstdint>

#include "request.h"

namespace blockring {

class SeqList {
 public:
  explicit SeqList(ListHook Request::*hook) : hook_(hook) {}
  bool empty() const { return head_ == nullptr; }
  Request* front() const { return head_; }
  // Inserts by seq; O(1) when r is the newest, which is the common case.
  void Insert(Request* r);
  void Remove(Request* r);

 private:
  ListHook Request::*hook_;
  Request* head_ = nullptr;
  Request* tail_ = nullptr;
};

class TaskSet {
 public:
  TaskSet() : active_(&Request::active), barriers_(&Request::barrier) {}

  // Accepts r. Returns true when r is enabled now (caller issues it); false
  // when it stays dormant until a completion releases it.
  bool Arrive(Request* r);

  // r completed (successfully or not). Calls enable(req) for every request
  // this releases, oldest first. Every completion, whatever its tag, looks
  // at the dormant front again (no lost wakeups), and an ORDERED request is
  // enabled only when the oldest active request is newer than it (after the
  // last older request, never together with another ORDERED).
  template <typename F>
  void Complete(Request* r, F&& enable) {
    active_.Remove(r);
    if (r->tag != Tag::kSimple) barriers_.Remove(r);
    EnableReleased(enable);
  }

  // Takes dormant r out of the task set (a cancelled request that was never
  // enabled), then enables what that releases, as Complete does.
  template <typename F>
  bool RemoveDormant(Request* r, F&& enable) {
    Request** link = &dormant_head_;
    Request* prev = nullptr;
    while (*link && *link != r) {
      prev = *link;
      link = &prev->dormant_next;
    }
    if (!*link) return false;
    *link = r->dormant_next;
    if (dormant_tail_ == r) dormant_tail_ = prev;
    r->dormant_next = nullptr;
    EnableReleased(enable);
    return true;
  }

  bool has_dormant() const { return dormant_head_ != nullptr; }
  bool has_barrier() const { return !barriers_.empty() || dormant_head_ != nullptr; }

 private:
  // Enables, in order, the dormant requests at the head that may now run
  // (after a completion or a removal changed what holds them back).
  template <typename F>
  void EnableReleased(F& enable) {
    while (dormant_head_ && MayEnable(dormant_head_)) {
      Request* d = dormant_head_;
      dormant_head_ = d->dormant_next;
      if (!dormant_head_) dormant_tail_ = nullptr;
      d->dormant_next = nullptr;
      Enable(d);
      enable(d);
    }
  }

  bool MayEnable(const Request* r) const;
  void Enable(Request* r);

  uint64_t next_seq_ = 1;
  SeqList active_;
  SeqList barriers_;
  Request* dormant_head_ = nullptr;
  Request* dormant_tail_ = nullptr;
};

}  // namespace blockring
