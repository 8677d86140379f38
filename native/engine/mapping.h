// A mapped byte range of a device, for MappedRegion: maps the enclosing
// pages of an unaligned range and exposes the slice, with guarded copies
// and the msync/madvise/mlock/mincore operations over its pages. No N-API.
// Owned through shared_ptr by the region, its ArrayBuffers and any msync in
// flight; the last owner unmaps, unless Unmap() came first. A MemoryBlock:
// requests using the mapped memory hold it, and Unmap() waits for them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "memory_block.h"

namespace blockring {

// Told before a Mapping unmaps its pages (a fault handler must forget them first).
class UnmapHook {
 public:
  virtual ~UnmapHook() = default;
  virtual void BeforeUnmap() = 0;
};

enum class Advice : uint8_t { kNormal, kRandom, kSequential, kWillNeed, kDontNeed, kHugePage };

class Mapping final : public MemoryBlock {
 public:
  // 0 and *out, or -errno. length > 0.
  static int Create(int fd, uint64_t offset, size_t length, bool private_cow, bool writable,
                    std::shared_ptr<Mapping>* out);
  // Takes over [base, base + span), already mapped (page-aligned base); the
  // range is its first length bytes. hook hears of the unmap first.
  static std::shared_ptr<Mapping> Adopt(void* base, size_t span, size_t length, bool writable,
                                        std::shared_ptr<UnmapHook> hook);
  ~Mapping() override;

  // data(), length(): the range (MemoryBlock).
  bool writable() const { return writable_; }
  bool mapped() const { return base_ != nullptr; }

  // Guarded copies at offset into the range (caller checks bounds):
  // 0, -EIO or -EFAULT (see GuardedCopy).
  int CopyOut(size_t offset, void* dst, size_t n) const;
  int CopyIn(size_t offset, const void* src, size_t n);

  // These act on the enclosing pages. 0 or -errno.
  int Sync(bool async) const;
  int Advise(Advice advice) const;
  int Lock() const;
  int Unlock() const;
  int Residency(std::vector<unsigned char>* pages) const;  // one byte per page, bit 0 = resident
  size_t page_count() const;

  // Unmaps now, or once the last request using the memory has completed.
  void Unmap();

 private:
  Mapping(void* base, size_t span, char* data, size_t length, bool writable)
      : MemoryBlock(data, length), base_(base), span_(span), writable_(writable) {}
  void OnIdle() override;
  void UnmapLocked();

  void* base_ = nullptr;  // page-aligned; nullptr once unmapped
  size_t span_ = 0;       // from base_ to the end of the range
  bool writable_ = false;
  bool unmap_pending_ = false;
  std::shared_ptr<UnmapHook> hook_;
};

}  // namespace blockring
