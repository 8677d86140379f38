// Requests for a device the engine cannot run itself (a qcow2 image, whose
// format layer lives in JavaScript) go to another thread: the server thread
// posts them here, the owner of the device (the binding, on the JS thread)
// completes them. A qcow2 image's reads and writes run on the server's
// engine, in place, split by the image's cluster map; only what that map
// cannot do (metadata misses, allocation, flush, discard) comes here,
// without data, and goes back as retry or finish. CopyOut/CopyIn remain
// for requests the format layer serves itself (compressed clusters).
// Thread-safe.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "../engine/request.h"

namespace blockring {
namespace vhost {

struct DelegatedRequest {
  uint64_t id = 0;
  Op op = Op::kRead;
  uint16_t flags = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<iovec> iov;  // guest memory (transfers)
  int64_t result = 0;
  void* task = nullptr;    // the backend's (null for a parked request)
  // A request the server's engine parked on an image device: only its
  // metadata goes to the owner, whose format layer resolves it, then says
  // retry (the map knows more now: the data still moves in place) or
  // finishes it. iov is the parked request's guest memory, copied only when
  // the format layer serves the request itself (compressed clusters).
  bool parked = false;
  uint32_t token = 0;
  bool retry = false;
};

class Delegate {
 public:
  // notify runs on the server thread for each posted request.
  explicit Delegate(std::function<void(const DelegatedRequest&)> notify) : notify_(std::move(notify)) {}
  ~Delegate();
  int Init();  // the completion eventfd; 0 or -errno
  int event_fd() const { return eventfd_; }

  // Server thread.
  void Post(DelegatedRequest* r);
  // Completed requests, taken from the queue (the caller owns them).
  std::vector<DelegatedRequest*> TakeCompleted();
  size_t outstanding() const;

  // Owner thread. Copy guest bytes of request id into dst (len bytes) or
  // src into its guest buffers; false when id is not outstanding.
  bool CopyOut(uint64_t id, void* dst, size_t len);
  bool CopyIn(uint64_t id, const void* src, size_t len);
  void Complete(uint64_t id, int64_t result, bool retry = false);
  // Bytes CopyOut and CopyIn have moved so far.
  uint64_t copied() const { return copied_.load(std::memory_order_relaxed); }
  // Every outstanding request is forgotten: later calls for them do nothing
  // (the server is gone and so is guest memory).
  void CancelAll();

 private:
  bool CopyGuest(uint64_t id, char* flat, size_t len, bool to_guest);
  std::function<void(const DelegatedRequest&)> notify_;
  int eventfd_ = -1;
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, DelegatedRequest*> outstanding_;
  std::vector<DelegatedRequest*> completed_;
  size_t pending_total_ = 0;  // posted, not yet taken back
  std::atomic<uint64_t> copied_{0};
};

}  // namespace vhost
}  // namespace blockring
