#include "mapping.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "../kernel/mmap.h"

namespace blockring {

int Mapping::Create(int fd, uint64_t offset, size_t length, bool private_cow, bool writable,
                    std::shared_ptr<Mapping>* out) {
  if (!length) return -EINVAL;
  uint64_t page = PageSize();
  uint64_t start = offset / page * page;
  size_t lead = static_cast<size_t>(offset - start);
  void* base = nullptr;
  int r = MapFile(fd, start, lead + length, writable, private_cow, &base);
  if (r < 0) return r;
  std::shared_ptr<Mapping> m(new Mapping(base, lead + length, static_cast<char*>(base) + lead, length, writable));
  Register(m);
  *out = std::move(m);
  return 0;
}

std::shared_ptr<Mapping> Mapping::Adopt(void* base, size_t span, size_t length, bool writable,
                                        std::shared_ptr<UnmapHook> hook) {
  std::shared_ptr<Mapping> m(new Mapping(base, span, static_cast<char*>(base), length, writable));
  m->hook_ = std::move(hook);
  Register(m);
  return m;
}

Mapping::~Mapping() {
  Unregister();
  std::lock_guard<std::mutex> lock(mu_);
  UnmapLocked();  // no holds are left: each held a reference
}

int Mapping::CopyOut(size_t offset, void* dst, size_t n) const { return GuardedCopy(dst, data() + offset, n); }

int Mapping::CopyIn(size_t offset, const void* src, size_t n) { return GuardedCopy(data() + offset, src, n); }

int Mapping::Sync(bool async) const { return SyncMemory(base_, span_, async); }

int Mapping::Advise(Advice advice) const {
  int a = MADV_NORMAL;
  switch (advice) {
    case Advice::kNormal: a = MADV_NORMAL; break;
    case Advice::kRandom: a = MADV_RANDOM; break;
    case Advice::kSequential: a = MADV_SEQUENTIAL; break;
    case Advice::kWillNeed: a = MADV_WILLNEED; break;
    case Advice::kDontNeed: a = MADV_DONTNEED; break;
    case Advice::kHugePage: a = MADV_HUGEPAGE; break;
  }
  return AdviseMemory(base_, span_, a);
}

int Mapping::Lock() const { return LockMemory(base_, span_); }

int Mapping::Unlock() const { return UnlockMemory(base_, span_); }

size_t Mapping::page_count() const { return (span_ + PageSize() - 1) / PageSize(); }

int Mapping::Residency(std::vector<unsigned char>* pages) const {
  pages->assign(page_count(), 0);
  int r = MemoryResidency(base_, span_, pages->data());
  if (r < 0) return r;
  for (unsigned char& p : *pages) p &= 1;  // the other bits are reserved
  return 0;
}

void Mapping::Unmap() {
  Unregister();  // no new request finds it; those counted before are waited for
  std::lock_guard<std::mutex> lock(mu_);
  if (in_use()) {
    unmap_pending_ = true;
  } else {
    UnmapLocked();
  }
}

void Mapping::OnIdle() {
  if (unmap_pending_) UnmapLocked();
}

void Mapping::UnmapLocked() {
  if (base_ && hook_) hook_->BeforeUnmap();
  if (base_) UnmapMemory(base_, span_);
  base_ = nullptr;
  unmap_pending_ = false;
}

}  // namespace blockring
