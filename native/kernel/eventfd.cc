#include "eventfd.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace blockring {

int EventfdCreate() {
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

void EventfdSignal(int fd) {
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: a wakeup is already pending.
  while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

uint64_t EventfdDrain(int fd) {
  uint64_t value = 0;
  while (read(fd, &value, sizeof(value)) < 0) {
    if (errno != EINTR) return 0;
  }
  return value;
}

int EventfdWait(int fd) {
  pollfd p = {fd, POLLIN, 0};
  for (;;) {
    int r = poll(&p, 1, -1);
    if (r > 0) return 0;
    if (r < 0 && errno != EINTR) return -errno;
  }
}

}  // namespace blockring
