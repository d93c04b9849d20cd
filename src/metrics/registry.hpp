#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

/// The process-wide Prometheus registry and the metric families of Vigil
/// (docs/design/0010-metrics.md). Code takes a `series` handle for its fixed labels once (when a
/// subtask opens, a job starts) and then updates the metric through it with no lookup and no
/// allocation; the handle removes the series from its family when the last holder lets go.

namespace vigil::metrics {

/// The registry every Vigil metric lives in; also holds `vigil_build_info`.
prometheus::Registry& registry();

/// The registry in Prometheus text exposition format (version 0.0.4).
std::string serialize();

/// Every metric family of Vigil, created once per process.
struct families {
  // Per operator subtask, labels {job, operator, subtask}.
  prometheus::Family<prometheus::Counter>& operator_records_in;
  prometheus::Family<prometheus::Counter>& operator_records_out;
  prometheus::Family<prometheus::Counter>& operator_bytes_in;
  prometheus::Family<prometheus::Counter>& operator_bytes_out;
  prometheus::Family<prometheus::Histogram>& operator_batch_duration;
  prometheus::Family<prometheus::Counter>& operator_busy;
  prometheus::Family<prometheus::Counter>& operator_idle;
  prometheus::Family<prometheus::Counter>& operator_backpressured;
  prometheus::Family<prometheus::Gauge>& operator_watermark;
  prometheus::Family<prometheus::Gauge>& operator_event_time_lag;
  prometheus::Family<prometheus::Counter>& operator_late_records;
  prometheus::Family<prometheus::Gauge>& state_size;
  // Per job, label {job}.
  prometheus::Family<prometheus::Histogram>& checkpoint_duration;
  prometheus::Family<prometheus::Gauge>& checkpoint_size;
  prometheus::Family<prometheus::Gauge>& checkpoint_last_completed_id;
  prometheus::Family<prometheus::Counter>& checkpoints_completed;
  prometheus::Family<prometheus::Counter>& checkpoint_failures;
  prometheus::Family<prometheus::Counter>& job_restarts;
  // Cluster (coordinator).
  prometheus::Family<prometheus::Gauge>& cluster_workers;
  prometheus::Family<prometheus::Gauge>& cluster_slots;  ///< Label {state="total|used"}.
  prometheus::Family<prometheus::Gauge>& cluster_jobs;   ///< Label {state}.
  // Kafka.
  /// Labels {job, operator, subtask, topic, partition}.
  prometheus::Family<prometheus::Gauge>& kafka_consumer_lag;
  /// Labels {job, operator, subtask}.
  prometheus::Family<prometheus::Counter>& kafka_sink_records_committed;
  // Clinical.
  prometheus::Family<prometheus::Counter>& clinical_alerts;              ///< {job, rule, level}.
  prometheus::Family<prometheus::Counter>& clinical_dead_letters;        ///< {job, reason}.
  prometheus::Family<prometheus::Counter>& clinical_duplicates_dropped;  ///< {job}.
};

/// The families, registered in registry() on first use. Thread-safe.
const families& family();

/// Bucket bounds (seconds) of vigil_operator_batch_duration_seconds: 10 µs to 1 s.
const prometheus::Histogram::BucketBoundaries& batch_duration_buckets();
/// Bucket bounds (seconds) of vigil_checkpoint_duration_seconds: 10 ms to 10 min.
const prometheus::Histogram::BucketBoundaries& checkpoint_duration_buckets();

namespace detail {
/// Held while a series is added and counted, or released and removed, so that a series is never
/// removed from under a handle taken concurrently for the same labels.
std::mutex& series_mutex();
/// Counts a holder of `metric` (under series_mutex()).
void acquire(const void* metric);
/// Drops a holder of `metric` (under series_mutex()); true when it was the last one.
bool release(const void* metric);
}  // namespace detail

/// One series of a family, held for a fixed label set. Handles for the same labels share the
/// series (Family::Add returns the existing one); the series is removed from its family when the
/// last handle is destroyed, so that an ended subtask or job leaves no stale series. Empty
/// (default-constructed) handles hold nothing; test them with operator bool before use.
template <class T>
class series {
 public:
  series() = default;
  /// Adds (or finds) the series for `labels`; `args` are the metric's constructor arguments
  /// after the labels (bucket bounds for a histogram).
  template <class... Args>
  series(prometheus::Family<T>& fam, const prometheus::Labels& labels, Args&&... args)
      : family_(&fam) {
    std::lock_guard lock(detail::series_mutex());
    metric_ = &fam.Add(labels, std::forward<Args>(args)...);
    detail::acquire(metric_);
  }
  ~series() { reset(); }
  series(const series&) = delete;
  series& operator=(const series&) = delete;
  series(series&& o) noexcept : family_(o.family_), metric_(o.metric_) {
    o.family_ = nullptr;
    o.metric_ = nullptr;
  }
  series& operator=(series&& o) noexcept {
    if (this != &o) {
      reset();
      std::swap(family_, o.family_);
      std::swap(metric_, o.metric_);
    }
    return *this;
  }

  /// Lets go of the series (removing it if this was the last handle).
  void reset() {
    if (metric_ != nullptr) {
      std::lock_guard lock(detail::series_mutex());
      if (detail::release(metric_)) family_->Remove(metric_);
    }
    family_ = nullptr;
    metric_ = nullptr;
  }

  explicit operator bool() const { return metric_ != nullptr; }
  T& operator*() const { return *metric_; }
  T* operator->() const { return metric_; }

 private:
  prometheus::Family<T>* family_ = nullptr;
  T* metric_ = nullptr;
};

/// Seconds from nanoseconds.
inline double seconds(int64_t ns) {
  return static_cast<double>(ns) * 1e-9;
}

}  // namespace vigil::metrics
