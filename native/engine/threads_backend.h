// Backend on a small native thread pool doing blocking preadv/pwritev2/
// fdatasync/fallocate. Works on any Linux kernel; completions land in a
// mutex-protected list and ring the engine's eventfd like every backend.
// The pool is also the libaio backend's path for what aio cannot do.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"

namespace blockring {

// Runs one attempt of r on fd with blocking syscalls: bytes or -errno.
// Thread-safe; reads only r's attempt fields (op, flags, iov, offsets) and
// writes r.syscall (the engine reads it after the attempt is reaped).
int64_t RunBlocking(Request& r, int fd);

class WorkerPool {
 public:
  explicit WorkerPool(unsigned threads) : nthreads_(threads ? threads : 1) {}
  ~WorkerPool();  // lets queued attempts finish, then joins the threads
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void set_eventfd(int fd) { eventfd_ = fd; }

  // Ring thread only. Stage collects attempts; Kick hands them to the
  // threads under one lock (starting the threads on first use).
  void Stage(Request* r);
  void Kick();
  // Any thread: lists a finished attempt and rings the eventfd. The ring
  // thread uses it for attempts another path refused outright.
  void Complete(Request* r, int64_t res);
  unsigned Reap(AttemptSink* sink, unsigned max);

 private:
  struct Task {
    Request* r = nullptr;
    int fd = -1;
  };
  struct Done {
    Request* r;
    int64_t res;
  };

  void Start();
  void Run();

  const unsigned nthreads_;
  int eventfd_ = -1;
  std::vector<Task> staged_;   // ring thread only
  std::vector<Done> reaping_;  // ring thread only

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;  // guarded by mu_
  std::deque<Done> done_;   // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  std::vector<std::thread> threads_;
};

struct ThreadsOptions {
  uint32_t depth = 256;
  unsigned threads = 4;
};

std::unique_ptr<Backend> MakeThreadsBackend(const ThreadsOptions& opts);

}  // namespace blockring
