#include "null_backend.h"

#include <errno.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "../kernel/eventfd.h"

namespace blockring {
namespace {

using Clock = std::chrono::steady_clock;

struct Attempt {
  Request* r;
  int64_t res;
};

struct Timed {
  Clock::time_point due;
  uint64_t order;  // FIFO among equal deadlines
  Attempt a;
  bool operator>(const Timed& o) const { return due != o.due ? due > o.due : order > o.order; }
};

// splitmix64: tiny, seedable, good enough to spread latencies.
uint64_t NextRandom(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class NullBackend final : public Backend {
 public:
  NullBackend(uint32_t depth, const NullOptions& opts) : depth_(depth), opts_(opts), rng_(opts.seed) {
    staged_.reserve(depth);
    ready_.reserve(depth);
  }

  ~NullBackend() override {
    if (timer_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
      }
      cv_.notify_one();
      timer_.join();
    }
  }

  const char* name() const override { return "null"; }

  int Init(int eventfd) override {
    eventfd_ = eventfd;
    // Only non-zero latencies need a clock; zero-latency attempts complete
    // on the ring's own thread at the next reap.
    if (opts_.latency_max_us > 0) timer_ = std::thread([this] { TimerLoop(); });
    return 0;
  }

  uint32_t capacity() const override { return depth_; }

  bool Prepare(Request* r) override {
    uint32_t span = opts_.latency_max_us - opts_.latency_min_us;
    uint32_t us = opts_.latency_min_us;
    if (span) us += static_cast<uint32_t>(NextRandom(&rng_) % (uint64_t{span} + 1));
    staged_.push_back({{r, Outcome(r)}, us});
    return true;
  }

  int Submit() override {
    if (staged_.empty()) return 0;
    int n = static_cast<int>(staged_.size());
    bool was_empty = ready_.empty();
    bool timed = false;
    bool wake = false;
    Clock::time_point now;
    for (const Staged& s : staged_) {
      if (s.latency_us == 0) {
        ready_.push_back(s.a);
        continue;
      }
      if (!timed) {
        now = Clock::now();
        timed = true;
        mu_.lock();
      }
      Timed t{now + std::chrono::microseconds(s.latency_us), order_++, s.a};
      // The timer thread sleeps until the earliest deadline: wake it only
      // when this one is earlier.
      if (heap_.empty() || t.due < heap_.front().due) wake = true;
      heap_.push_back(t);
      std::push_heap(heap_.begin(), heap_.end(), std::greater<Timed>());
    }
    staged_.clear();
    if (timed) {
      mu_.unlock();
      if (wake) cv_.notify_one();
    }
    // The doorbell rings once per empty-to-non-empty transition: Reap takes
    // everything ready, so later submissions ring it again.
    if (was_empty && !ready_.empty()) EventfdSignal(eventfd_);
    return n;
  }

  unsigned Reap(AttemptSink* sink, unsigned max) override {
    if (timer_.joinable()) {
      std::lock_guard<std::mutex> lock(mu_);
      ready_.insert(ready_.end(), done_.begin(), done_.end());
      done_.clear();
    }
    // OnAttempt may prepare new attempts; they go to staged_, never ready_.
    size_t n = std::min<size_t>(ready_.size(), max);
    for (size_t i = 0; i < n; i++) sink->OnAttempt(ready_[i].r, ready_[i].res);
    ready_.erase(ready_.begin(), ready_.begin() + static_cast<ptrdiff_t>(n));
    if (!ready_.empty()) EventfdSignal(eventfd_);  // the rest on the next pass
    return static_cast<unsigned>(n);
  }

  int Wait() override {
    if (!ready_.empty()) return 0;
    return EventfdWait(eventfd_);
  }

 private:
  struct Staged {
    Attempt a;
    uint32_t latency_us;
  };

  int64_t Outcome(const Request* r) {
    uint64_t start = r->offset;
    uint64_t end = r->offset + (r->length ? r->length : 1);
    for (NullFault& f : opts_.faults) {
      if (!f.count) continue;
      if (f.op >= 0 && f.op != static_cast<int>(r->op)) continue;
      if (start >= f.offset_end || end <= f.offset_start) continue;
      if (f.count != UINT64_MAX) f.count--;
      return -f.error;
    }
    return r->IsTransfer() ? static_cast<int64_t>(r->Remaining()) : 0;
  }

  // Runs on the timer thread: moves due attempts to done_ and rings the
  // doorbell; the ring's thread reports them from Reap.
  void TimerLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (heap_.empty()) {
        cv_.wait(lock);
        continue;
      }
      Clock::time_point now = Clock::now();
      if (heap_.front().due > now) {
        Clock::time_point due = heap_.front().due;  // heap_ may move while we wait
        cv_.wait_until(lock, due);
        continue;
      }
      bool was_empty = done_.empty();
      while (!heap_.empty() && heap_.front().due <= now) {
        std::pop_heap(heap_.begin(), heap_.end(), std::greater<Timed>());
        done_.push_back(heap_.back().a);
        heap_.pop_back();
      }
      // Reap empties done_ under the lock, so an empty-to-non-empty
      // transition is the only time the ring may be asleep on it.
      if (was_empty) EventfdSignal(eventfd_);
    }
  }

  const uint32_t depth_;
  NullOptions opts_;  // fault counts are decremented here
  uint64_t rng_;
  int eventfd_ = -1;

  // Ring thread only.
  std::vector<Staged> staged_;  // prepared, not yet submitted
  std::vector<Attempt> ready_;  // complete, to report at the next reap
  uint64_t order_ = 0;

  // Shared with the timer thread, under mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Timed> heap_;     // min-heap by due time
  std::vector<Attempt> done_;   // due, not yet reaped
  bool stop_ = false;
  std::thread timer_;
};

}  // namespace

std::unique_ptr<Backend> MakeNullBackend(uint32_t depth, const NullOptions& opts) {
  return std::make_unique<NullBackend>(depth, opts);
}

}  // namespace blockring
