#include "metrics/job_metrics.hpp"

namespace vigil::metrics {

job_metrics::job_metrics(const std::string& job) {
  const auto& f = family();
  prometheus::Labels labels{{"job", job}};
  checkpoint_duration = series(f.checkpoint_duration, labels, checkpoint_duration_buckets());
  checkpoint_size = series(f.checkpoint_size, labels);
  checkpoint_last_completed_id = series(f.checkpoint_last_completed_id, labels);
  checkpoints_completed = series(f.checkpoints_completed, labels);
  checkpoint_failures = series(f.checkpoint_failures, labels);
  restarts = series(f.job_restarts, labels);
}

void job_metrics::checkpoint_completed(int64_t id, uint64_t bytes, int64_t duration_us) {
  checkpoint_duration->Observe(static_cast<double>(duration_us) * 1e-6);
  checkpoint_size->Set(static_cast<double>(bytes));
  checkpoint_last_completed_id->Set(static_cast<double>(id));
  checkpoints_completed->Increment();
}

}  // namespace vigil::metrics
