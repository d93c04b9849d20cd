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
/// state: they live in memory, and write_to_state() stores those not yet stored in the state
/// backend (reserved state ids) before each snapshot, so a snapshot holds every timer pending at
/// it. A timer registered and then fired or deleted between two snapshots never reaches the
/// backend. A timer is identified by (domain, time, key group, key, namespace); registering it
/// twice keeps one.
///
/// In memory: a hash index of all timers (for registration and deletion) and a min-heap of
/// timer times per domain (for firing). The index is exact, and it knows which timers the
/// backend holds, so a timer written by write_to_state() is known new to the backend.
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

  /// Writes the timers registered since the last call to the state backend; a snapshot of the
  /// backend must come after a call, so that it holds every pending timer. The backend's
  /// current key is the same after the call.
  void write_to_state();

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
    bool stored = false;  ///< The state backend holds it (restored, or write_to_state()).
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
  /// Adds a timer known to be absent: a record (not stored), its slot and its heap item; returns
  /// the record's index.
  uint32_t add(uint64_t hash, uint8_t d, int64_t time, uint32_t key_group, std::string_view key,
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
  /// Records registered since write_to_state(), as (index, generation): a freed or reused record
  /// is skipped. Pruned of such items when it outgrows the timers (no snapshots are taken).
  std::vector<std::pair<uint32_t, uint32_t>> unstored_;
  std::vector<uint32_t> free_;
  std::vector<slot> slots_;
  std::vector<queued_timer> heaps_[2];  ///< Min-heaps by time.
  size_t stale_[2] = {0, 0};            ///< Heap items whose timer was deleted.
  size_t size_ = 0;
  std::vector<due_timer> round_;  ///< Reused by advance().
  std::string fire_key_;          ///< The key of the timer being fired, reused.
  std::string caller_key_;        ///< write_to_state(): the current key to restore, reused.
};

}  // namespace vigil
