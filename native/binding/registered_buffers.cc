#include "registered_buffers.h"

#include <sys/uio.h>

#include <algorithm>

namespace blockring {
namespace {

constexpr size_t kMaxFixedBuffers = 16384;  // the kernel's IORING_MAX_REG_BUFFERS

}  // namespace

void RegisteredBuffers::Replace(Backend& backend, std::vector<View> table, bool want_fixed) {
  Unregister(backend);
  if (want_fixed && !table.empty() && table.size() <= kMaxFixedBuffers) {
    std::vector<iovec> iov;
    iov.reserve(table.size());
    // An empty entry is sparse ({NULL, 0}, Linux 5.19+; older kernels refuse
    // the table and the ring goes without fixed buffers).
    for (const View& b : table) iov.push_back({b.length ? b.data : nullptr, b.length});
    // The kernel pins these pages until unregistered (counted against
    // RLIMIT_MEMLOCK for unprivileged users); failure just means no fixed I/O.
    fixed_ = backend.RegisterBuffers(iov.data(), static_cast<unsigned>(iov.size())) == 0;
  }
  std::vector<BlockHold> holds;
  for (const View& b : table) {
    BlockHold h = FindBlock(b.data, b.length);
    if (h) holds.push_back(std::move(h));
  }
  holds_ = std::move(holds);  // drops the previous table's
  views_ = std::move(table);
  order_.resize(views_.size());
  for (uint32_t i = 0; i < order_.size(); i++) order_[i] = i;
  std::sort(order_.begin(), order_.end(), [this](uint32_t a, uint32_t b) { return views_[a].data < views_[b].data; });
}

void RegisteredBuffers::Unregister(Backend& backend) {
  if (fixed_) backend.UnregisterBuffers();
  fixed_ = false;
}

void RegisteredBuffers::Clear() {
  views_.clear();
  order_.clear();
  holds_.clear();
}

int RegisteredBuffers::Find(const char* data, size_t length) const {
  if (!length) return -1;  // nothing to transfer; the kernel refuses a zero-length fixed buffer
  // order_ is sorted by start address; registered buffers do not overlap in
  // any way that matters (the first containing one wins).
  size_t lo = 0, hi = order_.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (views_[order_[mid]].data <= data) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (!lo) return -1;
  uint32_t index = order_[lo - 1];
  const View& b = views_[index];
  return data + length <= b.data + b.length ? static_cast<int>(index) : -1;
}

void RegisteredBuffers::Acquire(const Request& r) {
  if (r.flags & kFlagRaw) {
    raw_inflight_++;
  } else if (r.flags & kFlagFixedBuffer) {
    fixed_inflight_++;
  }
}

void RegisteredBuffers::Release(const Request& r) {
  if (r.flags & kFlagRaw) {
    raw_inflight_--;
  } else if (r.flags & kFlagFixedBuffer) {
    fixed_inflight_--;
  }
}

}  // namespace blockring
