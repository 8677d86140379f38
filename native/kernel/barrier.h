// Loads and stores of ring indices shared with another party (the kernel's
// io_uring SQ/CQ and aio completion ring, a vhost-user guest's virtqueues).
// Each call site says which store or load on the other side it pairs with.
#pragma once

namespace blockring {

// Entries the other side wrote before publishing this index are visible.
template <typename T>
inline T LoadAcquire(const T* p) {
  return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
// Everything we did before (filling or reading entries) happens before the
// other side sees the new index.
template <typename T>
inline void StoreRelease(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
// An index only we write, or a hint that needs no ordering.
template <typename T>
inline T LoadRelaxed(const T* p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}
// A store the other side may read at any time (no tearing), ordered by a
// FullFence where ordering matters.
template <typename T>
inline void StoreRelaxed(T* p, T v) {
  __atomic_store_n(p, v, __ATOMIC_RELAXED);
}
// Our earlier stores are visible before our later loads (store-load order,
// which acquire/release does not give; liburing's io_uring_smp_mb).
inline void FullFence() {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

// One turn of a busy-wait: tells the CPU (and a hypervisor) we are spinning.
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace blockring
