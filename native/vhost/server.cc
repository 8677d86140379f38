#include "server.h"

#include <errno.h>

#include <cstring>

#include "../engine/io_uring_backend.h"
#include "../kernel/eventfd.h"
#include "../kernel/file.h"
#include "../kernel/socket.h"

namespace blockring {
namespace vhost {
namespace {

constexpr uint64_t kTagStop = 0;
constexpr uint64_t kTagListen = 1;
constexpr uint64_t kTagConn = 2;
constexpr uint64_t kTagEngine = 3;
constexpr uint64_t kTagDelegate = 4;
// A message whose rest does not arrive within this is a protocol error
// (a truncated message must not stall the service thread forever).
constexpr int kMessageTimeoutMs = 2000;

// Reads exactly len bytes, collecting passed fds. 0, -ETIMEDOUT, -EPIPE at
// end of stream, -EMSGSIZE when more fds arrive than fit, or -errno.
int ReadExact(int fd, void* buf, size_t len, int* fds, size_t max_fds, size_t* nfds) {
  char* p = static_cast<char*>(buf);
  while (len) {
    size_t got_fds = 0;
    long n = RecvWithFds(fd, p, len, fds + *nfds, max_fds - *nfds, &got_fds);
    *nfds += got_fds;
    if (n == -EAGAIN) {
      int w = WaitFd(fd, false, kMessageTimeoutMs);
      if (w <= 0) return w ? w : -ETIMEDOUT;
      continue;
    }
    if (n < 0) return static_cast<int>(n);
    if (n == 0) return -EPIPE;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

}  // namespace

int Server::Start(int caller_fd, std::unique_ptr<Delegate> delegate, const ServerOptions& options,
                  const char** syscall, std::string* detail) {
  options_ = options;
  delegate_ = std::move(delegate);
  int image_fd = -1;
  if (!delegate_) {
    *syscall = "fcntl";
    image_fd = DuplicateFd(caller_fd);
    if (image_fd < 0) return image_fd;
  } else if (int r = delegate_->Init(); r < 0) {
    *syscall = "eventfd";
    return r;
  }
  // The engine is built here and drained here, but runs on the server
  // thread: no io_uring feature that binds a ring to one thread.
  EngineChoice choice = options.engine;
  choice.uring_features &= ~(kUringSingleIssuer | kUringDeferTaskrun | kUringRingFd);
  BackendResult made = MakeBackend(choice);
  if (!made.backend) {
    if (image_fd >= 0) CloseFd(image_fd);
    *syscall = made.syscall;
    *detail = "cannot start engine '" + options.engine.requested + "' (" + made.fallback + ")";
    return made.err;
  }
  engine_ = std::make_unique<Engine>(std::move(made.backend));
  int r = engine_->Init();
  if (r < 0) {
    if (image_fd >= 0) CloseFd(image_fd);
    *syscall = "eventfd";
    return r;
  }
  engine_name_ = engine_->backend().name();
  Device* dev = image_fd >= 0 ? engine_->AddDevice(image_fd, options.device) : nullptr;
  if (options.map && delegate_) {
    *syscall = "fcntl";
    int file_fd = DuplicateFd(options.file_fd);
    if (file_fd < 0) return file_fd;
    Device* file = engine_->AddDevice(file_fd, options.file_device);
    Device* backing = nullptr;
    if (options.backing_fd >= 0) {
      int backing_fd = DuplicateFd(options.backing_fd);
      if (backing_fd < 0) return backing_fd;
      backing = engine_->AddDevice(backing_fd, options.backing_device);
    }
    dev = engine_->AddImageDevice(options.device, options.map, file, backing);
  }
  *syscall = "epoll_create1";
  if ((epoll_ = EpollCreate()) < 0) return epoll_;
  *syscall = "eventfd";
  if ((stop_ = EventfdCreate()) < 0) return stop_;
  *syscall = "bind";
  if ((listen_ = UnixListen(options.socket_path.c_str())) < 0) {
    *detail = "cannot listen on " + options.socket_path;
    options_.socket_path.clear();  // not ours to remove
    return listen_;
  }
  *syscall = "epoll_ctl";
  if ((r = EpollAdd(epoll_, stop_, kTagStop)) < 0 || (r = EpollAdd(epoll_, listen_, kTagListen)) < 0 ||
      (r = EpollAdd(epoll_, engine_->event_fd(), kTagEngine)) < 0 ||
      (delegate_ && (r = EpollAdd(epoll_, delegate_->event_fd(), kTagDelegate)) < 0)) {
    return r;
  }
  payload_.resize(kMaxPayload);  // never empty: handlers may look at data() of a short message
  backend_ = std::make_unique<BlkBackend>(engine_.get(), dev, delegate_.get(), &stopping_, options.blk, epoll_);
  thread_ = std::thread([this] { Run(); });
  return 0;
}

void Server::Stop() {
  stopping_ = true;
  if (thread_.joinable()) {
    EventfdSignal(stop_);
    thread_.join();
  }
  // The owner's thread (ours) can no longer complete delegated requests
  // while the backend unmaps guest memory: forget them first.
  if (delegate_) delegate_->CancelAll();
  backend_.reset();  // waits for in-flight requests, unmaps guest memory
  for (int* fd : {&conn_, &pending_}) {
    if (*fd >= 0) CloseFd(*fd);
    *fd = -1;
  }
  connected_ = false;
  engine_.reset();
  delegate_.reset();
  for (int* fd : {&listen_, &stop_, &epoll_}) {
    if (*fd >= 0) CloseFd(*fd);
    *fd = -1;
  }
  if (!options_.socket_path.empty()) {
    UnlinkPath(options_.socket_path.c_str());
    options_.socket_path.clear();
  }
}

void Server::Run() {
  uint64_t tags[32];
  bool hup[32];
  for (;;) {
    int n = EpollWait(epoll_, tags, hup, 32, -1);
    if (n < 0) return;
    for (int i = 0; i < n; i++) {
      uint64_t tag = tags[i];
      if (tag == kTagStop) return;
      if (tag == kTagListen) {
        Accept();
      } else if (tag == kTagConn) {
        // Read what is there even on hangup: the last message may precede it.
        OnMessage();
      } else if (tag == kTagEngine) {
        backend_->OnEngine();
      } else if (tag == kTagDelegate) {
        backend_->OnDelegate();
      } else if (tag >= kTagKickBase && conn_ >= 0) {
        backend_->OnKick(static_cast<uint32_t>(tag - kTagKickBase));
      }
    }
    served_.store(backend_->served(), std::memory_order_relaxed);
  }
}

void Server::Accept() {
  int fd = UnixAccept(listen_);
  if (fd < 0) return;
  if (conn_ >= 0) {
    // One frontend at a time. A reconnecting VMM can arrive before we have
    // seen the old connection's hangup: one such waits its turn.
    if (pending_ >= 0) {
      CloseFd(fd);
    } else {
      pending_ = fd;
    }
    return;
  }
  Serve(fd);
}

void Server::Serve(int fd) {
  if (EpollAdd(epoll_, fd, kTagConn) < 0) {
    CloseFd(fd);
    return;
  }
  conn_ = fd;
  connected_ = true;
  connections_.fetch_add(1, std::memory_order_relaxed);
}

void Server::DropConnection() {
  EpollRemove(epoll_, conn_);
  CloseFd(conn_);
  conn_ = -1;
  backend_->Disconnect();
  connected_ = false;
  if (pending_ >= 0) {
    int fd = pending_;
    pending_ = -1;
    Serve(fd);
  }
}

void Server::OnMessage() {
  if (conn_ < 0) return;
  MsgHeader h;
  int fds[kMaxFds];
  size_t nfds = 0;
  int r = ReadExact(conn_, &h, sizeof(h), fds, kMaxFds, &nfds);
  // The payload must be sane before anything trusts it.
  if (r == 0 && ((h.flags & 0x3) != kVersion || h.size > kMaxPayload)) r = -EPROTO;
  if (r == 0) {
    r = ReadExact(conn_, payload_.data(), h.size, fds, kMaxFds, &nfds);
  }
  if (r < 0) {
    for (size_t i = 0; i < nfds; i++) CloseFd(fds[i]);
    DropConnection();
    return;
  }
  bool ok = backend_->Handle(h, payload_.data(), fds, nfds, &reply_);
  if (ok && !reply_.empty()) ok = SendAll(conn_, reply_.data(), reply_.size(), kMessageTimeoutMs) == 0;
  if (!ok) DropConnection();
}

}  // namespace vhost
}  // namespace blockring
