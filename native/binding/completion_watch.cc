#include "completion_watch.h"

#include <errno.h>
#include <uv.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "../kernel/eventfd.h"
#include "../kernel/file.h"

namespace blockring {
namespace {

// The async cleanup hook both watches register: the environment (and, in a
// worker, this addon's code) stays until the watch removes it, after the
// runtime's last callback into the watch.
template <typename W>
void OnEnvCleanup(napi_async_cleanup_hook_handle, void* arg) {
  auto* w = static_cast<W*>(arg);
  // Without a listener the watch is already closed and its pending release
  // removes the hook.
  if (CompletionListener* l = w->listener) {
    w->listener = nullptr;
    l->OnEnvTeardown();
  }
}

class UvPollWatch final : public CompletionWatch {
 public:
  CompletionListener* listener;
  napi_async_cleanup_hook_handle hook = nullptr;
  bool initialized = false;  // libuv knows the handle: only uv_close frees it

  explicit UvPollWatch(CompletionListener* l) : listener(l) { poll_.data = this; }

  int Start(napi_env env, int fd, const char** what) {
    uv_loop_t* loop = nullptr;
    *what = "napi_get_uv_event_loop";
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) return -ENOSYS;
    *what = "uv_poll_init";
    int r = uv_poll_init(loop, &poll_, fd);
    if (r < 0) return r;  // libuv errors are -errno on Linux
    initialized = true;
    uv_unref(Handle());   // idle rings never hold the loop open
    r = uv_poll_start(&poll_, UV_READABLE, OnPoll);
    if (r < 0) {
      *what = "uv_poll_start";
      return r;
    }
    // Added last: on failure the caller deletes the watch outright.
    napi_add_async_cleanup_hook(env, OnEnvCleanup<UvPollWatch>, this, &hook);
    return 0;
  }

  void SetRef(bool held) override {
    if (held) {
      uv_ref(Handle());
    } else {
      uv_unref(Handle());
    }
  }

  void Close() override {
    listener = nullptr;
    uv_poll_stop(&poll_);
    uv_close(Handle(), [](uv_handle_t* h) {
      auto* w = static_cast<UvPollWatch*>(h->data);
      if (w->hook) napi_remove_async_cleanup_hook(w->hook);  // the environment may now go
      delete w;
    });
  }

  const char* name() const override { return "uv-poll"; }

 private:
  uv_handle_t* Handle() { return reinterpret_cast<uv_handle_t*>(&poll_); }

  static void OnPoll(uv_poll_t* handle, int status, int) {
    auto* w = static_cast<UvPollWatch*>(handle->data);
    if (status < 0 || !w->listener) return;
    w->listener->OnReadable();
  }

  uv_poll_t poll_;
};

// The waiter thread sleeps in poll() on the eventfd, queues one call to the
// JS thread, and waits until that call has run
// before polling again: the JS side drains the eventfd, so polling earlier
// would only see it still readable and spin.
class ThreadWatch final : public CompletionWatch {
 public:
  CompletionListener* listener;
  napi_async_cleanup_hook_handle hook = nullptr;

  explicit ThreadWatch(CompletionListener* l) : listener(l) {}

  int Start(napi_env env, int fd, const char** what) {
    env_ = env;
    fd_ = fd;
    napi_value name;
    *what = "napi_create_threadsafe_function";
    if (napi_create_string_utf8(env, "blockring:completions", NAPI_AUTO_LENGTH, &name) != napi_ok) return -ENOMEM;
    // Unlimited queue (the thread queues at most one call at a time), one
    // thread holding it; Finalize runs after the last queued call.
    if (napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, this, Finalize, this, CallJs, &tsfn_) !=
        napi_ok) {
      return -ENOSYS;
    }
    napi_unref_threadsafe_function(env, tsfn_);  // idle rings never hold the loop open
    napi_add_async_cleanup_hook(env, OnEnvCleanup<ThreadWatch>, this, &hook);
    thread_ = std::thread([this] { Run(); });
    return 0;
  }

  void SetRef(bool held) override {
    if (held) {
      napi_ref_threadsafe_function(env_, tsfn_);
    } else {
      napi_unref_threadsafe_function(env_, tsfn_);
    }
  }

  void Close() override {
    listener = nullptr;
    StopThread();
    // Calls still queued run (and find no listener); then Finalize. Inside
    // Finalize (the listener closing on OnEnvTeardown) the runtime is
    // already tearing the function down: nothing to release.
    if (!finalized_) napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
  }

  const char* name() const override { return "thread"; }

 private:
  void Run() {
    for (;;) {
      if (EventfdWait(fd_) < 0) return;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        handed_ = true;
      }
      if (napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking) != napi_ok) {
        std::lock_guard<std::mutex> lock(mu_);
        handed_ = false;  // closing: nothing was queued
        return;
      }
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !handed_ || stopping_; });
      if (stopping_) return;
    }
  }

  void StopThread() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    // Wakes the thread from poll(); the extra count is drained with the
    // rest (no second fd: both watches cost a ring the same fds).
    EventfdSignal(fd_);
    thread_.join();
  }

  // JS thread. env is null when the runtime empties its queue at teardown:
  // Node does that after Finalize (node_api.cc: Finalize, then
  // EmptyQueueAndDelete), so w may be finalized here and is then freed by
  // the last of the two.
  static void CallJs(napi_env env, napi_value, void* context, void*) {
    auto* w = static_cast<ThreadWatch*>(context);
    if (env && w->listener) w->listener->OnReadable();  // may Close(); w stays until Finalize
    {
      std::lock_guard<std::mutex> lock(w->mu_);
      w->handed_ = false;
    }
    if (w->finalized_) {
      w->MaybeDelete();  // the thread is joined: nobody waits on cv_
      return;
    }
    w->cv_.notify_one();
  }

  // JS thread, once, when the runtime has closed the function: after Close()
  // released it, or at environment teardown on its own (Node's cleanup hook
  // for the function, or a runtime that finalizes before our hook runs).
  static void Finalize(napi_env, void* data, void*) {
    auto* w = static_cast<ThreadWatch*>(data);
    w->finalized_ = true;
    // Finalized with the watch still open: the listener must not keep a
    // pointer to a watch that is about to go (it calls Close(), which then
    // releases nothing).
    if (CompletionListener* l = w->listener) {
      w->listener = nullptr;
      l->OnEnvTeardown();
    }
    w->StopThread();  // the thread must not outlive w
    if (w->hook) {
      napi_remove_async_cleanup_hook(w->hook);  // the environment may now go
      w->hook = nullptr;
    }
    w->MaybeDelete();
  }

  // Freed once finalized with no call left in the runtime's queue: a call
  // still queued comes to CallJs (env null) after Finalize, with w as its
  // context. A runtime that drops such calls without making them leaks w
  // (a few bytes; its thread is joined) rather than have it used after free.
  void MaybeDelete() {
    bool queued;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queued = handed_;
    }
    if (!queued) delete this;
  }

  napi_env env_ = nullptr;
  napi_threadsafe_function tsfn_ = nullptr;
  int fd_ = -1;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool handed_ = false;   // a call is queued to JS and has not run yet
  bool stopping_ = false;
  bool finalized_ = false;  // JS thread only
};

}  // namespace

CompletionWatch* StartCompletionWatch(napi_env env, WatchKind kind, int fd, CompletionListener* listener, int* err,
                                      const char** what) {
  int r;
  if (kind == WatchKind::kUvPoll) {
    auto* w = new UvPollWatch(listener);
    r = w->Start(env, fd, what);
    if (r == 0) return w;
    // uv_poll_init succeeded before a failed start: libuv must close it.
    if (w->initialized) {
      w->Close();
    } else {
      delete w;
    }
  } else {
    auto* w = new ThreadWatch(listener);
    r = w->Start(env, fd, what);
    if (r == 0) return w;
    delete w;  // nothing was created past the failure
  }
  *err = r;
  return nullptr;
}

}  // namespace blockring
