// An open file or block device inside one engine: the unit of task-set
// ordering and of close-waits-for-in-flight.
#pragma once

#include <cstdint>

#include "scheduler.h"

namespace blockring {

struct DeviceConfig {
  bool direct = false;
  bool read_only = false;
  bool growable = false;       // writes past the end extend the device
  bool is_block_device = false;
  uint64_t size = 0;
  uint32_t offset_align = 1;   // O_DIRECT: offsets and lengths
  uint32_t mem_align = 1;      // O_DIRECT: buffer addresses
  uint32_t block_size = 1;     // block devices: discard/write-zeroes granularity
};

struct Device {
  int fd = -1;
  uint32_t handle = 0;
  DeviceConfig config;
  uint64_t size = 0;  // grows with completed writes on growable devices
  bool closing = false;
  uint64_t inflight = 0;  // accepted, not yet completed (dormant included)
  TaskSet tasks;
};

}  // namespace blockring
