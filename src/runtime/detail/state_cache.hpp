#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::detail {

/// The write-back cache of the RocksDB state backend: value and map state entries by their
/// RocksDB key. A RocksDB memtable lookup costs microseconds once it holds ~100k keys (skiplist
/// pointer chasing); this open-addressing table costs about two cache misses. Repeated updates of
/// one key reach RocksDB once per write-back.
///
/// An entry is present (has a value) or absent (erased, or known missing from RocksDB), and clean
/// (same as RocksDB) or dirty. The owner drains dirty entries into RocksDB before anything reads
/// RocksDB other than by point lookup (iterators, compaction, checkpoints), and before evict().
///
/// Entries are addressed by index; indices stay valid until evict(). Steady-state use allocates
/// nothing: evicted entries keep their string buffers for reuse.
class state_cache {
 public:
  static constexpr uint32_t npos = UINT32_MAX;

  static constexpr size_t inline_key_bytes = 48;

  /// One cache line holds what a probe reads (hash, flags, a key of up to 48 bytes); the value
  /// is in the second.
  struct alignas(64) entry {
    uint64_t hash = 0;
    uint32_t key_size = 0;
    bool present = false;
    bool dirty = false;
    bool referenced = false;  ///< Used since the last evict().
    char key_inline[inline_key_bytes];
    std::string value;     ///< As stored in RocksDB (TTL states: with the expiry prefix).
    std::string key_heap;  ///< Keys longer than inline_key_bytes.

    std::string_view key() const {
      return key_size <= inline_key_bytes ? std::string_view(key_inline, key_size)
                                          : std::string_view(key_heap);
    }
  };

  /// `budget_bytes`: over_budget() once keys, values and per-entry overhead exceed it.
  explicit state_cache(size_t budget_bytes);

  /// The index of the entry for `key` (marked referenced), or npos.
  uint32_t find(std::string_view key);
  /// Adds an absent, clean entry for `key`, which must not be in the cache.
  uint32_t insert(std::string_view key);
  const entry& at(uint32_t i) const { return entries_[i]; }

  /// Sets a loaded RocksDB value: present and clean.
  void set_loaded(uint32_t i, std::string_view stored);
  /// Writes a value: present and dirty.
  void write(uint32_t i, std::string_view stored);
  /// Erases: absent and dirty.
  void erase(uint32_t i);

  bool has_dirty() const { return !dirty_.empty(); }
  /// Calls fn(const entry&) for each dirty entry, then marks them clean.
  template <class Fn>
  void drain_dirty(Fn&& fn) {
    for (uint32_t i : dirty_) {
      fn(static_cast<const entry&>(entries_[i]));
      entries_[i].dirty = false;
    }
    dirty_.clear();
  }

  bool over_budget() const { return bytes_ > budget_; }
  /// Drops the entries not used since the last evict(), or all entries if that leaves the cache
  /// above 3/4 of its budget. Requires no dirty entries. Invalidates indices.
  void evict();

  size_t size() const { return size_; }
  size_t bytes() const { return bytes_; }

 private:
  /// Per-entry memory beyond heap-allocated key and value bytes: the entry and its slots.
  static constexpr size_t entry_overhead = sizeof(entry) + 16;

  struct slot {
    uint32_t tag = 0;    ///< High half of the key's hash.
    uint32_t index = 0;  ///< Entry index + 1; 0 = empty.
  };

  static uint64_t hash_of(std::string_view key);
  size_t entry_bytes(const entry& e) const {
    return (e.key_size > inline_key_bytes ? e.key_size : 0) + e.value.size() + entry_overhead;
  }
  void place(uint32_t index);
  void rebuild_slots(size_t slot_count);
  void mark_dirty(uint32_t i);

  size_t budget_;
  size_t bytes_ = 0;
  std::vector<entry> entries_;  ///< [0, size_) live; the rest keep buffers for reuse.
  size_t size_ = 0;
  std::vector<slot> slots_;  ///< Linear probing; a power of two, at most half full.
  std::vector<uint32_t> dirty_;
  uint32_t last_ = npos;  ///< The entry found or inserted last: a put follows a get.
};

}  // namespace vigil::detail
