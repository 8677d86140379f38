// Memory the addon hands to JS that requests may read or write: allocAligned
// allocations and mapped regions. A request using such memory holds its block
// (BlockHold) from submission until the engine frees the request after
// completion, so no finalizer and no unmap() can release memory the kernel
// or a backend thread still uses. (A terminating worker runs the finalizers
// of its external buffers before a ring's environment-cleanup drain, and
// unmap() is synchronous.) No N-API; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

namespace blockring {

class BlockHold;
BlockHold FindBlock(const void* data, size_t length);

class MemoryBlock {
 public:
  MemoryBlock(const MemoryBlock&) = delete;
  MemoryBlock& operator=(const MemoryBlock&) = delete;
  virtual ~MemoryBlock();

  char* data() const { return data_; }
  size_t length() const { return length_; }

  // Makes the block findable by address. Call once, after the shared_ptr exists.
  static void Register(const std::shared_ptr<MemoryBlock>& block);
  // No longer findable (before the memory is released). Idempotent.
  void Unregister();

 protected:
  MemoryBlock(char* data, size_t length) : data_(data), length_(length) {}
  // Called with mu_ held when the last use is dropped.
  virtual void OnIdle() {}
  // Whether a request or a registered table uses the block now (mu_ held).
  bool in_use() const { return uses_ != 0; }
  std::mutex mu_;

 private:
  friend class BlockHold;
  friend BlockHold FindBlock(const void* data, size_t length);
  void AddUse();
  void DropUse();

  char* data_;
  size_t length_;
  uint64_t uses_ = 0;
  bool registered_ = false;
};

// One use of a block: keeps it allocated (and mapped) while it lives.
class BlockHold {
 public:
  BlockHold() = default;
  explicit BlockHold(std::shared_ptr<MemoryBlock> block);
  BlockHold(BlockHold&& o) noexcept = default;
  BlockHold& operator=(BlockHold&& o) noexcept;
  ~BlockHold() { Reset(); }
  void Reset();
  explicit operator bool() const { return block_ != nullptr; }
  const MemoryBlock* get() const { return block_.get(); }

 private:
  friend BlockHold FindBlock(const void* data, size_t length);
  struct Adopt {};
  BlockHold(std::shared_ptr<MemoryBlock> block, Adopt) : block_(std::move(block)) {}  // use already counted
  std::shared_ptr<MemoryBlock> block_;
};

// The registered block holding [data, data + length), as a new use; empty
// when none does (V8-owned memory) or length is 0.
BlockHold FindBlock(const void* data, size_t length);

// posix_memalign memory, freed when JS's buffer and every hold are gone.
class AlignedBlock final : public MemoryBlock {
 public:
  // nullptr on ENOMEM.
  static std::shared_ptr<MemoryBlock> Create(size_t size, size_t alignment);
  ~AlignedBlock() override;

 private:
  AlignedBlock(char* data, size_t length) : MemoryBlock(data, length) {}
};

}  // namespace blockring
