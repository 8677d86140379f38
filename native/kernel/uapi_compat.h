// The kernel UAPI definitions blockring uses, on headers from Linux 5.4 on.
// Distributions ship old headers (Ubuntu 22.04: 5.15, RHEL 9: 5.14), so what
// later kernels added is defined here, as libuv does; whether the running
// kernel has it is probed at run time. Include this instead of
// <linux/io_uring.h>: the macros below shadow enum constants of newer
// headers (same values), so the header must already have been read.
#pragma once

#include <linux/io_uring.h>
#include <linux/stat.h>
#include <sys/ioctl.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

// io_uring opcodes. 5.4 defines 0..11 as macros; later headers use an enum.
#ifndef IORING_OP_ASYNC_CANCEL
#define IORING_OP_ASYNC_CANCEL 14  // 5.5
#endif
#ifndef IORING_OP_FALLOCATE
#define IORING_OP_FALLOCATE 17  // 5.6
#endif
#ifndef IORING_OP_READ
#define IORING_OP_READ 22  // 5.6
#endif
#ifndef IORING_OP_WRITE
#define IORING_OP_WRITE 23  // 5.6
#endif
#ifndef IORING_OP_URING_CMD
#define IORING_OP_URING_CMD 46  // 5.19
#endif

// Setup flags, features, ring flags.
#ifndef IORING_SETUP_CQSIZE
#define IORING_SETUP_CQSIZE (1U << 3)  // 5.5
#endif
#ifndef IORING_SETUP_CLAMP
#define IORING_SETUP_CLAMP (1U << 4)  // 5.6
#endif
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)  // 5.18
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)  // 5.19
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)  // 5.19
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)  // 6.0
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)  // 6.1
#endif
#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)  // 6.6
#endif
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)  // 5.19
#endif
#ifndef IORING_ENTER_REGISTERED_RING
#define IORING_ENTER_REGISTERED_RING (1U << 4)  // 5.18
#endif
#ifndef IORING_CQ_EVENTFD_DISABLED
#define IORING_CQ_EVENTFD_DISABLED (1U << 0)  // 5.8
#endif
#ifndef IORING_FEAT_NODROP
#define IORING_FEAT_NODROP (1U << 1)  // 5.5
#endif
#ifndef IORING_SQ_CQ_OVERFLOW
#define IORING_SQ_CQ_OVERFLOW (1U << 1)  // 5.8
#endif

// Register opcodes (macros up to 5.7, an enum since).
#ifndef IORING_REGISTER_PROBE
#define IORING_REGISTER_PROBE 8  // 5.6
#endif
#ifndef IORING_REGISTER_RING_FDS
#define IORING_REGISTER_RING_FDS 20  // 5.18
#endif
#ifndef IORING_UNREGISTER_RING_FDS
#define IORING_UNREGISTER_RING_FDS 21  // 5.18
#endif
#ifndef IO_URING_OP_SUPPORTED
#define IO_URING_OP_SUPPORTED (1U << 0)  // 5.6
#endif

// Asynchronous BLKDISCARD through IORING_OP_URING_CMD (<linux/blkdev.h>, 6.12).
#ifndef BLOCK_URING_CMD_DISCARD
#define BLOCK_URING_CMD_DISCARD _IO(0x12, 0)
#endif

// statx: STATX_DIOALIGN and stx_dio_* are 6.1.
#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

namespace blockring {

// struct io_uring_probe (5.6) with room for every opcode we index.
struct UringProbeOp {
  uint8_t op;
  uint8_t resv;
  uint16_t flags;
  uint32_t resv2;
};
struct UringProbeHeader {
  uint8_t last_op;
  uint8_t ops_len;
  uint16_t resv;
  uint32_t resv2[3];
};
static_assert(sizeof(UringProbeOp) == 8 && sizeof(UringProbeHeader) == 16, "io_uring_probe ABI");

// struct io_uring_rsrc_update (5.13), as IORING_REGISTER_RING_FDS reads it.
struct UringRsrcUpdate {
  uint32_t offset;
  uint32_t resv;
  uint64_t data;
};
static_assert(sizeof(UringRsrcUpdate) == 16, "io_uring_rsrc_update ABI");

// io_cqring_offsets.flags (5.8) sits where 5.4's header has resv[0].
constexpr size_t kCqOffFlags = 24;
static_assert(offsetof(io_cqring_offsets, cqes) == 20 && sizeof(io_cqring_offsets) == 40, "io_cqring_offsets ABI");

// SQE fields newer than 5.4, written at their ABI offsets: cmd_op (5.19)
// shares the 8 bytes of `off`, addr3 (6.0) the first 8 of `__pad2`.
static_assert(sizeof(io_uring_sqe) == 64, "io_uring_sqe ABI");
inline void SqeSetCmdOp(io_uring_sqe* sqe, uint32_t cmd_op) {
  memcpy(reinterpret_cast<char*>(sqe) + 8, &cmd_op, sizeof(cmd_op));
}
inline void SqeSetAddr3(io_uring_sqe* sqe, uint64_t addr3) {
  memcpy(reinterpret_cast<char*>(sqe) + 48, &addr3, sizeof(addr3));
}

// struct statx up to stx_dio_offset_align (6.1); the kernel's struct is
// 256 bytes and only ever grows into its spare tail.
struct StatxDio {
  uint32_t mask;  // stx_mask
  uint8_t before[148];
  uint32_t dio_mem_align;     // stx_dio_mem_align
  uint32_t dio_offset_align;  // stx_dio_offset_align
  uint8_t after[96];
};
static_assert(offsetof(StatxDio, dio_mem_align) == 152 && sizeof(StatxDio) == 256, "statx ABI");

}  // namespace blockring
