#include "cow_fault.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>

#include "mmap.h"

namespace blockring {
namespace {

// A fixed registry the handler can scan without locks. users[i] counts
// handlers inside slot i, so unregistering can wait them out.
constexpr int kMaxRegions = 64;
std::atomic<CowFault*> g_regions[kMaxRegions];
std::atomic<int> g_users[kMaxRegions];

struct sigaction g_previous;
std::once_flag g_install_once;
int g_install_err = 0;

// Raw syscalls: sanitizer interceptors are not async-signal-safe.
long RawPwrite(int fd, const void* buf, size_t n, uint64_t off) {
  return syscall(SYS_pwrite64, fd, buf, n, static_cast<off_t>(off));
}

void* RawMmap(void* addr, size_t n, int prot, int flags, int fd, uint64_t off) {
  return reinterpret_cast<void*>(syscall(SYS_mmap, addr, n, prot, flags, fd, static_cast<off_t>(off)));
}

// Takes the next pool entry, or nullptr when JS has supplied none.
CowSlot* TakeSlot(CowFault* f) {
  uint64_t t = f->taken.load();
  while (t < f->filled.load()) {
    // The entry at t is rewritten only at t + capacity, after JS drained t,
    // which needs taken > t: a successful CAS therefore read a live entry.
    if (f->taken.compare_exchange_weak(t, t + 1)) return &f->slots[t % f->capacity];
  }
  return nullptr;
}

void Chain(int sig, siginfo_t* info, void* ctx) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    g_previous.sa_sigaction(sig, info, ctx);
    return;
  }
  if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(sig);
    return;
  }
  // Default action: returning re-executes the store, which now kills the
  // process as it would have without us; a kill()-sent SIGSEGV is re-raised.
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGSEGV, &dfl, nullptr);
  if (info->si_code <= 0) raise(SIGSEGV);
}

// 1: handled (the store retries), 0: not ours, <0: ours but failed.
int HandleFault(uintptr_t a) {
  for (int i = 0; i < kMaxRegions; i++) {
    g_users[i].fetch_add(1);
    CowFault* f = g_regions[i].load();
    int r = 0;
    if (f && a >= reinterpret_cast<uintptr_t>(f->base) && a - reinterpret_cast<uintptr_t>(f->base) < f->span &&
        f->armed.load()) {
      r = CowCopyUp(f, (a - reinterpret_cast<uintptr_t>(f->base)) / f->cluster);
      if (r == -EAGAIN) {
        syscall(SYS_sched_yield);  // another thread is copying this cluster up: retry after it
        r = 0;
      }
      r = r == 0 ? 1 : r;
    }
    g_users[i].fetch_sub(1);
    if (r) return r;
  }
  return 0;
}

void OnSigsegv(int sig, siginfo_t* info, void* ctx) {
  int saved_errno = errno;  // the interrupted code may be between a call and its errno check
  // SEGV_ACCERR: a mapped page without the permission (our read-only clusters).
  if (info->si_code == SEGV_ACCERR) {
    uintptr_t a = reinterpret_cast<uintptr_t>(info->si_addr);
    int r = HandleFault(a);
    if (r > 0) {
      errno = saved_errno;
      return;
    }
    if (r < 0) GuardedCopyFail(a, r);  // region.write(): becomes the call's error
  }
  Chain(sig, info, ctx);
}

void InstallSigsegvHandler() {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = OnSigsegv;
  // SA_NODEFER as for SIGBUS: GuardedCopyFail siglongjmps out of the handler.
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &g_previous) < 0) g_install_err = -errno;
}

}  // namespace

int RegisterCowFault(CowFault* f) {
  // GuardedCopy's SIGSEGV handler first, ours after it: ours then sees a
  // write fault inside region.write() before the guard turns it into EFAULT.
  int guarded = InstallGuardedCopyHandlers();
  if (guarded) return guarded;
  std::call_once(g_install_once, InstallSigsegvHandler);
  if (g_install_err) return g_install_err;
  for (int i = 0; i < kMaxRegions; i++) {
    CowFault* none = nullptr;
    if (g_regions[i].compare_exchange_strong(none, f)) return 0;
  }
  return -ENOSPC;
}

void UnregisterCowFault(CowFault* f) {
  for (int i = 0; i < kMaxRegions; i++) {
    CowFault* mine = f;
    if (g_regions[i].compare_exchange_strong(mine, nullptr)) {
      while (g_users[i].load()) sched_yield();
      return;
    }
  }
}

int CowCopyUp(CowFault* f, size_t c) {
  if (c >= f->clusters) return -EFAULT;
  uint8_t s = kCowShared;
  if (!f->state[c].compare_exchange_strong(s, kCowBusy)) return s == kCowOwned ? 0 : -EAGAIN;
  CowSlot* slot = TakeSlot(f);
  if (!slot) {
    f->state[c].store(kCowShared);
    int expect = 0;
    f->error.compare_exchange_strong(expect, -ENOSPC);
    return -ENOSPC;
  }
  char* at = f->base + c * f->cluster;
  size_t n = f->span - c * f->cluster < f->cluster ? f->span - c * f->cluster : f->cluster;
  // The cluster's current bytes (base pages or zero pages, mapped read-only
  // right here) go to the overlay first; the kernel reads them for us.
  int err = 0;
  for (size_t done = 0; done < n && !err;) {
    long w = RawPwrite(f->overlay_fd, at + done, n - done, slot->host + done);
    if (w < 0) err = errno == EFAULT ? -EIO : -errno;  // EFAULT: the base shrank under the mapping
    else if (w == 0) err = -EIO;
    else done += static_cast<size_t>(w);
  }
  if (!err && RawMmap(at, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, f->overlay_fd, slot->host) == MAP_FAILED) {
    err = -errno;
  }
  if (err) {
    // The store cannot proceed: the cluster stays shared and JS gets the host
    // cluster back with the error.
    slot->guest = static_cast<uint64_t>(-err);
    slot->done.store(2);
    f->state[c].store(kCowShared);
    int expect = 0;
    f->error.compare_exchange_strong(expect, err);
    return err;
  }
  slot->guest = c;
  slot->done.store(1);
  f->state[c].store(kCowOwned);
  return 0;
}

}  // namespace blockring
