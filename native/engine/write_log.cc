#include "write_log.h"

#include <algorithm>
#include <cstring>

namespace blockring {

size_t WriteLog::Issue(LogKind kind, uint64_t offset, uint64_t length, const iovec* iov, uint32_t iovcnt) {
  LogEntry e;
  e.kind = kind;
  e.offset = offset;
  e.length = length;
  if (kind == LogKind::kWrite) {
    e.data.resize(length);
    uint64_t at = 0;
    for (uint32_t i = 0; i < iovcnt && at < length; i++) {
      uint64_t n = std::min<uint64_t>(iov[i].iov_len, length - at);
      std::memcpy(e.data.data() + at, iov[i].iov_base, n);
      at += n;
    }
  }
  e.issued = Now();
  entries_.push_back(std::move(e));
  return entries_.size() - 1;
}

}  // namespace blockring
