// A vhost-user-blk server: listens on a unix socket, serves one frontend
// at a time, and goes back to listening when it disconnects (a VMM with
// reconnect=1 comes back). Everything after Start runs on one service
// thread of its own, which owns an Engine of its own: the guest's I/O
// never waits for the JavaScript thread (garbage collection, a busy event
// loop), and the engine stays single-threaded as it requires. No N-API.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../engine/engine.h"
#include "../engine/factory.h"
#include "blk_backend.h"
#include "delegate.h"

namespace blockring {
namespace vhost {

struct ServerOptions {
  std::string socket_path;
  EngineChoice engine;
  DeviceConfig device;  // for the image fd (a qcow2 image: its image device)
  BlkOptions blk;
  // A qcow2 image served in place: its cluster map (shared with the format
  // layer, which fills it), the image file and a raw backing file (fds the
  // caller keeps; the server duplicates them). Needs a delegate.
  std::shared_ptr<ClusterMap> map;
  int file_fd = -1;
  DeviceConfig file_device;
  int backing_fd = -1;
  DeviceConfig backing_device;
};

class Server {
 public:
  Server() = default;
  ~Server() { Stop(); }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves a duplicate of image_fd (the caller keeps its own), or with
  // image_fd < 0 and a delegate, hands every request to the delegate. Builds the engine, listens and starts the
  // service thread. 0, or -errno with *syscall naming the failed call.
  int Start(int image_fd, std::unique_ptr<Delegate> delegate, const ServerOptions& options, const char** syscall,
            std::string* detail);
  Delegate* delegate() const { return delegate_.get(); }
  // Stops the thread (in-flight requests finish first), closes everything
  // and removes the socket file. Idempotent.
  void Stop();

  const char* engine_name() const { return engine_name_.c_str(); }
  uint32_t connections() const { return connections_.load(std::memory_order_relaxed); }
  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  uint64_t served() const { return served_.load(std::memory_order_relaxed); }
  // Guest bytes copied through the delegate (0 while data moves in place).
  uint64_t copied() const { return delegate_ ? delegate_->copied() : 0; }

 private:
  void Run();
  void Accept();
  void OnMessage();
  void Serve(int fd);
  void DropConnection();

  ServerOptions options_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Delegate> delegate_;
  std::unique_ptr<BlkBackend> backend_;
  std::atomic<bool> stopping_{false};
  std::string engine_name_;
  int epoll_ = -1;
  int stop_ = -1;
  int listen_ = -1;
  int conn_ = -1;
  int pending_ = -1;  // accepted while conn_ was still being served
  std::thread thread_;
  std::vector<uint8_t> payload_;
  std::vector<uint8_t> reply_;
  std::atomic<uint32_t> connections_{0};
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> served_{0};
};

}  // namespace vhost
}  // namespace blockring
