// Kafka benchmark of vigil-bench: end-to-end latency through kafka_source → kafka_sink.
#pragma once

#include <string>

namespace vigil::bench {

/// Name of the benchmark run by run_kafka_e2e_latency().
inline constexpr const char* kafka_e2e_latency_name = "kafka.e2e_latency";

/// kafka.e2e_latency: for each sink mode (exactly_once, then at_least_once) starts an in-process
/// librdkafka mock cluster (one broker; topics `in`, `out`, `out.progress`, one partition each)
/// and runs the job kafka_source (unbounded, topic `in`) → kafka_sink (topic `out`) with a
/// checkpoint every second in the local executor on a thread of its own. A producer thread sends
/// JSON records {"seq", "produced_us"} to `in` at a steady 2,000 records/s; a consumer thread
/// (read_uncommitted, fetch.wait.max.ms 5) reads `out` and `out.progress` and takes, per record,
/// the time it became visible minus produced_us (both on the steady clock):
///   - at_least_once: the time the consumer received the record;
///   - exactly_once: the later of the time the consumer received the record and the time it
///     received the record's marker (sink, epoch, attempt) in `out.progress`, i.e. when a
///     read_committed consumer of a real cluster would see it (the mock cluster does not isolate
///     transactions).
/// Warm-up records go first until the first record is visible (the job has opened and, for
/// exactly_once, completed a checkpoint); then 20,000 × `scale` measured records (at least
/// 1,000). kafka_source's consumer also gets fetch.wait.max.ms 5 (its `properties`), since the
/// mock broker answers an empty fetch only after the full wait (librdkafka's default: 500 ms). A
/// third case, broker_baseline, runs no job: the consumer reads `in` itself, which shows what
/// the broker alone adds to one hop. Prints one JSON line per case: p50/p99/max/mean latency in ms,
/// counts of measured, visible, missing and duplicate records, complete checkpoints and markers.
/// Returns 0 on success, 1 on a failure (on stderr).
int run_kafka_e2e_latency(double scale, const std::string& state_dir);

}  // namespace vigil::bench
