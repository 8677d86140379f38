// Where one qcow2 image's guest clusters live, as the TypeScript format
// layer (lib/format/qcow2.ts) decoded them. That layer stays the only
// decoder of L2 entries: it installs each L2 table it resolves and pushes
// every entry it changes (allocation, discard, write-zeroes, copy-on-write,
// resize). Engines read it to split requests into host requests with no
// JavaScript: the ring's engine on its thread, vhost-user servers on
// theirs, so every access takes the lock. Bounded: at most max_tables
// tables of 2^l2_bits entries (8 bytes each) are held; the oldest
// installed goes first. No syscalls, no N-API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

namespace blockring {

class ClusterMap {
 public:
  // An entry: a cluster-aligned host offset with these flags in its low
  // bits (clusters are at least 512 bytes). 0: not known here.
  static constexpr uint64_t kData = 1;      // allocated in the image file at the host offset
  static constexpr uint64_t kWritable = 2;  // and its refcount is 1 (QCOW_OFLAG_COPIED): written in place
  static constexpr uint64_t kZero = 4;      // reads as zeros
  static constexpr uint64_t kBacking = 8;   // reads from the backing device at the same guest offset
  static constexpr uint64_t kFlagMask = 15;

  enum class PieceKind : uint8_t { kHost, kZero, kBacking };
  struct Piece {
    PieceKind kind;
    uint64_t at;      // byte offset within the request
    uint64_t target;  // host offset (kHost) or guest offset (kBacking)
    uint64_t length;
  };

  ClusterMap(unsigned cluster_bits, unsigned l2_bits, uint64_t size, size_t max_tables);

  // Replaces table `table` (guest clusters table << l2_bits ...) with count entries.
  void Install(uint64_t table, const uint64_t* entries, size_t count);
  // Updates one cluster's entry if its table is held (else the next miss reinstalls it).
  void Set(uint64_t cluster, uint64_t entry);
  bool Has(uint64_t table) const;
  void Clear();
  void SetSize(uint64_t size);
  uint64_t size() const;
  size_t tables() const;
  uint64_t cluster_size() const { return uint64_t{1} << cluster_bits_; }

  // Splits [offset, offset + length) (within size) into pieces, merging
  // neighbours that stay contiguous. False when a cluster is not known,
  // or for a write not writable in place: the format layer resolves it.
  bool Plan(bool write, uint64_t offset, uint64_t length, std::vector<Piece>* out) const;

 private:
  const unsigned cluster_bits_;
  const unsigned l2_bits_;
  const size_t max_tables_;
  mutable std::shared_mutex mu_;
  uint64_t size_;
  std::unordered_map<uint64_t, std::unique_ptr<uint64_t[]>> tables_;
  std::deque<uint64_t> order_;  // install order (eviction)
};

}  // namespace blockring
