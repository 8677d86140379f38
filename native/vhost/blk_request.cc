#include "blk_request.h"

#include <cstring>

namespace blockring {
namespace vhost {
namespace {

// Appends iov's bytes in [skip, skip + len) to out.
void Slice(const std::vector<iovec>& iov, uint64_t skip, uint64_t len, std::vector<iovec>* out) {
  for (const iovec& v : iov) {
    if (!len) return;
    if (skip >= v.iov_len) {
      skip -= v.iov_len;
      continue;
    }
    size_t n = v.iov_len - skip < len ? v.iov_len - skip : static_cast<size_t>(len);
    out->push_back({static_cast<char*>(v.iov_base) + skip, n});
    skip = 0;
    len -= n;
  }
}

uint64_t Total(const std::vector<iovec>& iov) {
  uint64_t n = 0;
  for (const iovec& v : iov) n += v.iov_len;
  return n;
}

}  // namespace

size_t GatherBytes(const std::vector<iovec>& iov, void* dst, size_t len) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == len) break;
    size_t n = v.iov_len < len - done ? v.iov_len : len - done;
    memcpy(static_cast<char*>(dst) + done, v.iov_base, n);
    done += n;
  }
  return done;
}

size_t ScatterBytes(const std::vector<iovec>& iov, const void* src, size_t len) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == len) break;
    size_t n = v.iov_len < len - done ? v.iov_len : len - done;
    memcpy(v.iov_base, static_cast<const char*>(src) + done, n);
    done += n;
  }
  return done;
}

void ParseBlkRequest(const Chain& chain, BlkRequest* req) {
  req->data.clear();
  req->data_len = 0;
  req->status = nullptr;
  req->header_ok = false;
  uint64_t writable = Total(chain.writable);
  if (writable && !chain.last_dropped) {
    const iovec& last = chain.writable.back();
    req->status = static_cast<uint8_t*>(last.iov_base) + last.iov_len - 1;
  }
  BlkOutHeader h;
  if (GatherBytes(chain.readable, &h, sizeof(h)) != sizeof(h)) return;
  req->header_ok = true;
  req->type = h.type;
  req->sector = h.sector;
  if (h.type == kBlkTypeIn || h.type == kBlkTypeGetId) {
    if (writable) Slice(chain.writable, 0, writable - 1, &req->data);
  } else {
    Slice(chain.readable, sizeof(h), Total(chain.readable) - sizeof(h), &req->data);
  }
  req->data_len = Total(req->data);
}

}  // namespace vhost
}  // namespace blockring
