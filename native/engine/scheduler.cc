#include "scheduler.h"

namespace blockring {

void SeqList::Insert(Request* r) {
  ListHook& h = r->*hook_;
  // Walk back over newer entries: only HEAD OF QUEUE requests that overtook
  // r can be newer, so this loop is short.
  Request* after = tail_;
  while (after && after->seq > r->seq) after = (after->*hook_).prev;
  h.prev = after;
  h.next = after ? (after->*hook_).next : head_;
  if (h.next) {
    (h.next->*hook_).prev = r;
  } else {
    tail_ = r;
  }
  if (after) {
    (after->*hook_).next = r;
  } else {
    head_ = r;
  }
}

void SeqList::Remove(Request* r) {
  ListHook& h = r->*hook_;
  if (h.prev) {
    (h.prev->*hook_).next = h.next;
  } else {
    head_ = h.next;
  }
  if (h.next) {
    (h.next->*hook_).prev = h.prev;
  } else {
    tail_ = h.prev;
  }
  h.prev = h.next = nullptr;
}

bool TaskSet::MayEnable(const Request* r) const {
  switch (r->tag) {
    case Tag::kHead:
      return true;
    case Tag::kSimple:
      // Blocked by any older enabled ORDERED/HEAD. (Older dormant ones are
      // ahead of r in the FIFO, so r is not at the front to be asked.)
      return barriers_.empty() || barriers_.front()->seq > r->seq;
    case Tag::kOrdered:
      return active_.empty() || active_.front()->seq > r->seq;
  }
  return false;
}

void TaskSet::Enable(Request* r) {
  active_.Insert(r);
  if (r->tag != Tag::kSimple) barriers_.Insert(r);
}

bool TaskSet::Arrive(Request* r) {
  r->seq = next_seq_++;
  r->dormant_next = nullptr;
  // HEAD OF QUEUE bypasses dormant requests; everything else queues behind
  // them in arrival order.
  if (r->tag == Tag::kHead || (!dormant_head_ && MayEnable(r))) {
    Enable(r);
    return true;
  }
  if (dormant_tail_) {
    dormant_tail_->dormant_next = r;
  } else {
    dormant_head_ = r;
  }
  dormant_tail_ = r;
  return false;
}

}  // namespace blockring
