// The vhost-user wire format (QEMU docs/interop/vhost-user.rst) and the
// virtio constants the block backend uses (virtio 1.2: split virtqueues,
// virtio-blk). Little-endian host assumed, as vhost-user is host-local.
#pragma once

#include <cstdint>

namespace blockring {
namespace vhost {

enum MsgType : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kGetConfig = 24,
  kSetConfig = 25,
  kResetDevice = 34,
};

// Header flags.
constexpr uint32_t kVersion = 0x1;
constexpr uint32_t kFlagReply = 0x4;
constexpr uint32_t kFlagNeedReply = 0x8;

// Protocol feature bits.
constexpr uint64_t kProtocolMq = 1ull << 0;
constexpr uint64_t kProtocolReplyAck = 1ull << 3;
constexpr uint64_t kProtocolConfig = 1ull << 9;
constexpr uint64_t kProtocolResetDevice = 1ull << 13;

// Virtio feature bits.
constexpr uint64_t kFeatureProtocolFeatures = 1ull << 30;  // VHOST_USER_F_PROTOCOL_FEATURES
constexpr uint64_t kFeatureIndirectDesc = 1ull << 28;
constexpr uint64_t kFeatureEventIdx = 1ull << 29;
constexpr uint64_t kFeatureVersion1 = 1ull << 32;
constexpr uint64_t kBlkSegMax = 1ull << 2;
constexpr uint64_t kBlkRo = 1ull << 5;
constexpr uint64_t kBlkBlkSize = 1ull << 6;
constexpr uint64_t kBlkFlush = 1ull << 9;
constexpr uint64_t kBlkMq = 1ull << 12;
constexpr uint64_t kBlkDiscard = 1ull << 13;
constexpr uint64_t kBlkWriteZeroes = 1ull << 14;

struct MsgHeader {
  uint32_t request;
  uint32_t flags;
  uint32_t size;  // payload bytes after the header
};
static_assert(sizeof(MsgHeader) == 12, "vhost-user header is 12 bytes");

constexpr uint32_t kMaxPayload = 4096;  // every message we accept fits; larger is a protocol error
constexpr uint32_t kMaxMemRegions = 8;
constexpr uint32_t kMaxFds = 8;

struct VringState {
  uint32_t index;
  uint32_t num;
};

struct VringAddr {
  uint32_t index;
  uint32_t flags;
  uint64_t desc_user_addr;
  uint64_t used_user_addr;
  uint64_t avail_user_addr;
  uint64_t log_guest_addr;
};

struct MemRegion {
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  uint64_t userspace_addr;
  uint64_t mmap_offset;
};

struct MemTable {
  uint32_t nregions;
  uint32_t padding;
  MemRegion regions[kMaxMemRegions];
};

struct ConfigHeader {
  uint32_t offset;
  uint32_t size;
  uint32_t flags;
};

// SET_VRING_KICK/CALL/ERR payload: queue index in bits 0-7, bit 8 = no fd.
constexpr uint64_t kVringIndexMask = 0xff;
constexpr uint64_t kVringNoFd = 1ull << 8;

// Split virtqueue layout.
constexpr uint16_t kDescNext = 1;
constexpr uint16_t kDescWrite = 2;
constexpr uint16_t kDescIndirect = 4;
constexpr uint16_t kAvailNoInterrupt = 1;
constexpr uint32_t kMaxQueueSize = 32768;

struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Desc) == 16, "virtq_desc is 16 bytes");

struct UsedElem {
  uint32_t id;
  uint32_t len;
};

// virtio-blk.
constexpr uint32_t kBlkTypeIn = 0;
constexpr uint32_t kBlkTypeOut = 1;
constexpr uint32_t kBlkTypeFlush = 4;
constexpr uint32_t kBlkTypeGetId = 8;
constexpr uint32_t kBlkTypeDiscard = 11;
constexpr uint32_t kBlkTypeWriteZeroes = 13;
constexpr uint8_t kBlkStatusOk = 0;
constexpr uint8_t kBlkStatusIoErr = 1;
constexpr uint8_t kBlkStatusUnsupported = 2;
constexpr uint32_t kBlkIdBytes = 20;
constexpr uint32_t kSectorSize = 512;

struct BlkOutHeader {
  uint32_t type;
  uint32_t ioprio;
  uint64_t sector;
};

struct BlkDiscardSegment {
  uint64_t sector;
  uint32_t num_sectors;
  uint32_t flags;  // bit 0: unmap (write-zeroes only)
};

#pragma pack(push, 1)
struct BlkConfig {
  uint64_t capacity;  // in 512-byte sectors
  uint32_t size_max;
  uint32_t seg_max;
  uint16_t cylinders;
  uint8_t heads;
  uint8_t sectors;
  uint32_t blk_size;
  uint8_t physical_block_exp;
  uint8_t alignment_offset;
  uint16_t min_io_size;
  uint32_t opt_io_size;
  uint8_t writeback;
  uint8_t unused0;
  uint16_t num_queues;
  uint32_t max_discard_sectors;
  uint32_t max_discard_seg;
  uint32_t discard_sector_alignment;
  uint32_t max_write_zeroes_sectors;
  uint32_t max_write_zeroes_seg;
  uint8_t write_zeroes_may_unmap;
  uint8_t unused1[3];
};
#pragma pack(pop)
static_assert(sizeof(BlkConfig) == 60, "virtio_blk_config up to write_zeroes_may_unmap");

}  // namespace vhost
}  // namespace blockring
