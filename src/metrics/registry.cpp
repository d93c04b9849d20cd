#include "metrics/registry.hpp"

#include <prometheus/text_serializer.h>

#include <memory>
#include <unordered_map>

namespace vigil::metrics {

namespace {

std::shared_ptr<prometheus::Registry> make_registry() {
  auto r = std::make_shared<prometheus::Registry>();
  prometheus::BuildGauge()
      .Name("vigil_build_info")
      .Help("Vigil build: version and commit of this binary; the value is always 1")
      .Register(*r)
      .Add({{"version", VIGIL_VERSION}, {"commit", VIGIL_BUILD}})
      .Set(1);
  return r;
}

prometheus::Family<prometheus::Counter>& counter(const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry());
}

prometheus::Family<prometheus::Gauge>& gauge(const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry());
}

prometheus::Family<prometheus::Histogram>& histogram(const char* name, const char* help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry());
}

std::unordered_map<const void*, uint32_t>& holders() {
  static std::unordered_map<const void*, uint32_t> h;
  return h;
}

}  // namespace

prometheus::Registry& registry() {
  static const std::shared_ptr<prometheus::Registry> r = make_registry();
  return *r;
}

std::string serialize() {
  return prometheus::TextSerializer().Serialize(registry().Collect());
}

const families& family() {
  static const families f{
      counter("vigil_operator_records_in_total", "Records an operator subtask received"),
      counter("vigil_operator_records_out_total", "Records an operator subtask emitted"),
      counter("vigil_operator_bytes_in_total",
              "In-memory payload size estimate of the batches an operator subtask received"),
      counter("vigil_operator_bytes_out_total",
              "In-memory payload size estimate of the batches an operator subtask emitted"),
      histogram("vigil_operator_batch_duration_seconds",
                "Time an operator subtask spent processing one input batch or one source poll"),
      counter("vigil_operator_busy_seconds_total",
              "Time an operator subtask spent processing input, polling or firing timers"),
      counter("vigil_operator_idle_seconds_total",
              "Time an operator subtask had nothing to do (neither busy nor backpressured)"),
      counter("vigil_operator_backpressured_seconds_total",
              "Time an operator subtask held output waiting for credit from downstream"),
      gauge("vigil_operator_watermark_seconds",
            "Current input watermark of an operator subtask, unix seconds"),
      gauge("vigil_operator_event_time_lag_seconds",
            "Wall clock minus the current input watermark of an operator subtask"),
      counter("vigil_operator_late_records_total",
              "Records later than the allowed lateness, sent to the late output"),
      gauge("vigil_state_size_bytes",
            "RocksDB's estimate of the live keyed state of an operator subtask"),
      histogram("vigil_checkpoint_duration_seconds",
                "Time from triggering a checkpoint to its completion"),
      gauge("vigil_checkpoint_size_bytes", "Size of the last completed checkpoint"),
      gauge("vigil_checkpoint_last_completed_id", "Id of the last completed checkpoint"),
      counter("vigil_checkpoints_completed_total", "Checkpoints completed"),
      counter("vigil_checkpoint_failures_total", "Checkpoints declined or timed out"),
      counter("vigil_job_restarts_total", "Restarts of a job after a failure or a lost worker"),
      gauge("vigil_cluster_workers", "Live workers registered with the coordinator"),
      gauge("vigil_cluster_slots", "Task slots of the live workers, total and used"),
      gauge("vigil_cluster_jobs", "Jobs known to the coordinator, by state"),
      gauge("vigil_kafka_consumer_lag_records",
            "Kafka partition high watermark minus the source's position"),
      counter("vigil_kafka_sink_records_committed_total",
              "Records a Kafka sink subtask made visible in committed transactions"),
      counter("vigil_clinical_alerts_total", "Clinical alerts raised, by rule and level"),
      counter("vigil_clinical_dead_letters_total",
              "Clinical messages sent to the dead-letter output, by reason"),
      counter("vigil_clinical_duplicates_dropped_total",
              "Duplicate clinical observations dropped by deduplication"),
  };
  return f;
}

const prometheus::Histogram::BucketBoundaries& batch_duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{
      1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
  return b;
}

const prometheus::Histogram::BucketBoundaries& checkpoint_duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                         2.5,  5,     10,   30,  60,   120, 600};
  return b;
}

namespace detail {

std::mutex& series_mutex() {
  static std::mutex m;
  return m;
}

void acquire(const void* metric) {
  ++holders()[metric];
}

bool release(const void* metric) {
  auto it = holders().find(metric);
  if (it == holders().end()) return false;
  if (--it->second > 0) return false;
  holders().erase(it);
  return true;
}

}  // namespace detail

}  // namespace vigil::metrics
