#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

/// Event-time watermarks of a source that reads several partitions (Kafka partitions, files).
/// Processing time is passed in by the caller, so the idle logic is testable without sleeping.

namespace vigil {

/// Tracks, for each partition a source subtask reads, the largest event time seen and when the
/// partition last delivered a record, and derives the subtask's watermark:
///
///   wm(q)     = max event time seen in q - max_out_of_orderness - 1 µs
///   watermark = min of wm(q) over the partitions that are neither idle nor finished
///
/// A partition is idle once it has delivered no record for idle_timeout of processing time, and
/// active again with its next record. While some active partition has delivered no record yet,
/// the watermark is min_watermark. The watermark never goes back: when a partition becomes
/// active again behind the others, its records may be late downstream (as in Flink).
class partition_watermarks {
 public:
  partition_watermarks(int64_t max_out_of_orderness_us, int64_t idle_timeout_us)
      : max_out_of_orderness_us_(max_out_of_orderness_us), idle_timeout_us_(idle_timeout_us) {}

  /// Starts tracking `partitions` partitions (indices 0..partitions-1), all active with no
  /// record yet; their idle clocks start at `now_us`. Forgets what was tracked before.
  void reset(size_t partitions, int64_t now_us);

  /// Sets partition `p`'s largest event time seen, e.g. restored from a checkpoint.
  void restore_max(size_t p, int64_t max_event_time);

  /// Partition `p` delivered a record with event time `event_time` at processing time `now_us`.
  void on_record(size_t p, int64_t event_time, int64_t now_us) {
    slot& s = slots_[p];
    if (!s.has_max || event_time > s.max_event_time) s.max_event_time = event_time;
    s.has_max = true;
    s.last_record_us = now_us;
    s.idle = false;
  }

  /// Partition `p` is known to have records not read yet (e.g. behind another partition's in
  /// one consumer queue): it is not idle, whatever the time since its last record. Without
  /// this, a partition starved during a backlog would be declared idle, the watermark would
  /// pass it, and its records would arrive late.
  void keep_active(size_t p, int64_t now_us) {
    slot& s = slots_[p];
    s.last_record_us = now_us;
    s.idle = false;
  }

  /// Partition `p` ended (a bounded read reached its end): it no longer holds the watermark back.
  void finish(size_t p) { slots_[p].finished = true; }

  /// Marks partitions idle whose last record is idle_timeout or more before `now_us`, and returns
  /// the watermark (never smaller than a value returned before).
  int64_t advance(int64_t now_us);

  /// The watermark last returned by advance().
  int64_t watermark() const { return watermark_; }

  /// True if every partition is idle or finished (also when there are none): nothing holds the
  /// watermark, and the source has nothing to say about event time.
  bool all_idle() const;

  bool idle(size_t p) const { return slots_[p].idle; }
  bool has_max(size_t p) const { return slots_[p].has_max; }
  int64_t max_event_time(size_t p) const { return slots_[p].max_event_time; }
  size_t size() const { return slots_.size(); }

 private:
  struct slot {
    bool has_max = false;
    bool idle = false;
    bool finished = false;
    int64_t max_event_time = 0;
    int64_t last_record_us = 0;
  };

  int64_t max_out_of_orderness_us_;
  int64_t idle_timeout_us_;
  std::vector<slot> slots_;
  int64_t watermark_ = std::numeric_limits<int64_t>::min();
};

}  // namespace vigil
