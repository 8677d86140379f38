// How a ring learns, on the JS thread that owns it, that its engine's
// eventfd is readable. Two ways:
//  - uv-poll: a uv_poll_t on that thread's libuv loop (Node);
//  - thread: a native thread blocks on the eventfd and hands each wakeup to
//    the JS thread through a napi_threadsafe_function. For runtimes whose
//    libuv emulation lacks uv_poll (Bun aborts in uv_poll_init) or polls
//    only once (Deno); forceable under Node so the tests cover it.
// Both keep the environment alive (an async cleanup hook) until the runtime
// has let go of the watch, and report environment teardown to the listener.
#pragma once

#include <node_api.h>

namespace blockring {

class CompletionListener {
 public:
  // The eventfd is readable. JS thread, inside a handle scope; may run JS
  // and may Close() the watch.
  virtual void OnReadable() = 0;
  // The environment is going away with the watch still open: tear down now.
  virtual void OnEnvTeardown() = 0;

 protected:
  ~CompletionListener() = default;
};

class CompletionWatch {
 public:
  // Whether the watch holds the event loop open (requests in flight).
  virtual void SetRef(bool held) = 0;
  // No more listener calls after this; the watch frees itself once the
  // runtime is done with it. JS thread only.
  virtual void Close() = 0;
  virtual const char* name() const = 0;

 protected:
  virtual ~CompletionWatch() = default;
};

enum class WatchKind { kUvPoll, kThread };

// Starts watching fd, unreferenced. nullptr with *err (-errno) and *what
// (the failing call) when the runtime or the kernel refuses.
CompletionWatch* StartCompletionWatch(napi_env env, WatchKind kind, int fd, CompletionListener* listener, int* err,
                                      const char** what);

}  // namespace blockring
