// The engine: requests in, completions out. Owns the eventfd, the backend,
// each device's task set, the backlog of enabled requests waiting for room
// in the backend, retries and short I/O resubmission. No N-API here; runs
// on the thread that owns the ring.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend.h"
#include "device.h"
#include "request.h"

namespace blockring {

class CompletionSink {
 public:
  // r finished with r->result (bytes or -errno). The engine frees r after.
  // Returns false to stop the reap pass (sink is full).
  virtual bool OnComplete(Request* r) = 0;

 protected:
  ~CompletionSink() = default;
};

class Engine final : private AttemptSink {
 public:
  explicit Engine(std::unique_ptr<Backend> backend);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Creates the eventfd and initializes the backend. 0 or -errno.
  int Init();
  int event_fd() const { return eventfd_; }
  const Backend& backend() const { return *backend_; }
  Backend& backend() { return *backend_; }

  // Devices: the fd is owned by the engine once added.
  Device* AddDevice(int fd, const DeviceConfig& config);
  Device* GetDevice(uint32_t handle) const;
  // Closes the device's fd now if nothing is in flight; returns false
  // (and closes it when the last request completes) otherwise.
  bool CloseDevice(Device* dev);
  // Records a file device's new size after a resize (ftruncate, run
  // after its requests) and tells the backend.
  void DeviceResized(Device* dev, uint64_t size);
  // An image device (Device::map) over file and backing (null without
  // one), both already added; it owns no fd.
  Device* AddImageDevice(const DeviceConfig& config, std::shared_ptr<ClusterMap> map, Device* file, Device* backing);
  size_t device_count() const { return devices_.size() - free_handles_.size(); }

  Request* NewRequest();
  void FreeRequest(Request* r);

  // Accepts a filled request: schedules it (it may stay dormant).
  void Accept(Request* r);
  // Pushes enabled requests to the backend and the kernel.
  int Dispatch();
  // While held, Dispatch stages requests without a syscall. The binding holds
  // submissions during a completion callback; the next Process (or the
  // Dispatch after the last callback) submits them in the enter that reaps.
  void HoldSubmits(bool hold) { hold_ = hold; }
  // Around a wakeup's reap loop: the kernel need not signal the eventfd
  // while its owner reaps anyway; whatever arrived meanwhile is signalled
  // here on unmute, for the next turn.
  void MuteEventfd(bool mute);
  // Polling mode: submits what is staged and spins up to spin_ns for a
  // completion. False when nothing is in the kernel or the backend cannot.
  bool SpinForCompletion(uint64_t spin_ns);
  // Drains the eventfd (unless told not to: a caller reaping again in the
  // same wakeup) and reaps: retries, resubmissions and released dormant
  // requests go back to the kernel in the same pass. Every finished request
  // goes to sink. Returns how many were delivered.
  size_t Process(CompletionSink* sink, bool drain_eventfd = true);
  // What Cancel did with a request.
  enum class CancelResult {
    kFinished,  // it had already finished: nothing to do
    kDropped,   // never issued (dormant or waiting for room): finishes with -ECANCELED
    kKernel,    // in the kernel: the backend asked it to cancel (needs a Dispatch)
    kRunsOut,   // in the kernel, which cannot be asked: it finishes on its own
  };
  // Cancels an accepted request that has not been handed to a sink. It
  // still completes through Process (its memory held until then).
  CancelResult Cancel(Request* r);
  // Blocks until nothing is in flight (teardown; delivers to sink).
  void Drain(CompletionSink* sink);

  // Requests on image devices that the map could not split (a cluster not
  // known or not writable in place) or that need the format layer (flush,
  // discard, write-zeroes, FUA writes) are parked: still issued as far as
  // their task set is concerned. The owner takes each one (once), has the
  // format layer resolve it, then retries it (the map knows more now) or
  // finishes it. Tokens stay valid until then.
  bool TakeParked(uint32_t* token, Request** r);
  Request* ParkedRequest(uint32_t token) const;
  // wake: signal the eventfd (a caller retrying many signals once).
  bool RetryParked(uint32_t token, bool wake = true);
  bool FinishParked(uint32_t token, int64_t result);
  size_t parked() const { return parked_.size() - free_parked_.size(); }
  bool has_new_parked() const { return new_parked_next_ < new_parked_.size(); }
  // Signals the eventfd: the owner's next pass takes what is left.
  void Wake();

  uint64_t inflight() const { return inflight_; }
  void set_trace(bool on) { trace_ = on; }

 private:
  // Bookkeeping once the backend took r: stage, trace and write-log stamps.
  void Issued(Request* r);
  void OnAttempt(Request* r, int64_t res) override;
  void Ready(Request* r);
  void Finish(Request* r, int64_t result);
  void FreeDevice(Device* dev);
  void Translate(Request* r);
  void Park(Request* r);
  Request* Unpark(uint32_t token);
  void PieceDone(Request* piece);

  std::unique_ptr<Backend> backend_;
  int eventfd_ = -1;
  bool trace_ = false;
  bool hold_ = false;
  uint64_t trace_seq_ = 0;
  uint64_t inflight_ = 0;    // accepted and not yet delivered
  uint32_t in_backend_ = 0;  // prepared and not yet reaped

  // Enabled requests waiting for backend room, FIFO (HEAD OF QUEUE first).
  Request* backlog_head_ = nullptr;
  Request* backlog_tail_ = nullptr;

  // Finished requests not yet handed to a sink (sink was full).
  std::vector<Request*> finished_;
  // Enabled requests that need no I/O (zero-length discard/write-zeroes),
  // finished on the next Process pass.
  std::vector<Request*> instant_;

  // Parked requests by token - 1; free slots; tokens not yet taken.
  std::vector<Request*> parked_;
  std::vector<uint32_t> free_parked_;
  std::vector<uint32_t> new_parked_;
  size_t new_parked_next_ = 0;
  std::vector<ClusterMap::Piece> plan_;

  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<uint32_t> free_handles_;

  std::vector<std::unique_ptr<Request[]>> request_slabs_;
  Request* free_requests_ = nullptr;
};

}  // namespace blockring
