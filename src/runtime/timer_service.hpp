#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "runtime/operator.hpp"
#include "runtime/state_backend.hpp"

namespace vigil {

/// Keyed event-time and processing-time timers of one subtask. Timers are part of the keyed
/// state: each is stored in the state backend (reserved state ids) and mirrored in memory so that
/// due timers are found without a scan. A timer is identified by (domain, time, key group, key,
/// namespace); registering it twice keeps one.
///
/// In memory: a hash index of all timers (for registration and deletion) and a min-heap of
/// timer times per domain (for firing). Both are exact mirrors of the persisted timers, so a
/// registration that misses the index is known new to the state backend too.
class timer_service {
 public:
  enum class domain : uint8_t { event_time, processing_time };

  /// Loads timers already in `state` (after a restore).
  static result<std::unique_ptr<timer_service>> make(state_backend& state);

  /// Registers a timer for the state's current key.
  void register_timer(domain d, int64_t time, int64_t ns = 0);
  /// Deletes a timer of the current key; no-op if absent.
  void delete_timer(domain d, int64_t time, int64_t ns = 0);

  void register_event_timer(int64_t time, int64_t ns = 0) {
    register_timer(domain::event_time, time, ns);
  }
  void delete_event_timer(int64_t time, int64_t ns = 0) {
    delete_timer(domain::event_time, time, ns);
  }

  /// Fires every timer of domain `d` with time <= `now`, in rounds: a round takes all pending
  /// timers of the earliest time and fires them ordered by (key group, key bytes compared as
  /// unsigned, namespace), so the order never depends on the order of registration. For each
  /// timer it removes it, sets the state's current key to the timer's key and calls fn. A
  /// timer deleted by fn before its turn does not fire. Timers that fn registers at or before
  /// `now` fire in this call, in a later round (the same timer registered again while it fires
  /// fires again).
  void advance(domain d, int64_t now, const std::function<void(const timer&)>& fn);

  /// The earliest pending timer of domain `d`.
  std::optional<int64_t> next(domain d) const;
  size_t size() const { return size_; }

 private:
  timer_service(state_backend& state, state_backend::state_id event_id,
                state_backend::state_id processing_id);

  static constexpr uint32_t npos = UINT32_MAX;

  /// One timer. Freed records keep their key buffers for reuse.
  struct record {
    uint64_t hash = 0;
    int64_t time = 0;
    int64_t ns = 0;
    uint32_t key_group = 0;
    uint32_t generation = 0;  ///< Bumped when freed: heap items of an older one are stale.
    uint8_t domain = 0;
    bool live = false;
    bool queued = false;  ///< Its heap item has not been popped.
    std::string key;
  };

  /// Open addressing, linear probing, home slot = tag modulo size; at most half full.
  struct slot {
    uint32_t tag = 0;    ///< High half of the record's hash.
    uint32_t index = 0;  ///< Record index + 1; 0 = empty.
  };

  /// A heap item: the timer's time and its record as of when it was pushed.
  struct queued_timer {
    int64_t time;
    uint32_t index;
    uint32_t generation;
  };

  /// A timer of the round being fired, with its sort key.
  struct due_timer {
    uint32_t key_group;
    uint32_t index;
    uint32_t generation;
    uint64_t key_hi;  ///< Key bytes 0-7, big-endian, zero-padded.
    uint64_t key_lo;  ///< Key bytes 8-15.
  };

  static uint64_t hash_of(uint8_t d, int64_t time, uint32_t key_group, std::string_view key,
                          int64_t ns);
  uint32_t find(uint64_t hash, uint8_t d, int64_t time, uint32_t key_group, std::string_view key,
                int64_t ns) const;
  /// Adds a timer known to be absent: a record, its slot and its heap item.
  void add(uint64_t hash, uint8_t d, int64_t time, uint32_t key_group, std::string_view key,
           int64_t ns);
  /// Removes record `i` from the index and frees it; its heap item, if queued, becomes stale.
  void unlink(uint32_t i);
  void place(uint32_t i);
  void rebuild_slots(size_t slot_count);
  bool is_current(const queued_timer& q) const {
    const record& r = records_[q.index];
    return r.live && r.generation == q.generation;
  }
  void pop(uint8_t d);
  /// Pops stale items off the top of domain d's heap (so next() is exact) and rebuilds the heap
  /// once stale items make up most of it.
  void settle(uint8_t d);

  state_backend& state_;
  state_backend::state_id ids_[2];
  std::vector<record> records_;
  std::vector<uint32_t> free_;
  std::vector<slot> slots_;
  std::vector<queued_timer> heaps_[2];  ///< Min-heaps by time.
  size_t stale_[2] = {0, 0};            ///< Heap items whose timer was deleted.
  size_t size_ = 0;
  std::vector<due_timer> round_;  ///< Reused by advance().
  std::string fire_key_;          ///< The key of the timer being fired, reused.
};

}  // namespace vigil
