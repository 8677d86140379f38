#include "memory_block.h"

#include <stdlib.h>

#include <atomic>
#include <map>

namespace blockring {
namespace {

struct Entry {
  MemoryBlock* raw;
  std::weak_ptr<MemoryBlock> block;
  size_t length;
};

// Process-wide: a buffer made in one thread may be used by a ring of the same
// thread only, but finalizers and rings of all threads share the table.
std::mutex g_mu;
std::map<uintptr_t, Entry>& Table() {
  static auto* table = new std::map<uintptr_t, Entry>();  // never destroyed: used by exiting threads
  return *table;
}
std::atomic<size_t> g_count{0};  // lets requests on V8-owned memory skip the lock

}  // namespace

MemoryBlock::~MemoryBlock() { Unregister(); }

void MemoryBlock::Register(const std::shared_ptr<MemoryBlock>& block) {
  if (!block->length_) return;  // nothing a request could use
  std::lock_guard<std::mutex> lock(g_mu);
  Table()[reinterpret_cast<uintptr_t>(block->data_)] = Entry{block.get(), block, block->length_};
  block->registered_ = true;
  g_count.fetch_add(1, std::memory_order_relaxed);
}

void MemoryBlock::Unregister() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!registered_) return;
  registered_ = false;
  auto it = Table().find(reinterpret_cast<uintptr_t>(data_));
  if (it != Table().end() && it->second.raw == this) {
    Table().erase(it);
    g_count.fetch_sub(1, std::memory_order_relaxed);
  }
}

void MemoryBlock::AddUse() {
  std::lock_guard<std::mutex> lock(mu_);
  uses_++;
}

void MemoryBlock::DropUse() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--uses_ == 0) OnIdle();
}

BlockHold::BlockHold(std::shared_ptr<MemoryBlock> block) : block_(std::move(block)) {
  if (block_) block_->AddUse();
}

BlockHold& BlockHold::operator=(BlockHold&& o) noexcept {
  if (this != &o) {
    Reset();
    block_ = std::move(o.block_);
  }
  return *this;
}

void BlockHold::Reset() {
  if (!block_) return;
  block_->DropUse();
  block_.reset();
}

BlockHold FindBlock(const void* data, size_t length) {
  if (!length || g_count.load(std::memory_order_relaxed) == 0) return BlockHold();
  uintptr_t p = reinterpret_cast<uintptr_t>(data);
  std::shared_ptr<MemoryBlock> found;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto& table = Table();
    auto it = table.upper_bound(p);
    if (it == table.begin()) return BlockHold();
    --it;
    if (p - it->first >= it->second.length || length > it->second.length - (p - it->first)) return BlockHold();
    found = it->second.block.lock();  // empty if its last owner is dropping it right now
    // Counted under the table lock: an unmap() that unregisters after this
    // sees the use and waits for it.
    if (found) found->AddUse();
  }
  return BlockHold(std::move(found), BlockHold::Adopt{});
}

std::shared_ptr<MemoryBlock> AlignedBlock::Create(size_t size, size_t alignment) {
  void* mem = nullptr;
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  if (posix_memalign(&mem, alignment, size ? size : 1) != 0) return nullptr;
  std::shared_ptr<MemoryBlock> block(new AlignedBlock(static_cast<char*>(mem), size));
  Register(block);
  return block;
}

AlignedBlock::~AlignedBlock() {
  Unregister();  // before the address can be handed out again
  free(data());
}

}  // namespace blockring
