// WriteLog: the engine's record of every write, write-zeroes, discard and
// flush that reaches the kernel for the devices it is attached to, in the
// spirit of Linux's dm-log-writes. Each entry carries two stamps on the
// log's own sequence counter: when the engine handed the request to the
// backend (issued) and when it finished (completed; 0 while in flight or
// if it failed). A write's data is copied at issue, which is what the
// kernel is given. Crash states are rebuilt from it (lib/write-log.ts):
// what a completed flush made durable, plus any subset of what came after.
//
// Because it sits below every API, it records what the kernel really got:
// data a qcow2 image's cluster map sends straight from the engine, and the
// format layer's metadata writes, on one counter. JS thread only (the
// engine's thread).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

namespace blockring {

enum class LogKind : uint8_t { kWrite = 0, kFlush = 1, kZeroes = 2 };

struct LogEntry {
  LogKind kind = LogKind::kWrite;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::vector<uint8_t> data;  // kWrite only
  uint64_t issued = 0;
  uint64_t completed = 0;
};

class WriteLog {
 public:
  // The next sequence number (also for stamping events outside the log).
  uint64_t Now() { return ++seq_; }
  // Records an entry issued now; returns its index. For kWrite, copies
  // length bytes gathered from iov.
  size_t Issue(LogKind kind, uint64_t offset, uint64_t length, const iovec* iov, uint32_t iovcnt);
  void Complete(size_t index) { entries_[index].completed = Now(); }
  const std::vector<LogEntry>& entries() const { return entries_; }

 private:
  uint64_t seq_ = 0;
  std::vector<LogEntry> entries_;
};

}  // namespace blockring
