// eventfd helpers: the completion doorbell every backend rings.
#pragma once

#include <cstdint>

namespace blockring {

int EventfdCreate();              // non-blocking, close-on-exec; fd or -errno
void EventfdSignal(int fd);       // adds 1; safe from any thread
uint64_t EventfdDrain(int fd);    // reads and clears the counter (0 if none)
int EventfdWait(int fd);          // blocks until the counter is non-zero; 0 or -errno

}  // namespace blockring
