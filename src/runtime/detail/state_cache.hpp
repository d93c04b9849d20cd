#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
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
/// (same as RocksDB) or dirty. It also knows whether RocksDB may hold a value for its key
/// (`stored`): false when a load found nothing or the owner knows the key is new, and the entry
/// has not been written back since. Erasing an entry that is not stored removes it from the cache
/// at once: RocksDB has nothing to delete, so a value that lives and dies between two write-backs
/// never reaches RocksDB (no Put, no tombstone).
///
/// The owner drains dirty entries into RocksDB before anything reads RocksDB other than by point
/// lookup (iterators, compaction, checkpoints), and before evict().
///
/// Entries are addressed by index; an index stays valid until evict() or until its entry is
/// erased while not stored. Steady-state use allocates nothing: removed and evicted entries keep
/// their heap blocks for reuse.
class state_cache {
 public:
  static constexpr uint32_t npos = UINT32_MAX;

  static constexpr size_t inline_bytes = 32;

  /// One cache line: the hash, flags and (up to 32 bytes) key that a probe reads, then the
  /// value. Key and value are inline when they fit in 32 bytes together (a small accumulator, a
  /// timer); else the value, and a key too long for the inline buffer, are in a heap block of
  /// the entry, which it keeps for reuse. A key never moves while its entry lives.
  struct alignas(64) entry {
    uint64_t hash = 0;
    uint32_t key_size = 0;
    uint32_t value_size = 0;
    uint32_t heap_capacity = 0;
    bool live : 1 = false;  ///< In the table (else on the free list, or past the used range).
    bool present : 1 = false;
    bool dirty : 1 = false;
    bool stored : 1 = true;       ///< RocksDB may hold a value for the key.
    bool referenced : 1 = false;  ///< Used since the last evict().
    bool listed : 1 = false;      ///< Seen in the current split_dirty() pass.
    /// Checkpoint deltas this entry was in since it last became dirty (split_dirty()).
    uint8_t deltas = 0;
    std::unique_ptr<char[]> heap;
    char inline_data[inline_bytes];

    bool key_in_heap() const { return key_size > inline_bytes; }
    bool value_in_heap() const { return key_size + value_size > inline_bytes; }
    std::string_view key() const { return {key_in_heap() ? heap.get() : inline_data, key_size}; }
    /// As stored in RocksDB (TTL states: with the expiry prefix).
    std::string_view value() const {
      const char* p = !value_in_heap() ? inline_data + key_size
                      : key_in_heap()  ? heap.get() + key_size
                                       : heap.get();
      return {p, value_size};
    }
  };
  static_assert(sizeof(entry) == 64);

  /// `budget_bytes`: over_budget() once the entries, their slots and heap blocks exceed it.
  explicit state_cache(size_t budget_bytes);

  /// The index of the entry for `key` (marked referenced), or npos.
  uint32_t find(std::string_view key);
  /// Adds an absent, clean entry for `key`, which must not be in the cache. `stored`: whether
  /// RocksDB may hold a value for `key` (false if a load found nothing or the key is known new).
  uint32_t insert(std::string_view key, bool stored);
  const entry& at(uint32_t i) const { return entries_[i]; }

  /// Sets a loaded RocksDB value: present, clean and stored.
  void set_loaded(uint32_t i, std::string_view stored);
  /// Writes a value: present and dirty.
  void write(uint32_t i, std::string_view stored);
  /// Erases: absent and dirty if RocksDB may hold the key, else removes the entry (which
  /// invalidates index `i`).
  void erase(uint32_t i);

  bool has_dirty() const { return !dirty_.empty(); }
  /// Marks every dirty entry clean and calls fn(const entry&) for each, in ascending key order
  /// (write_in_order()).
  template <class Fn>
  void drain_dirty(Fn&& fn) {
    order_.clear();
    for (uint32_t i : dirty_) {
      // Removed, or a duplicate mention of a reused index.
      if (entries_[i].live && entries_[i].dirty) mark_clean(i);
    }
    dirty_.clear();
    write_in_order(fn);
  }

  /// For a checkpoint: the dirty entries that are young go to `delta(const entry&)` and stay
  /// dirty; the others go to `back(const entry&)` in ascending key order and become clean, as
  /// in drain_dirty(). An entry is young while it has been in fewer than `max_deltas` deltas
  /// since it last became dirty and the delta so far, youngest entries first, holds at most
  /// `max_delta_bytes` of keys and values. A checkpoint then stores the delta beside RocksDB's
  /// files instead of writing those entries to RocksDB: state that lives a few checkpoint
  /// intervals, then dies, never reaches RocksDB (no Put, no flush, no tombstone).
  template <class Delta, class Back>
  void split_dirty(uint8_t max_deltas, size_t max_delta_bytes, Delta&& delta, Back&& back) {
    order_.clear();
    kept_.clear();
    size_t bytes = 0;
    // dirty_ lists entries in the order they became dirty: walk it youngest first.
    for (auto it = dirty_.rbegin(); it != dirty_.rend(); ++it) {
      entry& e = entries_[*it];
      // Removed, or a second mention of an index reused since.
      if (!e.live || !e.dirty || e.listed) continue;
      const size_t size = e.key_size + e.value_size;
      if (e.deltas < max_deltas && bytes + size <= max_delta_bytes) {
        bytes += size;
        ++e.deltas;
        e.listed = true;
        delta(static_cast<const entry&>(e));
        kept_.push_back(*it);
      } else {
        mark_clean(*it);
      }
    }
    std::reverse(kept_.begin(), kept_.end());
    for (uint32_t i : kept_) entries_[i].listed = false;
    dirty_.swap(kept_);
    write_in_order(back);
  }

  bool over_budget() const { return bytes_ > budget_; }
  /// Drops the entries not used since the last evict(), or all entries if that leaves the cache
  /// above 3/4 of its budget. Requires no dirty entries. Invalidates indices.
  void evict();

  size_t size() const { return size_; }
  size_t bytes() const { return bytes_; }

 private:
  /// Per-entry memory besides its heap block: the entry and its slots.
  static constexpr size_t entry_overhead = sizeof(entry) + 16;

  /// Linear probing; an entry's home slot is its tag modulo the table size, so moving slots
  /// (backward-shift deletion) needs no entry access.
  struct slot {
    uint32_t tag = 0;    ///< High half of the key's hash.
    uint32_t index = 0;  ///< Entry index + 1; 0 = empty.
  };

  /// A dirty entry by the first 16 bytes of its key (big-endian, zero-padded) for sorting.
  struct order_item {
    uint64_t hi;
    uint64_t lo;
    uint32_t index;
  };

  static uint64_t hash_of(std::string_view key);
  static uint32_t tag_of(uint64_t hash) { return static_cast<uint32_t>(hash >> 32); }
  size_t entry_bytes(const entry& e) const { return e.heap_capacity + entry_overhead; }
  /// Sets the value of entry `i`, inline or in its heap block as its size requires.
  void set_value(uint32_t i, std::string_view value);
  /// Makes the heap block of `e` hold at least `bytes`, keeping its first `keep` bytes.
  void reserve_heap(entry& e, size_t bytes, size_t keep);
  void place(uint32_t index);
  void unplace(uint32_t index);
  void remove(uint32_t index);
  void rebuild_slots(size_t slot_count);
  void mark_dirty(uint32_t i);
  /// Marks dirty entry `i` clean and queues it in order_ for write_in_order().
  void mark_clean(uint32_t i) {
    entry& e = entries_[i];
    e.dirty = false;
    std::string_view k = e.key();
    order_.push_back(order_item{load_be(k, 0), load_be(k, 8), i});
  }
  /// Calls fn(const entry&) for the entries queued in order_, in ascending key order (RocksDB's
  /// memtable inserts sorted keys much faster than random ones), and empties it. An entry
  /// written back present is stored from then on; one written back absent is not.
  template <class Fn>
  void write_in_order(Fn& fn) {
    sort_order();
    // Key order visits entries at random places: fetch the entries some steps ahead, then
    // their heap blocks (which hold long keys and values) a few steps ahead.
    constexpr size_t entry_ahead = 16;
    constexpr size_t heap_ahead = 8;
    const size_t n = order_.size();
    for (size_t j = 0; j < std::min(n, entry_ahead); ++j) {
      __builtin_prefetch(&entries_[order_[j].index]);
    }
    for (size_t j = 0; j < n; ++j) {
      if (j + entry_ahead < n) __builtin_prefetch(&entries_[order_[j + entry_ahead].index]);
      if (j + heap_ahead < n) {
        const entry& ahead = entries_[order_[j + heap_ahead].index];
        if (ahead.value_in_heap()) __builtin_prefetch(ahead.heap.get());
      }
      const order_item& o = order_[j];
      entry& e = entries_[o.index];
      fn(static_cast<const entry&>(e));
      e.stored = e.present;
    }
    order_.clear();
  }
  /// Sorts order_ by key.
  void sort_order();
  /// Up to 8 bytes of `s` from `pos` as a big-endian integer, zero-padded.
  static uint64_t load_be(std::string_view s, size_t pos);

  size_t budget_;
  size_t bytes_ = 0;
  std::vector<entry> entries_;  ///< [0, used_) live or free; the rest keep buffers for reuse.
  size_t used_ = 0;
  size_t size_ = 0;                ///< Live entries.
  std::vector<uint32_t> free_;     ///< Indices below used_ of removed entries.
  std::vector<slot> slots_;        ///< A power of two, at most half full.
  std::vector<uint32_t> dirty_;    ///< May name removed or reused entries: see drain_dirty().
  std::vector<order_item> order_;  ///< Write-back order, reused.
  std::vector<uint32_t> kept_;     ///< split_dirty(): the entries that stay dirty, reused.
  uint32_t last_ = npos;           ///< The entry found or inserted last: a put follows a get.
};

}  // namespace vigil::detail
