#include "mmap_backend.h"

#include <errno.h>

#include <algorithm>
#include <vector>

#include "../kernel/block_device.h"
#include "../kernel/eventfd.h"
#include "../kernel/file.h"
#include "../kernel/mmap.h"
#include "device.h"
#include "io_policy.h"

namespace blockring {
namespace {

uint64_t RoundUp(uint64_t n, uint64_t page) { return (n + page - 1) / page * page; }

// One device's mapping. Bytes [0, size) are the file as last seen; the
// mapping may extend past it (headroom for growth), never touched there.
struct View {
  char* base = nullptr;
  uint64_t mapped = 0;
  uint64_t size = 0;
};

class MmapBackend final : public Backend {
 public:
  explicit MmapBackend(uint32_t depth) : depth_(depth) {
    staged_.reserve(depth);
    done_.reserve(depth);
  }
  ~MmapBackend() override {
    for (View& v : views_) Unmap(&v);
  }

  const char* name() const override { return "mmap"; }
  int Init(int eventfd) override {
    eventfd_ = eventfd;
    return 0;
  }
  uint32_t capacity() const override { return depth_; }

  bool Prepare(Request* r) override {
    staged_.push_back(r);  // the engine keeps staged + unreaped within capacity
    return true;
  }

  int Submit() override {
    if (staged_.empty()) return 0;
    for (Request* r : staged_) done_.push_back({r, Execute(r)});
    int n = static_cast<int>(staged_.size());
    staged_.clear();
    EventfdSignal(eventfd_);
    return n;
  }

  unsigned Reap(AttemptSink* sink, unsigned max) override {
    // OnAttempt may stage retries (Prepare), never touches done_.
    size_t n = std::min<size_t>(max, done_.size());
    for (size_t i = 0; i < n; i++) sink->OnAttempt(done_[i].r, done_[i].res);
    done_.erase(done_.begin(), done_.begin() + static_cast<ptrdiff_t>(n));
    return static_cast<unsigned>(n);
  }

  // Every submitted attempt has already finished.
  int Wait() override { return 0; }

  void ReleaseDevice(Device* dev) override {
    if (dev->handle < views_.size()) Unmap(&views_[dev->handle]);
  }

  // Resized from outside: the next request re-reads the size (a shrunk file
  // must not be copied past its new end).
  void DeviceResized(Device* dev) override {
    if (dev->handle < views_.size()) views_[dev->handle].size = 0;
  }

 private:
  struct Done {
    Request* r;
    int64_t res;
  };

  int64_t Execute(Request* r) {
    switch (r->op) {
      case Op::kRead:
        r->syscall = Syscall::kMmap;
        return Transfer(r, false);
      case Op::kWrite:
        r->syscall = Syscall::kMmap;
        return Transfer(r, true);
      case Op::kFlush:
        return Flush(r);
      case Op::kDiscard:
      case Op::kWriteZeroes:
        // The kernel drops the affected pages from every mapping.
        r->syscall = Syscall::kFallocate;
        return FileFallocate(r->dev->fd, FallocateMode(*r), r->offset, r->length);
    }
    return -EINVAL;
  }

  View* ViewOf(Device* dev) {
    if (dev->handle >= views_.size()) views_.resize(dev->handle + 1);
    return &views_[dev->handle];
  }

  // Re-reads the size (extending a file to need bytes first) and grows the
  // mapping to cover it.
  int Refresh(Device* dev, View* v, uint64_t need) {
    Geometry g;
    int e = QueryGeometry(dev->fd, &g);
    if (e < 0) return e;
    uint64_t size = g.size;
    if (need > size && !g.is_block_device) {
      e = TruncateFile(dev->fd, need);
      if (e < 0) return e;
      size = need;
    }
    uint64_t want = RoundUp(size, PageSize());
    if (want > v->mapped) {
      // Double on growth so a file written sequentially past its end is not
      // remapped on every request.
      uint64_t grow = g.is_block_device ? want : std::max(want, v->mapped * 2);
      void* p = v->base;
      e = v->base ? RemapFile(&p, v->mapped, grow) : MapFile(dev->fd, 0, grow, !dev->config.read_only, false, &p);
      if (e < 0) return e;
      v->base = static_cast<char*>(p);
      v->mapped = grow;
    }
    v->size = size;
    return 0;
  }

  int64_t Transfer(Request* r, bool write) {
    View* v = ViewOf(r->dev);
    uint64_t off = r->RemainingOffset();
    uint64_t want = r->Remaining();
    if (!want) return 0;  // as pread/pwrite of 0 bytes, wherever the offset
    if (off + want > v->size) {
      int e = Refresh(r->dev, v, write ? off + want : 0);
      if (e < 0) return e;
    }
    if (off >= v->size) return write ? -ENOSPC : 0;
    uint64_t n = std::min(want, v->size - off);
    char* p = v->base + off;
    uint64_t left = n;
    for (uint32_t i = 0; i < r->iovcnt && left; i++) {
      size_t len = static_cast<size_t>(std::min<uint64_t>(r->iov[i].iov_len, left));
      void* buf = r->iov[i].iov_base;
      int e = write ? GuardedCopy(p, buf, len) : GuardedCopy(buf, p, len);
      if (e < 0) {
        v->size = 0;  // the file shrank: look again on the next request
        return e;
      }
      p += len;
      left -= len;
    }
    if (write && (r->flags & kFlagFua)) {
      uint64_t start = off / PageSize() * PageSize();
      int e = SyncMemory(v->base + start, RoundUp(off + n, PageSize()) - start, false);
      if (e < 0) {
        r->syscall = Syscall::kMsync;
        return e;
      }
    }
    return static_cast<int64_t>(n);
  }

  int64_t Flush(Request* r) {
    int fd = r->dev->fd;
    // msync(MS_SYNC) is fdatasync over the mapped range; fsync also writes
    // the inode. Without a mapping nothing was written through one.
    r->syscall = r->flags & kFlagFlushMetadata ? Syscall::kFsync : Syscall::kFdatasync;
    if (r->flags & kFlagFlushMetadata) return FileSync(fd, true);
    View* v = ViewOf(r->dev);
    if (!v->base || !v->size) return FileSync(fd, false);
    r->syscall = Syscall::kMsync;
    return SyncMemory(v->base, RoundUp(v->size, PageSize()), false);
  }

  static void Unmap(View* v) {
    if (v->base) UnmapMemory(v->base, v->mapped);
    *v = View();
  }

  uint32_t depth_;
  int eventfd_ = -1;
  std::vector<Request*> staged_;
  std::vector<Done> done_;
  std::vector<View> views_;  // by device handle
};

}  // namespace

std::unique_ptr<Backend> MakeMmapBackend(uint32_t depth) { return std::make_unique<MmapBackend>(depth); }

}  // namespace blockring
