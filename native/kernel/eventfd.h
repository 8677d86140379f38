// eventfd helpers: the completion doorbell every backend rings.
#pragma once

#include <cstdint>

namespace blockring {

int EventfdCreate();              // non-blocking, close-on-exec; fd or -errno
void EventfdSignal(int fd);       // adds 1; safe from any thread
uint64_t EventfdDrain(int fd);    // reads and clears the counter (0 if none)
int EventfdWait(int fd);          // blocks until the counter is non-zero; 0 or -errno
// Blocks until fd or stop_fd is readable: 0 for fd, 1 for stop_fd, or -errno.
int EventfdWaitEither(int fd, int stop_fd);

}  // namespace blockring
