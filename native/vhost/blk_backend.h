// The vhost-user-blk device: one function per vhost-user message, the
// virtqueues, and the path from a popped chain to engine requests whose
// iovecs point into guest memory (data moves in place, never copied). A
// request's status byte, used-ring entry and call eventfd follow its
// engine completion. Runs on the server's service thread; no N-API.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../engine/engine.h"
#include "blk_request.h"
#include "delegate.h"
#include "memory_table.h"
#include "virtqueue.h"
#include "vhost_user.h"

namespace blockring {
namespace vhost {

struct BlkOptions {
  uint64_t size = 0;  // bytes; the guest sees size / 512 sectors
  bool read_only = false;
  uint32_t block_size = 512;  // logical block size the guest is told (O_DIRECT alignment)
  uint16_t num_queues = 1;
  std::string serial = "blockring";  // GET_ID (at most 20 bytes)
};

// epoll tags the backend registers its kick fds under.
constexpr uint64_t kTagKickBase = 16;

class BlkBackend final : private CompletionSink {
 public:
  // With a delegate and no dev, requests go there instead of to the engine;
  // with both (dev an image device), requests run on the engine and what it
  // parks goes to the delegate.
  // Quiesce stops waiting for the delegate once *stopping is set.
  BlkBackend(Engine* engine, Device* dev, Delegate* delegate, const std::atomic<bool>* stopping,
             const BlkOptions& options, int epoll_fd);
  ~BlkBackend();
  BlkBackend(const BlkBackend&) = delete;
  BlkBackend& operator=(const BlkBackend&) = delete;

  // One message and the fds that came with it (owned now: used or closed).
  // Fills reply (header included) when one is due. False on a protocol
  // error: the connection must be dropped.
  bool Handle(const MsgHeader& h, const uint8_t* payload, int* fds, size_t nfds, std::vector<uint8_t>* reply);
  void OnKick(uint32_t q);
  void OnEngine();
  void OnDelegate();
  // The frontend went away: waits for in-flight requests (their buffers are
  // guest memory), then unmaps memory and closes every fd it passed.
  void Disconnect();

  uint64_t served() const { return served_; }

 private:
  struct Queue {
    Virtqueue vq;
    int kick = -1, call = -1, err = -1;
    bool enabled = false;
    bool watched = false;  // kick is in the epoll set
    bool call_pending = false;
  };
  struct Task {
    uint16_t queue = 0;
    uint16_t head = 0;
    uint8_t* status = nullptr;
    uint32_t used_len = 0;
    bool failed = false;
    uint64_t expect = 0;  // bytes a transfer must move
    Task* next_free = nullptr;
  };

  bool GetFeatures(std::vector<uint8_t>* reply);
  bool SetFeatures(const uint8_t* p, uint32_t size);
  bool SetOwner();
  bool ResetOwner();
  bool SetMemTable(const uint8_t* p, uint32_t size, int* fds, size_t nfds);
  bool SetVringNum(const uint8_t* p, uint32_t size);
  bool SetVringAddr(const uint8_t* p, uint32_t size);
  bool SetVringBase(const uint8_t* p, uint32_t size);
  bool GetVringBase(const uint8_t* p, uint32_t size, std::vector<uint8_t>* reply);
  bool SetVringFd(uint32_t request, const uint8_t* p, uint32_t size, int* fds, size_t nfds);
  bool GetProtocolFeatures(std::vector<uint8_t>* reply);
  bool SetProtocolFeatures(const uint8_t* p, uint32_t size);
  bool GetQueueNum(std::vector<uint8_t>* reply);
  bool SetVringEnable(const uint8_t* p, uint32_t size);
  bool GetConfig(const uint8_t* p, uint32_t size, std::vector<uint8_t>* reply);
  bool SetConfig(const uint8_t* p, uint32_t size);

  Queue* QueueAt(uint64_t index);
  void StartQueue(uint32_t q);
  void StopQueue(Queue* q);
  void CloseQueueFds(Queue* q);
  void ResetState();
  // Waits for every in-flight request and delivers its completion.
  void Quiesce();
  void Process(uint32_t q);
  void Submit(uint32_t q, const BlkRequest& req, Task* t);
  void Complete(Task* t, uint8_t status);
  void SignalCalls();
  bool OnComplete(Request* r) override;
  void Finish(Task* t, int64_t result, bool transfer);
  Task* NewTask();
  // Image device: posts each newly parked request to the delegate.
  void PostParked();

  Engine* engine_;
  Device* dev_;
  Delegate* delegate_;
  const std::atomic<bool>* stopping_;
  BlkOptions options_;
  int epoll_;
  uint64_t offered_ = 0;
  uint64_t acked_ = 0;
  uint64_t protocol_ = 0;
  bool features_set_ = false;
  MemoryTable mem_;
  std::vector<Queue> queues_;
  BlkConfig config_ = {};
  uint64_t inflight_ = 0;
  uint64_t served_ = 0;
  Chain chain_;
  BlkRequest req_;
  std::vector<std::unique_ptr<Task>> tasks_;
  Task* free_tasks_ = nullptr;
};

}  // namespace vhost
}  // namespace blockring
