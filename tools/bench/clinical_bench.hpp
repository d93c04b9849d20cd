// Clinical benchmark of vigil-bench: examples/sepsis-watch.yaml end to end.
#pragma once

#include <string>

namespace vigil::bench {

/// Name of the benchmark run by run_clinical_sepsis_watch().
inline constexpr const char* clinical_sepsis_watch_name = "clinical.sepsis_watch";

/// clinical.sepsis_watch: the reference graph examples/sepsis-watch.yaml (Kafka fhir.raw and
/// hl7.raw → bronze lake → clinical_ingest → dedup → silver lake → clinical_scores → gold_scores
/// → clinical_alerts → gold_alerts + Kafka alerts, dead letters to Kafka), checkpoints every
/// second, on an in-process librdkafka mock cluster and an embedded cluster (a coordinator and
/// one worker with 32 slots, two actor system threads per core). The graph is
/// the example file's text with its ${...} settings expanded; the benchmark changes nothing else
/// but the settings named below.
///
/// Case "throughput": the bundled PhysioNet 2019 stays, replicated with distinct patient ids
/// ("<stay>-r<k>") until 2,000,000 × `scale` observations, are sent to fhir.raw (64 partitions)
/// as FHIR Observations (one message each, in event-time order, Kafka timestamp = event time, no
/// injected faults); hl7.raw stays empty. The mock broker keeps only ~5 MB per partition (older
/// messages are dropped), so the feeder pre-loads 200,000 messages before the job starts and then
/// stays at most 200,000 messages ahead of the bronze table while the job runs. The job runs until
/// the bronze table holds every message, then is drained (end_input) and finishes. Reports
/// observations / (job finished - job submitted), the time until everything was read, rows per
/// table, dead letters, CPU seconds and, per operator ("operators", busiest first), the wall time
/// its subtasks spent in their handlers until everything was read (busy seconds, which include
/// time their thread was preempted) and its records in and out. VIGIL_KAFKA_FETCH_WAIT_MS is 10,
/// as in vigil-demo. The feeder's producer lingers 50 ms.
///
/// Case "latency", once with VIGIL_ALERTS_MODE exactly_once and once at_least_once: a live feed
/// at 400 observations/s into fhir.raw (4 partitions, as in vigil-demo). Each patient sends a heart
/// rate of 80/min and, 2.5 ms later, a respiratory rate of 30/min, which scores NEWS2 3 points in
/// one parameter and opens a news2_urgent alert at the respiratory rate's event time. Event times
/// and Kafka timestamps are the wall clock at send time; the sources' max_out_of_orderness is 10 ms
/// instead of the example's 2 h (so scores are emitted as soon as every partition has passed an
/// observation, as a live feed with little skew would see it) and VIGIL_KAFKA_FETCH_WAIT_MS is 5. A
/// consumer (read_uncommitted, fetch.wait.max.ms 5) reads the alerts topic and, for exactly_once,
/// its progress topic: an alert is visible when it arrived (at_least_once) or when it and the
/// marker of its (sink, epoch, attempt) arrived (exactly_once: the committed view a read_committed
/// consumer of a real cluster sees). Latency = visible - the respiratory rate's send time, for
/// each measured patient's first "open" alert. Warm-up patients go first until an alert is
/// visible; then 30 s × `scale` of measured patients (at least 200); then tail patients, so that
/// the watermark passes the last measured ones, until every measured patient has alerted.
///
/// Prints one JSON line per case. Returns 0 on success, 1 on a failure (on stderr).
int run_clinical_sepsis_watch(double scale, const std::string& state_dir);

}  // namespace vigil::bench
