#include "device_open.h"

#include <errno.h>

#include "../kernel/block_device.h"
#include "../kernel/file.h"

namespace blockring {
namespace {

int Fail(DeviceOpened* out, int err, const char* syscall, const char* what) {
  out->syscall = syscall;
  out->what = what;
  return err;
}

int Inspect(int fd, const DeviceOpenOptions& o, DeviceOpened* out) {
  Geometry g;
  int r = QueryGeometry(fd, &g);
  if (r < 0) return Fail(out, r, "fstat", "cannot inspect device");
  DeviceConfig& c = out->config;
  c.direct = o.direct;
  c.read_only = o.read_only || g.read_only;
  c.growable = o.growable && !g.is_block_device;
  c.is_block_device = g.is_block_device;
  c.size = g.size;
  uint32_t lbs = g.logical_block_size;
  if (c.direct) {
    // Alignment O_DIRECT needs: statx DIOALIGN (6.1+), else the block
    // device's logical block size, else probe with real reads.
    uint32_t off = g.dio_offset_align, mem = g.dio_mem_align;
    if (o.probe_alignment) off = mem = 0;
    if (!off && g.is_block_device) off = mem = lbs;
    if (!off && ProbeDirectAlignment(fd, &off, &mem) < 0) off = mem = 4096;
    c.offset_align = off;
    c.mem_align = mem ? mem : off;
    if (!lbs) lbs = off;
  }
  if (o.exclusive && !g.is_block_device) {
    // Block devices get O_EXCL at open; files an OFD lock.
    r = LockFileExclusive(fd);
    if (r < 0) return Fail(out, r == -EAGAIN ? -EBUSY : r, "fcntl", "device is in use by another exclusive opener");
  }
  if (!lbs) lbs = 512;
  if (g.is_block_device) c.block_size = lbs;
  out->logical_block_size = lbs;
  out->physical_block_size = g.physical_block_size ? g.physical_block_size : lbs;
  return 0;
}

}  // namespace

int OpenDevice(const char* path, const DeviceOpenOptions& o, DeviceOpened* out) {
  OpenRequest req;
  req.read_only = o.read_only;
  req.create = o.create;
  req.direct = o.direct;
  req.exclusive = o.exclusive;
  req.has_size = o.has_size;
  req.size = o.size;
  const char* syscall = "open";
  int fd = OpenDeviceFile(path, req, &syscall);
  if (fd < 0) return Fail(out, fd, syscall, "cannot open device");
  int r = Inspect(fd, o, out);
  if (r < 0) {
    CloseFd(fd);
    return r;
  }
  out->fd = fd;
  return 0;
}

}  // namespace blockring
