#include "socket.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace blockring {

int UnixListen(const char* path) {
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(addr.sun_path)) return -ENAMETOOLONG;
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  unlink(path);  // a stale socket from an earlier run
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0 || listen(fd, 4) < 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  return fd;
}

int UnixAccept(int listen_fd) {
  for (;;) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno != EINTR) return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

long RecvWithFds(int fd, void* buf, size_t len, int* fds, size_t max_fds, size_t* nfds) {
  *nfds = 0;
  iovec iov = {buf, len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 32)];
  msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int passed;
      memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (*nfds < max_fds) {
        fds[(*nfds)++] = passed;
      } else {
        close(passed);  // more than the message may carry: never leak them
      }
    }
  }
  // MSG_CTRUNC: the kernel dropped fds beyond our control buffer (it closed them).
  return n;
}

int SendAll(int fd, const void* buf, size_t len, int timeout_ms) {
  const char* p = static_cast<const char*>(buf);
  while (len) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return -errno;
      int w = WaitFd(fd, true, timeout_ms);
      if (w <= 0) return w ? w : -ETIMEDOUT;
      continue;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

int WaitFd(int fd, bool writable, int timeout_ms) {
  pollfd p = {fd, static_cast<short>(writable ? POLLOUT : POLLIN), 0};
  for (;;) {
    int r = poll(&p, 1, timeout_ms);
    if (r >= 0) return r;
    if (errno != EINTR) return -errno;
  }
}

int UnlinkPath(const char* path) { return unlink(path) < 0 ? -errno : 0; }

int EpollCreate() {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

int EpollAdd(int ep, int fd, uint64_t tag) {
  epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = tag;
  return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int EpollRemove(int ep, int fd) { return epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr) < 0 ? -errno : 0; }

int EpollWait(int ep, uint64_t* tags, bool* hup, int max, int timeout_ms) {
  epoll_event evs[32];
  if (max > 32) max = 32;
  for (;;) {
    int n = epoll_wait(ep, evs, max, timeout_ms);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
      tags[i] = evs[i].data.u64;
      hup[i] = (evs[i].events & (EPOLLHUP | EPOLLERR)) != 0;
    }
    return n;
  }
}

}  // namespace blockring
