// The interface every I/O backend implements (io_uring, libaio, threads,
// mmap, null). A backend moves enabled requests to its kernel interface and
// reports each finished attempt; the Engine owns ordering, retries, short
// I/O resubmission and the eventfd. All methods run on the ring's thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "request.h"

namespace blockring {

// Receives one finished attempt: res is bytes transferred or -errno.
class AttemptSink {
 public:
  virtual void OnAttempt(Request* r, int64_t res) = 0;

 protected:
  ~AttemptSink() = default;
};

struct BackendCaps {
  bool fixed_buffers = false;  // RegisterBuffers works
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // Called once with the engine's eventfd, which the backend must signal
  // whenever a completion becomes reapable. Returns 0 or -errno.
  virtual int Init(int eventfd) = 0;
  // Most attempts the backend accepts at once (the queue depth).
  virtual uint32_t capacity() const = 0;
  virtual BackendCaps caps() const { return {}; }
  // Optional kernel features this backend instance uses (for engineInfo).
  virtual std::vector<const char*> features() const { return {}; }
  // Stages r. False when there is no room; the engine keeps it queued.
  virtual bool Prepare(Request* r) = 0;
  // Hands staged attempts to the kernel. Returns >= 0 or -errno; -EAGAIN and
  // -EBUSY mean "reap first, then try again".
  virtual int Submit() = 0;
  // Polling mode: submit, then busy-wait up to spin_ns until a completion
  // is reapable (-ETIME if none came). -EOPNOTSUPP where the backend cannot.
  virtual int SubmitAndSpin(uint64_t /*spin_ns*/) { return -95; }
  // While the engine's owner is reaping anyway, stop signalling the eventfd
  // (mute). Unmuting returns true when completions may have arrived unsignalled,
  // so the engine signals the eventfd itself. False when not supported.
  virtual bool MuteEventfd(bool /*mute*/) { return false; }
  // Non-blocking: reports up to max finished attempts to sink.
  virtual unsigned Reap(AttemptSink* sink, unsigned max) = 0;
  // Blocks until a completion may be reapable (teardown drain).
  virtual int Wait() = 0;
  // Registered (fixed) buffers; backends without them return -EOPNOTSUPP.
  virtual int RegisterBuffers(const iovec*, unsigned) { return -95; }
  virtual void UnregisterBuffers() {}
  // dev's fd is about to close and nothing of it is in flight: drop any
  // per-device state (the mmap backend's mapping). Its handle may be reused.
  virtual void ReleaseDevice(Device*) {}
  // The device's size was changed from outside the backend (resize).
  virtual void DeviceResized(Device*) {}
};

}  // namespace blockring
