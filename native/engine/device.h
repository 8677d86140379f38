// An open file or block device inside one engine: the unit of task-set
// ordering and of close-waits-for-in-flight.
#pragma once

#include <cstdint>
#include <memory>

#include "../format/cluster_map.h"
#include "scheduler.h"
#include "write_log.h"

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
  // An image device (qcow2): no fd of its own. Requests are split by map
  // into requests on file (the image file) and backing (raw or another
  // image device; null without one); what map does not know is parked for
  // the format layer (Engine::TakeParked).
  std::shared_ptr<ClusterMap> map;
  Device* file = nullptr;
  Device* backing = nullptr;
  // Records what reaches the kernel for this device (write_log.h), if set.
  std::shared_ptr<WriteLog> log;
  // The io_uring backend's nowait-read state: after a try that found the
  // data not ready, this device's reads skip the try nowait_skip times
  // (doubling per miss in a row, up to 255; a hit resets both).
  uint16_t nowait_skip = 0;
  uint8_t nowait_misses = 0;
};

}  // namespace blockring
