// What a vhost-user-blk server needs of a ring's qcow2 image device to
// serve it in place: the cluster map (shared: the format layer keeps
// filling it through the ring), the image file and a raw backing file.
// RingHandle.exportImage puts one here and returns its id; the server's
// constructor takes it in the same JavaScript turn (the fds are the ring's,
// still open then; the server duplicates them). Thread: JS only.
#pragma once

#include <cstdint>
#include <memory>

#include "../engine/device.h"

namespace blockring {

struct ImageSource {
  std::shared_ptr<ClusterMap> map;
  DeviceConfig image;
  int file_fd = -1;
  DeviceConfig file;
  int backing_fd = -1;
  DeviceConfig backing;
};

uint64_t PutImageSource(const ImageSource& s);
bool TakeImageSource(uint64_t id, ImageSource* out);

}  // namespace blockring
