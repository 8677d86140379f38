#include "cluster_map.h"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace blockring {

ClusterMap::ClusterMap(unsigned cluster_bits, unsigned l2_bits, uint64_t size, size_t max_tables)
    : cluster_bits_(cluster_bits), l2_bits_(l2_bits), max_tables_(std::max<size_t>(max_tables, 1)), size_(size) {}

void ClusterMap::Install(uint64_t table, const uint64_t* entries, size_t count) {
  size_t n = size_t{1} << l2_bits_;
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = tables_.find(table);
  if (it == tables_.end()) {
    while (tables_.size() >= max_tables_ && !order_.empty()) {
      tables_.erase(order_.front());
      order_.pop_front();
    }
    it = tables_.emplace(table, std::make_unique<uint64_t[]>(n)).first;
    order_.push_back(table);
  }
  uint64_t* t = it->second.get();
  size_t k = std::min(count, n);
  std::memcpy(t, entries, k * sizeof(uint64_t));
  std::fill(t + k, t + n, 0);
}

void ClusterMap::Set(uint64_t cluster, uint64_t entry) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto it = tables_.find(cluster >> l2_bits_);
  if (it != tables_.end()) it->second[cluster & ((uint64_t{1} << l2_bits_) - 1)] = entry;
}

bool ClusterMap::Has(uint64_t table) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return tables_.count(table) != 0;
}

void ClusterMap::Clear() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  tables_.clear();
  order_.clear();
}

void ClusterMap::SetSize(uint64_t size) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  size_ = size;
}

uint64_t ClusterMap::size() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return size_;
}

size_t ClusterMap::tables() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return tables_.size();
}

bool ClusterMap::Plan(bool write, uint64_t offset, uint64_t length, std::vector<Piece>* out) const {
  out->clear();
  const uint64_t cs = uint64_t{1} << cluster_bits_;
  const uint64_t mask = (uint64_t{1} << l2_bits_) - 1;
  std::shared_lock<std::shared_mutex> lock(mu_);
  if (offset > size_ || length > size_ - offset) return false;
  uint64_t held = UINT64_MAX;
  const uint64_t* t = nullptr;
  for (uint64_t pos = offset, end = offset + length; pos < end;) {
    uint64_t c = pos >> cluster_bits_;
    if ((c >> l2_bits_) != held) {
      held = c >> l2_bits_;
      auto it = tables_.find(held);
      if (it == tables_.end()) return false;
      t = it->second.get();
    }
    uint64_t e = t[c & mask];
    uint64_t in = pos & (cs - 1);
    uint64_t n = std::min(end - pos, cs - in);
    Piece p{PieceKind::kHost, pos - offset, 0, n};
    if (e & kData) {
      p.target = (e & ~kFlagMask) + in;
    } else if (e & kZero) {
      p.kind = PieceKind::kZero;
    } else if (e & kBacking) {
      p.kind = PieceKind::kBacking;
      p.target = pos;
    } else {
      return false;
    }
    if (write && (p.kind != PieceKind::kHost || !(e & kWritable))) return false;
    Piece* last = out->empty() ? nullptr : &out->back();
    if (last && last->kind == p.kind && (p.kind == PieceKind::kZero || last->target + last->length == p.target)) {
      last->length += n;
    } else {
      out->push_back(p);
    }
    pos += n;
  }
  return true;
}

}  // namespace blockring
