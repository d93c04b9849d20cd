#include "runtime/detail/state_cache.hpp"

#include <xxhash.h>

#include <cassert>
#include <utility>

namespace vigil::detail {

namespace {

constexpr size_t min_slots = 64;

}  // namespace

state_cache::state_cache(size_t budget_bytes) : budget_(budget_bytes) {
  slots_.resize(min_slots);
}

uint64_t state_cache::hash_of(std::string_view key) {
  return XXH3_64bits(key.data(), key.size());
}

uint32_t state_cache::find(std::string_view key) {
  if (last_ != npos && entries_[last_].key() == key) return last_;
  uint64_t h = hash_of(key);
  auto tag = static_cast<uint32_t>(h >> 32);
  size_t mask = slots_.size() - 1;
  for (size_t s = h & mask;; s = (s + 1) & mask) {
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

uint32_t state_cache::insert(std::string_view key) {
  if (size_ == entries_.size()) entries_.emplace_back();
  auto i = static_cast<uint32_t>(size_++);
  entry& e = entries_[i];
  e.key_size = static_cast<uint32_t>(key.size());
  if (key.size() <= inline_key_bytes) {
    key.copy(e.key_inline, key.size());
  } else {
    e.key_heap.assign(key.data(), key.size());
  }
  e.value.clear();
  e.hash = hash_of(key);
  e.present = false;
  e.dirty = false;
  e.referenced = true;
  bytes_ += entry_bytes(e);
  if (size_ * 2 > slots_.size()) {
    rebuild_slots(slots_.size() * 2);
  } else {
    place(i);
  }
  last_ = i;
  return i;
}

void state_cache::set_loaded(uint32_t i, std::string_view stored) {
  entry& e = entries_[i];
  bytes_ -= e.value.size();
  e.value.assign(stored.data(), stored.size());
  bytes_ += e.value.size();
  e.present = true;
}

void state_cache::write(uint32_t i, std::string_view stored) {
  entry& e = entries_[i];
  bytes_ -= e.value.size();
  e.value.assign(stored.data(), stored.size());
  bytes_ += e.value.size();
  e.present = true;
  mark_dirty(i);
}

void state_cache::erase(uint32_t i) {
  entry& e = entries_[i];
  bytes_ -= e.value.size();
  e.value.clear();
  e.present = false;
  mark_dirty(i);
}

void state_cache::mark_dirty(uint32_t i) {
  if (!entries_[i].dirty) {
    entries_[i].dirty = true;
    dirty_.push_back(i);
  }
}

void state_cache::evict() {
  assert(dirty_.empty());  // Dirty entries are written back before eviction.
  size_t kept = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < size_; ++i) {
    entry& e = entries_[i];
    if (!e.referenced) continue;
    e.referenced = false;
    bytes += entry_bytes(e);
    if (kept != i) std::swap(entries_[kept], e);  // The dropped entry keeps its buffers.
    ++kept;
  }
  if (bytes > budget_ / 4 * 3) {
    kept = 0;
    bytes = 0;
  }
  size_ = kept;
  bytes_ = bytes;
  last_ = npos;
  size_t slot_count = min_slots;
  while (slot_count < size_ * 2) slot_count *= 2;
  rebuild_slots(slot_count);
}

void state_cache::place(uint32_t index) {
  const entry& e = entries_[index];
  size_t mask = slots_.size() - 1;
  size_t s = e.hash & mask;
  while (slots_[s].index != 0) s = (s + 1) & mask;
  slots_[s] = slot{static_cast<uint32_t>(e.hash >> 32), index + 1};
}

void state_cache::rebuild_slots(size_t slot_count) {
  slots_.assign(slot_count, slot{});
  for (size_t i = 0; i < size_; ++i) place(static_cast<uint32_t>(i));
}

}  // namespace vigil::detail
