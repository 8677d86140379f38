// What an engine thread asks of the kernel for itself: the monotonic clock,
// a short sleep, and its signal mask.
#pragma once

#include <signal.h>

#include <cstdint>

namespace blockring {

uint64_t MonotonicNs();  // CLOCK_MONOTONIC in nanoseconds
void SleepMs(unsigned ms);

// Blocks every signal in this thread while it lives (threads created meanwhile
// inherit the mask, so process signals keep going to Node's threads), then
// restores the mask it found.
class AllSignalsBlocked {
 public:
  AllSignalsBlocked();
  ~AllSignalsBlocked();
  AllSignalsBlocked(const AllSignalsBlocked&) = delete;
  AllSignalsBlocked& operator=(const AllSignalsBlocked&) = delete;

 private:
  sigset_t old_;
};

}  // namespace blockring
