// What the engine asked the kernel to do for a request's last attempt, as a
// BlockIoError reports it in `syscall` (README "Errors"). One name per
// system call; io_uring and libaio add the opcode the one syscall carried.
#pragma once

#include <cstdint>

namespace blockring {

#define BLOCKRING_SYSCALLS(X)                                   \
  X(kNone, "none") /* no system call: null engine, or none made */ \
  X(kUringRead, "io_uring_enter/IORING_OP_READ")                \
  X(kUringReadv, "io_uring_enter/IORING_OP_READV")              \
  X(kUringReadFixed, "io_uring_enter/IORING_OP_READ_FIXED")     \
  X(kUringWrite, "io_uring_enter/IORING_OP_WRITE")              \
  X(kUringWritev, "io_uring_enter/IORING_OP_WRITEV")            \
  X(kUringWriteFixed, "io_uring_enter/IORING_OP_WRITE_FIXED")   \
  X(kUringFsync, "io_uring_enter/IORING_OP_FSYNC")              \
  X(kUringFallocate, "io_uring_enter/IORING_OP_FALLOCATE")      \
  X(kUringCmdDiscard, "io_uring_enter/IORING_OP_URING_CMD")     \
  X(kAioPread, "io_submit/IOCB_CMD_PREAD")                      \
  X(kAioPreadv, "io_submit/IOCB_CMD_PREADV")                    \
  X(kAioPwrite, "io_submit/IOCB_CMD_PWRITE")                    \
  X(kAioPwritev, "io_submit/IOCB_CMD_PWRITEV")                  \
  X(kAioFsync, "io_submit/IOCB_CMD_FSYNC")                      \
  X(kAioFdsync, "io_submit/IOCB_CMD_FDSYNC")                    \
  X(kPreadv, "preadv")                                          \
  X(kPwritev, "pwritev")                                        \
  X(kPwritev2, "pwritev2")                                      \
  X(kFsync, "fsync")                                            \
  X(kFdatasync, "fdatasync")                                    \
  X(kFallocate, "fallocate")                                    \
  X(kMmap, "mmap") /* mmap engine: a copy through the mapping */ \
  X(kMsync, "msync")

enum class Syscall : uint8_t {
#define BLOCKRING_SYSCALL_ENUM(id, name) id,
  BLOCKRING_SYSCALLS(BLOCKRING_SYSCALL_ENUM)
#undef BLOCKRING_SYSCALL_ENUM
};

// Names by Syscall value (the addon exports them as syscallNames).
inline constexpr const char* kSyscallNames[] = {
#define BLOCKRING_SYSCALL_NAME(id, name) name,
    BLOCKRING_SYSCALLS(BLOCKRING_SYSCALL_NAME)
#undef BLOCKRING_SYSCALL_NAME
};

}  // namespace blockring
