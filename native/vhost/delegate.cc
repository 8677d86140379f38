#include "delegate.h"

#include <cstring>

#include "../kernel/eventfd.h"
#include "../kernel/file.h"
#include "../kernel/socket.h"

namespace blockring {
namespace vhost {

Delegate::~Delegate() {
  CancelAll();
  for (DelegatedRequest* r : completed_) delete r;
  if (eventfd_ >= 0) CloseFd(eventfd_);
}

int Delegate::Init() {
  eventfd_ = EventfdCreate();
  return eventfd_ < 0 ? eventfd_ : 0;
}

void Delegate::Post(DelegatedRequest* r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    r->id = next_id_++;
    outstanding_[r->id] = r;
    pending_total_++;
  }
  notify_(*r);
}

std::vector<DelegatedRequest*> Delegate::TakeCompleted() {
  EventfdDrain(eventfd_);
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DelegatedRequest*> out;
  out.swap(completed_);
  pending_total_ -= out.size();
  return out;
}

size_t Delegate::outstanding() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_total_;
}

// Copies between a flat JS buffer and the request's guest iovecs, in the
// direction asked; false when the request is no longer outstanding.
bool Delegate::CopyGuest(uint64_t id, char* flat, size_t len, bool to_guest) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = outstanding_.find(id);
  if (it == outstanding_.end()) return false;
  size_t done = 0;
  for (const iovec& v : it->second->iov) {
    size_t n = v.iov_len < len - done ? v.iov_len : len - done;
    if (to_guest) memcpy(v.iov_base, flat + done, n);
    else memcpy(flat + done, v.iov_base, n);
    done += n;
  }
  copied_.fetch_add(done, std::memory_order_relaxed);
  return true;
}

bool Delegate::CopyOut(uint64_t id, void* dst, size_t len) {
  return CopyGuest(id, static_cast<char*>(dst), len, false);
}

bool Delegate::CopyIn(uint64_t id, const void* src, size_t len) {
  return CopyGuest(id, const_cast<char*>(static_cast<const char*>(src)), len, true);
}

void Delegate::Complete(uint64_t id, int64_t result, bool retry) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = outstanding_.find(id);
    if (it == outstanding_.end()) return;
    it->second->result = result;
    it->second->retry = retry;
    completed_.push_back(it->second);
    outstanding_.erase(it);
  }
  EventfdSignal(eventfd_);
}

void Delegate::CancelAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& e : outstanding_) delete e.second;
  pending_total_ -= outstanding_.size();
  outstanding_.clear();
}

}  // namespace vhost
}  // namespace blockring
