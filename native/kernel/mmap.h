// Memory-mapping adapters (mmap, mremap, munmap, msync, madvise, mlock,
// mincore) returning -errno, and a memcpy that survives SIGBUS: a mapping
// whose file shrank under it faults on access past the new end of file, and
// a guarded copy turns that fault into -EIO instead of killing the process.
#pragma once

#include <cstddef>
#include <cstdint>

namespace blockring {

size_t PageSize();

// Maps [offset, offset + length) of fd; offset must be page-aligned.
// private_cow: MAP_PRIVATE (copy-on-write, the file is never modified).
// Returns 0 and *out, or -errno.
int MapFile(int fd, uint64_t offset, size_t length, bool writable, bool private_cow, void** out);
// Grows or shrinks a mapping (it may move). 0 and *addr updated, or -errno.
// Reserves length bytes of address space (PROT_NONE, no memory). 0 and *out, or -errno.
int ReserveMemory(size_t length, void** out);
// Replaces [addr, addr + length) of a reservation (MAP_FIXED) with a shared
// mapping of fd at offset (page-aligned), or with read-only zero pages when fd < 0.
int MapFixed(void* addr, size_t length, int fd, uint64_t offset, bool writable);
int RemapFile(void** addr, size_t old_length, size_t new_length);
int UnmapMemory(void* addr, size_t length);
int SyncMemory(void* addr, size_t length, bool async);
// advice: one of the MADV_* constants.
int AdviseMemory(void* addr, size_t length, int advice);
int LockMemory(void* addr, size_t length);
int UnlockMemory(void* addr, size_t length);
// One byte per page in vec (bit 0: resident). addr must be page-aligned.
int MemoryResidency(void* addr, size_t length, unsigned char* vec);

// memmove that returns -EIO (the file shrank under a mapping, a hardware
// memory error) or -EFAULT (BUS_ADRALN) when the copy raises SIGBUS, -EFAULT
// when it raises SIGSEGV (read-only or unmapped memory), 0 when it completes. memmove, not memcpy: a request's buffer may itself be a view
// of the mapping it is copied to or from. Safe on any thread. The first call installs process-wide
// SIGBUS and SIGSEGV handlers that handle faults inside a guarded copy and hand
// every other fault to the handler that was installed before them (or the default
// action, which kills the process as it would have without us).
int GuardedCopy(void* dst, const void* src, size_t n);
// Installs GuardedCopy's handlers now (once); 0 or -errno. A handler
// installed after them sees faults first (kernel/cow_fault relies on it).
int InstallGuardedCopyHandlers();

// From a signal handler: if this thread is inside a GuardedCopy touching
// addr, makes that copy return err (does not return); otherwise returns.
// Async-signal-safe.
void GuardedCopyFail(uintptr_t addr, int err);

}  // namespace blockring
