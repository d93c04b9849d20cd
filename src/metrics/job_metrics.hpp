#pragma once

#include <cstdint>
#include <string>

#include "metrics/registry.hpp"

namespace vigil::metrics {

/// The checkpoint and restart series of one job, label {job}. Taken where the job's checkpoints
/// are coordinated (the embedded executor, the coordinator's job master); the series disappear
/// when the last holder for the job is destroyed.
struct job_metrics {
  explicit job_metrics(const std::string& job);

  /// A checkpoint completed: observes its duration, sets size and last id, counts it.
  void checkpoint_completed(int64_t id, uint64_t bytes, int64_t duration_us);
  /// A checkpoint was declined or timed out.
  void checkpoint_failed() { checkpoint_failures->Increment(); }

  series<prometheus::Histogram> checkpoint_duration;
  series<prometheus::Gauge> checkpoint_size;
  series<prometheus::Gauge> checkpoint_last_completed_id;
  series<prometheus::Counter> checkpoints_completed;
  series<prometheus::Counter> checkpoint_failures;
  series<prometheus::Counter> restarts;
};

}  // namespace vigil::metrics
