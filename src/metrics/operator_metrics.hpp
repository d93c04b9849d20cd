#pragma once

#include <cstdint>
#include <string>

#include "common/record_batch.hpp"
#include "metrics/registry.hpp"

namespace vigil::metrics {

/// The in-memory payload size of `batch`: the bytes of its value, validity, offset, character,
/// event-time and key-hash arrays. Constant work per column (no per-row loop).
uint64_t batch_payload_bytes(const record_batch& batch);

/// The series of one operator subtask, labels {job, operator, subtask}. Taken when the subtask
/// opens; the series disappear when it is destroyed (the subtask ended or was cancelled).
struct operator_metrics {
  operator_metrics(const std::string& job, const std::string& op, uint32_t subtask);

  series<prometheus::Counter> records_in;
  series<prometheus::Counter> records_out;
  series<prometheus::Counter> bytes_in;
  series<prometheus::Counter> bytes_out;
  series<prometheus::Histogram> batch_duration;
  series<prometheus::Counter> busy;
  series<prometheus::Counter> idle;
  series<prometheus::Counter> backpressured;
  series<prometheus::Gauge> watermark;
  series<prometheus::Gauge> event_time_lag;
  series<prometheus::Counter> late_records;
  /// Only for stateful operators (empty otherwise).
  series<prometheus::Gauge> state_size;
};

/// Splits a subtask's wall time into busy, backpressured and idle time. The subtask reports the
/// time each unit of work took and every change of its output's blocked state; take() returns
/// the split of the time since the previous take(). Time both busy and backpressured (work that
/// emitted into a blocked output) counts as busy. Not thread-safe (one actor uses it).
class activity_clock {
 public:
  /// Times in nanoseconds of one monotonic clock.
  explicit activity_clock(int64_t now_ns) : last_ns_(now_ns) {}

  /// `ns` of work (processing a batch, a poll, timers).
  void add_busy(int64_t ns) { busy_ns_ += ns; }
  /// The output is (or is no longer) waiting for credit with items pending.
  void set_backpressured(bool blocked, int64_t now_ns);

  /// Seconds since the previous take().
  struct split {
    double busy = 0;
    double backpressured = 0;
    double idle = 0;
  };
  split take(int64_t now_ns);

 private:
  int64_t last_ns_;
  int64_t busy_ns_ = 0;
  int64_t blocked_ns_ = 0;
  int64_t blocked_since_ns_ = -1;  ///< -1: not blocked.
};

}  // namespace vigil::metrics
