// Layout of the submission and completion records JS writes/reads in shared
// Float64Arrays. Mirrored in lib/records.ts; change both together.
#pragma once

namespace blockring {

// Submission record, 8 doubles.
constexpr unsigned kSqStride = 8;
constexpr unsigned kSqId = 0;        // JS request id
constexpr unsigned kSqOpWord = 1;    // op | tag << 8 | flags << 16
constexpr unsigned kSqDevice = 2;    // device handle
constexpr unsigned kSqBuffer = 3;    // first buffer index (call's list, or registered table)
constexpr unsigned kSqBufCount = 4;  // number of buffers (iovecs)
constexpr unsigned kSqLength = 5;    // bytes: registered-buffer transfers, discard, write-zeroes
constexpr unsigned kSqOffset = 6;    // device offset
constexpr unsigned kSqBufOffset = 7; // byte offset inside a registered buffer

// Completion record, 5 doubles; a raw completion record is the first 4
// (the raw interface's documented layout).
constexpr unsigned kCqStride = 5;
constexpr unsigned kRawCqStride = 4;
constexpr unsigned kCqId = 0;
constexpr unsigned kCqResult = 1;    // bytes, or -errno
constexpr unsigned kCqIssued = 2;    // trace: ring-wide sequence at issue (0 untraced)
constexpr unsigned kCqCompleted = 3; // trace: ring-wide sequence at completion
constexpr unsigned kCqSyscall = 4;   // engine/syscall.h Syscall of the last attempt

}  // namespace blockring
