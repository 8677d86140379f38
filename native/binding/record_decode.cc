#include "record_decode.h"

#include <cstdio>

#include "records.h"
#include "values.h"

namespace blockring {

bool CheckRecord(const double* rec, const RecordBuffers& bufs, const Engine& engine, RecordError* err, char* msg,
                 size_t msg_len) {
  auto fail = [&](ErrorClass cls, const char* code, const char* m) {
    *err = {cls, code, m};
    return false;
  };
  const RegisteredBuffers& reg = bufs.registered;
  if (!IsUint(rec[kSqId], kMaxSafeInteger)) return fail(ErrorClass::kType, "ERR_INVALID_ARG_VALUE", "request id must be a safe non-negative integer");
  double word = rec[kSqOpWord];
  if (!IsUint(word, 0xffffffff)) return fail(ErrorClass::kType, "ERR_INVALID_ARG_VALUE", "bad request record");
  uint32_t w = static_cast<uint32_t>(word);
  unsigned op = w & 0xff, tag = (w >> 8) & 0xff;
  if (op > static_cast<unsigned>(Op::kWriteZeroes)) return fail(ErrorClass::kType, "ERR_INVALID_ARG_VALUE", "unknown op");
  if (tag > static_cast<unsigned>(Tag::kHead)) return fail(ErrorClass::kType, "ERR_INVALID_ARG_VALUE", "unknown tag");
  if (!IsUint(rec[kSqDevice], 0xffffffff)) return fail(ErrorClass::kType, "ERR_INVALID_ARG_VALUE", "bad device handle");
  const Device* dev = engine.GetDevice(static_cast<uint32_t>(rec[kSqDevice]));
  if (!dev) return fail(ErrorClass::kState, "ERR_DEVICE_CLOSED", "device is closed");
  if (!IsUint(rec[kSqOffset], kMaxSafeInteger)) return fail(ErrorClass::kRange, "ERR_OUT_OF_RANGE", "offset must be a safe non-negative integer");
  const DeviceConfig& c = dev->config;
  Op o = static_cast<Op>(op);
  if (o != Op::kRead && o != Op::kFlush && c.read_only) return fail(ErrorClass::kState, "ERR_READ_ONLY", "device is open read-only");
  if (o == Op::kFlush) return true;
  uint64_t offset = static_cast<uint64_t>(rec[kSqOffset]);
  uint64_t length = 0;
  bool transfer = o == Op::kRead || o == Op::kWrite;
  if (!transfer) {
    if (!IsUint(rec[kSqLength], kMaxSafeInteger)) return fail(ErrorClass::kRange, "ERR_OUT_OF_RANGE", "length must be a safe non-negative integer");
    length = static_cast<uint64_t>(rec[kSqLength]);
    if (c.is_block_device && (offset % c.block_size || length % c.block_size)) {
      // The kernel refuses these with EINVAL; say why before submitting.
      snprintf(msg, msg_len, "%s on a block device: offset and length must be multiples of %u bytes",
               o == Op::kDiscard ? "discard" : "write-zeroes", c.block_size);
      return fail(ErrorClass::kRange, "ERR_MISALIGNED", msg);
    }
  } else if (bufs.raw) {
    if (reg.empty() || !IsUint(rec[kSqBuffer], reg.size() - 1.0)) {
      return fail(ErrorClass::kRange, "ERR_OUT_OF_RANGE", "registered buffer index out of range");
    }
    const View& b = reg[static_cast<size_t>(rec[kSqBuffer])];
    if (!IsUint(rec[kSqBufOffset], static_cast<double>(b.length)) || !IsUint(rec[kSqLength], kMaxSafeInteger) ||
        rec[kSqBufOffset] + rec[kSqLength] > static_cast<double>(b.length)) {
      return fail(ErrorClass::kRange, "ERR_OUT_OF_RANGE", "request exceeds its registered buffer");
    }
    length = static_cast<uint64_t>(rec[kSqLength]);
    uintptr_t address = reinterpret_cast<uintptr_t>(b.data + static_cast<size_t>(rec[kSqBufOffset]));
    if (c.direct && address % c.mem_align) {
      snprintf(msg, msg_len,
               "O_DIRECT: buffer address 0x%llx (registered buffer %zu + %llu) is not a multiple of %u "
               "(dev.memoryAlignment); allocate buffers with allocAligned(size, dev)",
               static_cast<unsigned long long>(address), static_cast<size_t>(rec[kSqBuffer]),
               static_cast<unsigned long long>(rec[kSqBufOffset]), c.mem_align);
      return fail(ErrorClass::kRange, "ERR_MISALIGNED", msg);
    }
  } else {
    double first = rec[kSqBuffer], n = rec[kSqBufCount];
    if (!IsUint(first, bufs.views.size()) || !IsUint(n, bufs.views.size()) || n < 1 || first + n > bufs.views.size()) {
      return fail(ErrorClass::kRange, "ERR_OUT_OF_RANGE", "buffer index out of range");
    }
    for (size_t k = static_cast<size_t>(first); k < static_cast<size_t>(first + n); k++) {
      if (bufs.views[k].bad) return fail(ErrorClass::kType, "ERR_INVALID_ARG_TYPE", "buffer must be an ArrayBufferView");
      length += bufs.views[k].length;
      if (!c.direct) continue;
      uintptr_t address = reinterpret_cast<uintptr_t>(bufs.views[k].data);
      // One buffer: its length is the request's, checked below as "length".
      char which[32] = "buffer";
      if (n > 1) snprintf(which, sizeof(which), "buffers[%zu]", k - static_cast<size_t>(first));
      if (address % c.mem_align) {
        snprintf(msg, msg_len,
                 "O_DIRECT: %s address 0x%llx is not a multiple of %u (dev.memoryAlignment); "
                 "allocate buffers with allocAligned(size, dev)",
                 which, static_cast<unsigned long long>(address), c.mem_align);
        return fail(ErrorClass::kRange, "ERR_MISALIGNED", msg);
      }
      if (n > 1 && bufs.views[k].length % c.offset_align) {
        snprintf(msg, msg_len,
                 "O_DIRECT: %s length %zu is not a multiple of %u (dev.offsetAlignment); "
                 "allocate buffers with allocAligned(size, dev) and a size that is a multiple of it",
                 which, bufs.views[k].length, c.offset_align);
        return fail(ErrorClass::kRange, "ERR_MISALIGNED", msg);
      }
    }
  }
  if (c.direct && transfer && (offset % c.offset_align || length % c.offset_align)) {
    bool bad_offset = offset % c.offset_align;
    snprintf(msg, msg_len,
             "O_DIRECT: %s %llu is not a multiple of %u (dev.offsetAlignment)%s",
             bad_offset ? "offset" : "length",
             static_cast<unsigned long long>(bad_offset ? offset : length), c.offset_align,
             bad_offset ? "" : "; allocate buffers with allocAligned(size, dev) and a size that is a multiple of it");
    return fail(ErrorClass::kRange, "ERR_MISALIGNED", msg);
  }
  if (o != Op::kRead && !c.growable && offset + length > dev->size) {
    snprintf(msg, msg_len, "%s beyond the end of the device (%llu + %llu > size %llu)%s",
             o == Op::kWrite ? "write" : "request", static_cast<unsigned long long>(offset),
             static_cast<unsigned long long>(length), static_cast<unsigned long long>(dev->size),
             c.is_block_device ? "" : "; open with growable: true to let writes extend it");
    return fail(ErrorClass::kRange, "ERR_OUT_OF_RANGE", msg);
  }
  return true;
}

void DecodeRecord(const double* rec, const RecordBuffers& bufs, const Engine& engine, Request* r) {
  uint32_t w = static_cast<uint32_t>(rec[kSqOpWord]);
  r->user_data = static_cast<uint64_t>(rec[kSqId]);
  r->op = static_cast<Op>(w & 0xff);
  r->tag = static_cast<Tag>((w >> 8) & 0xff);
  r->flags = static_cast<uint16_t>((w >> 16) & (kFlagFua | kFlagFlushMetadata | kFlagUnmap));
  r->dev = engine.GetDevice(static_cast<uint32_t>(rec[kSqDevice]));
  r->offset = r->op == Op::kFlush ? 0 : static_cast<uint64_t>(rec[kSqOffset]);
  if (bufs.raw) r->flags |= kFlagRaw;
  if (!r->IsTransfer()) {
    r->length = r->op == Op::kFlush ? 0 : static_cast<uint64_t>(rec[kSqLength]);
  } else if (bufs.raw) {
    size_t index = static_cast<size_t>(rec[kSqBuffer]);
    r->SetIovecs(1);
    r->iov[0].iov_base = bufs.registered[index].data + static_cast<size_t>(rec[kSqBufOffset]);
    r->iov[0].iov_len = static_cast<size_t>(rec[kSqLength]);
    r->length = r->iov[0].iov_len;
    if (bufs.registered.fixed() && r->length) {  // a zero-length fixed request is EFAULT
      r->flags |= kFlagFixedBuffer;
      r->buf_index = static_cast<uint16_t>(index);
    }
  } else {
    uint32_t first = static_cast<uint32_t>(rec[kSqBuffer]);
    uint32_t n = static_cast<uint32_t>(rec[kSqBufCount]);
    r->SetIovecs(n);
    r->length = 0;
    for (uint32_t k = 0; k < n; k++) {
      r->iov[k].iov_base = bufs.views[first + k].data;
      r->iov[k].iov_len = bufs.views[first + k].length;
      r->length += bufs.views[first + k].length;
      r->HoldMemory(bufs.views[first + k].data, bufs.views[first + k].length);
    }
    // A buffer inside a registered pool goes as READ_FIXED/WRITE_FIXED.
    int fixed = n == 1 && bufs.registered.fixed() ? bufs.registered.Find(bufs.views[first].data, bufs.views[first].length) : -1;
    if (fixed >= 0) {
      r->flags |= kFlagFixedBuffer;
      r->buf_index = static_cast<uint16_t>(fixed);
    }
  }
}

}  // namespace blockring
