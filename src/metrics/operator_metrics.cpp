#include "metrics/operator_metrics.hpp"

#include <algorithm>

namespace vigil::metrics {

uint64_t batch_payload_bytes(const record_batch& batch) {
  uint64_t bytes = batch.event_time.size() * sizeof(int64_t) + batch.key_hash.size() * 8;
  for (const auto& c : batch.columns) {
    bytes += c.valid.size() + c.ints.size() * sizeof(int64_t) + c.doubles.size() * sizeof(double) +
             c.bools.size() + c.offsets.size() * sizeof(uint32_t) + c.chars.size();
  }
  return bytes;
}

operator_metrics::operator_metrics(const std::string& job, const std::string& op,
                                   uint32_t subtask) {
  const auto& f = family();
  prometheus::Labels labels{{"job", job}, {"operator", op}, {"subtask", std::to_string(subtask)}};
  records_in = series(f.operator_records_in, labels);
  records_out = series(f.operator_records_out, labels);
  bytes_in = series(f.operator_bytes_in, labels);
  bytes_out = series(f.operator_bytes_out, labels);
  batch_duration = series(f.operator_batch_duration, labels, batch_duration_buckets());
  busy = series(f.operator_busy, labels);
  idle = series(f.operator_idle, labels);
  backpressured = series(f.operator_backpressured, labels);
  watermark = series(f.operator_watermark, labels);
  event_time_lag = series(f.operator_event_time_lag, labels);
  late_records = series(f.operator_late_records, labels);
}

void activity_clock::set_backpressured(bool blocked, int64_t now_ns) {
  if (blocked && blocked_since_ns_ < 0) {
    blocked_since_ns_ = now_ns;
  } else if (!blocked && blocked_since_ns_ >= 0) {
    blocked_ns_ += std::max<int64_t>(0, now_ns - blocked_since_ns_);
    blocked_since_ns_ = -1;
  }
}

activity_clock::split activity_clock::take(int64_t now_ns) {
  int64_t elapsed = std::max<int64_t>(0, now_ns - last_ns_);
  int64_t blocked = blocked_ns_;
  if (blocked_since_ns_ >= 0) {
    blocked += std::max<int64_t>(0, now_ns - blocked_since_ns_);
    blocked_since_ns_ = now_ns;
  }
  int64_t busy = std::min(busy_ns_, elapsed);
  blocked = std::min(blocked, elapsed - busy);
  split s;
  s.busy = seconds(busy);
  s.backpressured = seconds(blocked);
  s.idle = seconds(elapsed - busy - blocked);
  last_ns_ = now_ns;
  busy_ns_ = 0;
  blocked_ns_ = 0;
  return s;
}

}  // namespace vigil::metrics
