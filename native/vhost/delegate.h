// Requests for a device the engine cannot run itself (a qcow2 image, whose
// format layer lives in JavaScript) go to another thread: the server thread
// posts them here, the owner of the device (the binding, on the JS thread)
// copies data out of or into guest memory and completes them. A copy, not
// in place: the format layer needs its own buffers. Thread-safe.
#pragma once

#include <sys/uio.h>

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
  void* task = nullptr;    // the backend's
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
  void Complete(uint64_t id, int64_t result);
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
};

}  // namespace vhost
}  // namespace blockring
