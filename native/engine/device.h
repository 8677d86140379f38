// An open file or block device inside one engine: the unit of task-set
// ordering and of close-waits-for-in-flight.
#pragma once

#include <cstdint>

#include "scheduler.h"

namespace blockring {

struct Device {
  int fd = -1;
  uint32_t handle = 0;
  bool direct = false;
  bool read_only = false;
  bool closing = false;
  uint64_t inflight = 0;  // accepted, not yet completed (dormant included)
  TaskSet tasks;
};

}  // namespace blockring

#include "../kernel/block_device.h"

namespace blockring {

// Geometry of an open fd, for the binding (which never calls the kernel).
inline int QueryDeviceGeometry(int fd, Geometry* g) { return QueryGeometry(fd, g); }

}  // namespace blockring
