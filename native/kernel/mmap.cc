#include "mmap.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace blockring {
namespace {

struct CopyGuard {
  sigjmp_buf env;
  uintptr_t src;
  uintptr_t dst;
  size_t n;
  volatile int si_code;
  volatile int err;  // set by GuardedCopyFail: returned as is
};

// initial-exec: the handler reads this on a fault, and the default
// (global-dynamic) model for a dlopen'ed addon may allocate on first access,
// which a signal handler must not do. It costs 8 bytes of static TLS.
__attribute__((tls_model("initial-exec"))) thread_local CopyGuard* t_guard = nullptr;

struct sigaction g_previous_bus;
struct sigaction g_previous_segv;
std::once_flag g_install_once;
int g_install_err = 0;

bool Within(uintptr_t a, uintptr_t base, size_t n) { return a >= base && a - base < n; }

void OnFault(int sig, siginfo_t* info, void* ctx) {
  CopyGuard* g = t_guard;
  uintptr_t a = reinterpret_cast<uintptr_t>(info->si_addr);
  if (g && info->si_code > 0 && (Within(a, g->src, g->n) || Within(a, g->dst, g->n))) {
    g->si_code = sig == SIGSEGV ? -1 : info->si_code;
    g->err = 0;
    siglongjmp(g->env, 1);
  }
  // Not a guarded copy: behave as if we had never installed a handler.
  const struct sigaction& previous = sig == SIGSEGV ? g_previous_segv : g_previous_bus;
  if (previous.sa_flags & SA_SIGINFO) {
    previous.sa_sigaction(sig, info, ctx);
    return;
  }
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(sig);
    return;
  }
  // Default action (the kernel treats an ignored synchronous fault the same
  // way). Returning re-executes the faulting instruction, which now kills the
  // process; a signal sent by kill() is raised again (SA_NODEFER: delivered now).
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, nullptr);
  if (info->si_code <= 0) raise(sig);
}

void InstallFaultHandlers() {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = OnFault;
  // SA_NODEFER: siglongjmp out of the handler without restoring the signal
  // mask (sigsetjmp(env, 0) saves no mask, so each copy costs no syscall);
  // the signal is therefore never left blocked, where a second fault would kill.
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, &sa, &g_previous_bus) < 0) g_install_err = -errno;
  // SIGSEGV: a copy into read-only memory (a read-only mapping's buffer as
  // the target of a read). Node's own SIGSEGV handler (WebAssembly traps)
  // keeps every other fault.
  if (!g_install_err && sigaction(SIGSEGV, &sa, &g_previous_segv) < 0) g_install_err = -errno;
}

}  // namespace

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

int MapFile(int fd, uint64_t offset, size_t length, bool writable, bool private_cow, void** out) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  // MAP_NORESERVE: a private writable mapping of a large image would
  // otherwise be charged in full against overcommit although only the pages
  // actually written get private copies.
  int flags = private_cow ? MAP_PRIVATE | MAP_NORESERVE : MAP_SHARED;
  void* p = mmap(nullptr, length, prot, flags, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) return -errno;
  *out = p;
  return 0;
}

int ReserveMemory(size_t length, void** out) {
  void* p = mmap(nullptr, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return -errno;
  *out = p;
  return 0;
}

int MapFixed(void* addr, size_t length, int fd, uint64_t offset, bool writable) {
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  // Anonymous private read-only memory reads as the kernel's shared zero page.
  int flags = fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED : MAP_SHARED | MAP_FIXED;
  void* p = mmap(addr, length, prot, flags, fd, fd < 0 ? 0 : static_cast<off_t>(offset));
  return p == MAP_FAILED ? -errno : 0;
}

int RemapFile(void** addr, size_t old_length, size_t new_length) {
  void* p = mremap(*addr, old_length, new_length, MREMAP_MAYMOVE);
  if (p == MAP_FAILED) return -errno;
  *addr = p;
  return 0;
}

int UnmapMemory(void* addr, size_t length) { return munmap(addr, length) < 0 ? -errno : 0; }

int SyncMemory(void* addr, size_t length, bool async) {
  return msync(addr, length, async ? MS_ASYNC : MS_SYNC) < 0 ? -errno : 0;
}

int AdviseMemory(void* addr, size_t length, int advice) {
  return madvise(addr, length, advice) < 0 ? -errno : 0;
}

// Raw syscalls: sanitizer runtimes replace mlock/munlock with no-ops.
int LockMemory(void* addr, size_t length) { return syscall(__NR_mlock, addr, length) < 0 ? -errno : 0; }

int UnlockMemory(void* addr, size_t length) { return syscall(__NR_munlock, addr, length) < 0 ? -errno : 0; }

int MemoryResidency(void* addr, size_t length, unsigned char* vec) {
  return mincore(addr, length, vec) < 0 ? -errno : 0;
}

int GuardedCopy(void* dst, const void* src, size_t n) {
  int installed = InstallGuardedCopyHandlers();
  if (installed) return installed;
  CopyGuard g;
  g.src = reinterpret_cast<uintptr_t>(src);
  g.dst = reinterpret_cast<uintptr_t>(dst);
  g.n = n;
  g.si_code = 0;
  g.err = 0;
  if (sigsetjmp(g.env, 0)) {
    t_guard = nullptr;
    if (g.err) return g.err;
    // SIGSEGV (-1 here): no access, as the kernel's EFAULT; BUS_ADRERR: past
    // the end of the file; BUS_MCEERR_*: memory failure.
    return g.si_code == -1 || g.si_code == BUS_ADRALN ? -EFAULT : -EIO;
  }
  t_guard = &g;
  // Keep the compiler from moving the guard's stores across the copy.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  memmove(dst, src, n);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_guard = nullptr;
  return 0;
}

int InstallGuardedCopyHandlers() {
  std::call_once(g_install_once, InstallFaultHandlers);
  return g_install_err;
}

void GuardedCopyFail(uintptr_t addr, int err) {
  CopyGuard* g = t_guard;
  if (g && (Within(addr, g->src, g->n) || Within(addr, g->dst, g->n))) {
    g->err = err;
    siglongjmp(g->env, 1);
  }
}

}  // namespace blockring
