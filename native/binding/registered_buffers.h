// The ring's registered-buffer table: the views registerBuffers() was
// given (raw records index them), whether io_uring holds them as fixed
// buffers, an address index so ordinary requests inside a registered
// buffer go as READ_FIXED/WRITE_FIXED, and how many requests use them.
// Runs on the ring's thread. JS pins the buffers (RingHandle holds the
// array).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../engine/backend.h"
#include "../engine/memory_block.h"
#include "../engine/request.h"

namespace blockring {

// A JS ArrayBufferView's bytes.
struct View {
  char* data = nullptr;
  size_t length = 0;
  bool bad = false;  // not an ArrayBufferView: refuses its record alone
};

class RegisteredBuffers {
 public:
  // Replaces the table; with want_fixed, tries to register it with the
  // backend as fixed buffers. Call only when !in_use().
  void Replace(Backend& backend, std::vector<View> table, bool want_fixed);
  // Drops the backend registration (teardown, and before a new table).
  void Unregister(Backend& backend);
  // Drops the table and its holds (teardown, after the drain).
  void Clear();

  bool empty() const { return views_.empty(); }
  size_t size() const { return views_.size(); }
  const View& operator[](size_t i) const { return views_[i]; }
  bool fixed() const { return fixed_; }
  // Index of the registered buffer holding [data, data + length), or -1.
  int Find(const char* data, size_t length) const;

  // Requests that use the table (raw, or fixed-buffer) in flight.
  bool in_use() const { return raw_inflight_ || fixed_inflight_; }
  void Acquire(const Request& r);
  void Release(const Request& r);

 private:
  std::vector<View> views_;
  // Native memory (allocAligned, mapped regions) under the table: held while
  // the table is, since raw requests may use it at any moment.
  std::vector<BlockHold> holds_;
  std::vector<uint32_t> order_;  // indices sorted by address
  bool fixed_ = false;
  uint64_t raw_inflight_ = 0;
  uint64_t fixed_inflight_ = 0;  // non-raw requests using a registered buffer
};

}  // namespace blockring
