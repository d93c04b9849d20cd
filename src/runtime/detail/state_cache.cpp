#include "runtime/detail/state_cache.hpp"

#include <xxhash.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <utility>

namespace vigil::detail {

namespace {

constexpr size_t min_slots = 64;

}  // namespace

uint64_t state_cache::load_be(std::string_view s, size_t pos) {
  unsigned char b[8] = {};
  if (pos < s.size()) std::memcpy(b, s.data() + pos, std::min<size_t>(8, s.size() - pos));
  uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return v;
}

state_cache::state_cache(size_t budget_bytes) : budget_(budget_bytes) {
  slots_.resize(min_slots);
}

uint64_t state_cache::hash_of(std::string_view key) {
  return XXH3_64bits(key.data(), key.size());
}

uint32_t state_cache::find(std::string_view key) {
  if (last_ != npos && entries_[last_].key() == key) return last_;
  uint64_t h = hash_of(key);
  uint32_t tag = tag_of(h);
  size_t mask = slots_.size() - 1;
  for (size_t s = tag & mask;; s = (s + 1) & mask) {
    const slot& sl = slots_[s];
    if (sl.index == 0) return npos;
    if (sl.tag == tag) {
      entry& e = entries_[sl.index - 1];
      if (e.hash == h && e.key() == key) {
        e.referenced = true;
        last_ = sl.index - 1;
        return last_;
      }
    }
  }
}

uint32_t state_cache::insert(std::string_view key, bool stored) {
  uint32_t i;
  if (!free_.empty()) {
    i = free_.back();
    free_.pop_back();
  } else {
    if (used_ == entries_.size()) entries_.emplace_back();
    i = static_cast<uint32_t>(used_++);
  }
  ++size_;
  entry& e = entries_[i];
  e.key_size = static_cast<uint32_t>(key.size());
  e.value_size = 0;
  if (e.key_in_heap()) {
    reserve_heap(e, key.size(), 0);
    key.copy(e.heap.get(), key.size());
  } else {
    key.copy(e.inline_data, key.size());
  }
  e.hash = hash_of(key);
  e.live = true;
  e.present = false;
  e.dirty = false;
  e.stored = stored;
  e.referenced = true;
  e.listed = false;
  e.deltas = 0;
  bytes_ += entry_bytes(e);
  if (size_ * 2 > slots_.size()) {
    rebuild_slots(slots_.size() * 2);
  } else {
    place(i);
  }
  last_ = i;
  return i;
}

void state_cache::reserve_heap(entry& e, size_t bytes, size_t keep) {
  if (bytes <= e.heap_capacity) return;
  // Grow by half at least: list-like values (e.g. a join's row chunks) grow a little per write.
  size_t capacity = std::max<size_t>(bytes, e.heap_capacity + e.heap_capacity / 2);
  capacity = (capacity + 15) & ~size_t{15};
  auto block = std::make_unique_for_overwrite<char[]>(capacity);
  if (keep > 0) std::memcpy(block.get(), e.heap.get(), keep);
  if (e.live) bytes_ += capacity - e.heap_capacity;
  e.heap = std::move(block);
  e.heap_capacity = static_cast<uint32_t>(capacity);
}

void state_cache::set_value(uint32_t i, std::string_view value) {
  entry& e = entries_[i];
  if (e.key_size + value.size() <= inline_bytes) {
    if (!value.empty()) std::memcpy(e.inline_data + e.key_size, value.data(), value.size());
  } else {
    // The heap block holds the key first if it is too long for the inline buffer.
    const size_t offset = e.key_in_heap() ? e.key_size : 0;
    reserve_heap(e, offset + value.size(), offset);
    if (!value.empty()) std::memcpy(e.heap.get() + offset, value.data(), value.size());
  }
  e.value_size = static_cast<uint32_t>(value.size());
}

void state_cache::set_loaded(uint32_t i, std::string_view stored) {
  set_value(i, stored);
  entry& e = entries_[i];
  e.present = true;
  e.stored = true;
}

void state_cache::write(uint32_t i, std::string_view stored) {
  set_value(i, stored);
  entries_[i].present = true;
  mark_dirty(i);
}

void state_cache::erase(uint32_t i) {
  if (!entries_[i].stored) {
    remove(i);
    return;
  }
  set_value(i, {});
  entries_[i].present = false;
  mark_dirty(i);
}

void state_cache::mark_dirty(uint32_t i) {
  if (!entries_[i].dirty) {
    entries_[i].dirty = true;
    entries_[i].deltas = 0;
    dirty_.push_back(i);
  }
}

void state_cache::remove(uint32_t i) {
  entry& e = entries_[i];
  unplace(i);
  bytes_ -= entry_bytes(e);
  e.live = false;
  e.present = false;
  e.dirty = false;  // A stale mention in dirty_ is skipped.
  --size_;
  free_.push_back(i);
  if (last_ == i) last_ = npos;
}

void state_cache::sort_order() {
  std::sort(order_.begin(), order_.end(), [this](const order_item& a, const order_item& b) {
    if (a.hi != b.hi) return a.hi < b.hi;
    if (a.lo != b.lo) return a.lo < b.lo;
    return entries_[a.index].key() < entries_[b.index].key();
  });
}

void state_cache::evict() {
  assert(dirty_.empty());  // Dirty entries are written back before eviction.
  size_t kept = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < used_; ++i) {
    entry& e = entries_[i];
    if (!e.live || !e.referenced) {
      e.live = false;
      continue;
    }
    e.referenced = false;
    bytes += entry_bytes(e);
    if (kept != i) std::swap(entries_[kept], e);  // The dropped entry keeps its heap block.
    ++kept;
  }
  if (bytes > budget_ / 4 * 3) {
    for (size_t i = 0; i < kept; ++i) entries_[i].live = false;
    kept = 0;
    bytes = 0;
  }
  used_ = kept;
  size_ = kept;
  free_.clear();
  bytes_ = bytes;
  last_ = npos;
  size_t slot_count = min_slots;
  while (slot_count < size_ * 2) slot_count *= 2;
  rebuild_slots(slot_count);
}

void state_cache::place(uint32_t index) {
  uint32_t tag = tag_of(entries_[index].hash);
  size_t mask = slots_.size() - 1;
  size_t s = tag & mask;
  while (slots_[s].index != 0) s = (s + 1) & mask;
  slots_[s] = slot{tag, index + 1};
}

void state_cache::unplace(uint32_t index) {
  size_t mask = slots_.size() - 1;
  size_t hole = tag_of(entries_[index].hash) & mask;
  while (slots_[hole].index != index + 1) hole = (hole + 1) & mask;
  // Backward-shift deletion: move up every later slot of the run whose home is not between the
  // hole and it, so that every entry stays reachable from its home without gaps.
  for (size_t s = (hole + 1) & mask; slots_[s].index != 0; s = (s + 1) & mask) {
    size_t home = slots_[s].tag & mask;
    if (((s - home) & mask) >= ((s - hole) & mask)) {
      slots_[hole] = slots_[s];
      hole = s;
    }
  }
  slots_[hole] = slot{};
}

void state_cache::rebuild_slots(size_t slot_count) {
  slots_.assign(slot_count, slot{});
  for (size_t i = 0; i < used_; ++i) {
    if (entries_[i].live) place(static_cast<uint32_t>(i));
  }
}

}  // namespace vigil::detail
