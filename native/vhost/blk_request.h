// virtio-blk request framing (virtio 1.2 section 5.2.6) over a popped chain,
// without assuming how the driver split it into descriptors: the first 16
// readable bytes are the header, the last writable byte is the status, and
// what lies between is the data.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "virtqueue.h"

namespace blockring {
namespace vhost {

struct BlkRequest {
  bool header_ok = false;  // 16 header bytes were present
  uint32_t type = 0;
  uint64_t sector = 0;
  std::vector<iovec> data;  // IN/GET_ID: writable bytes before the status; else readable after the header
  uint64_t data_len = 0;
  uint8_t* status = nullptr;  // nullptr: the chain has no writable byte to report in
};

void ParseBlkRequest(const Chain& chain, BlkRequest* req);
// Copies up to len bytes from iovecs into dst; returns the bytes copied.
size_t GatherBytes(const std::vector<iovec>& iov, void* dst, size_t len);
// Copies up to len bytes from src into iovecs; returns the bytes copied.
size_t ScatterBytes(const std::vector<iovec>& iov, const void* src, size_t len);

}  // namespace vhost
}  // namespace blockring
