// Unix stream sockets with fd passing (SCM_RIGHTS) for the vhost-user
// backend, epoll for its service thread, and fd duplication. Raw syscalls,
// -errno returns.
#pragma once

#include <cstddef>
#include <cstdint>

namespace blockring {

// Binds and listens on path (an existing socket file there is replaced).
// Non-blocking, close-on-exec. fd or -errno.
int UnixListen(const char* path);
// One pending connection, non-blocking and close-on-exec: fd, or -EAGAIN
// when none is waiting, or -errno.
int UnixAccept(int listen_fd);
// Receives up to len bytes and at most max_fds passed fds (close-on-exec;
// any beyond max_fds are closed). Bytes (0 at end of stream) or -errno.
// *nfds is set to how many fds landed in fds.
long RecvWithFds(int fd, void* buf, size_t len, int* fds, size_t max_fds, size_t* nfds);
// Sends all of buf on a non-blocking socket, waiting at most timeout_ms
// each time the peer's buffer is full: 0, -ETIMEDOUT or -errno.
int SendAll(int fd, const void* buf, size_t len, int timeout_ms);
// Waits until fd is readable (or writable): 1, 0 on timeout, or -errno.
int WaitFd(int fd, bool writable, int timeout_ms);
int UnlinkPath(const char* path);

// epoll: create (close-on-exec), add/remove fd for EPOLLIN with a 64-bit
// tag, wait. Wait returns the number of events (tags in tags[], hangup or
// error bits OR-ed into hup[]) or -errno; EINTR is retried.
int EpollCreate();
int EpollAdd(int ep, int fd, uint64_t tag);
int EpollRemove(int ep, int fd);
int EpollWait(int ep, uint64_t* tags, bool* hup, int max, int timeout_ms);

}  // namespace blockring
