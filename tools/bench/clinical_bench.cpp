#include "clinical_bench.hpp"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "coordinator/embedded_cluster.hpp"
#include "engine/engine.hpp"
#include "graph/graph_variables.hpp"
#include "graph/yaml_loader.hpp"
#include "lake/delta_log.hpp"
#include "metrics/registry.hpp"
#include "operators/connectors/json_format.hpp"
#include "operators/kafka/sink/progress_marker.hpp"
#include "tools/bench/kafka_client.hpp"
#include "tools/demo/demo.hpp"
#include "tools/mock_kafka/mock_kafka.hpp"
#include "tools/replay/kafka_output.hpp"
#include "tools/replay/replay.hpp"

namespace vigil::bench {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

/// Observations of the throughput case at scale 1.
constexpr uint64_t throughput_observations = 2'000'000;
/// Partitions of fhir.raw in the throughput case; the mock broker keeps ~5 MB of each.
constexpr int throughput_partitions = 64;
/// Partitions of fhir.raw in the latency case, as in vigil-demo.
constexpr int latency_partitions = 4;
/// Messages the throughput feeder may be ahead of the job's Kafka source (~600 bytes each: ~1.4 MB
/// per partition, under a third of what the mock broker keeps). The job reads it in under a
/// second, and the feeder tops it up every 20 ms.
constexpr uint64_t backlog_limit = 150'000;
/// The throughput feeder's linger.ms (see run_throughput).
constexpr auto feeder_linger = std::chrono::milliseconds(50);
constexpr double target_observations_per_second = 200'000;
constexpr int64_t checkpoint_interval_ms = 1000;
/// Observations per second of the latency case's feed (two per patient).
constexpr int64_t latency_rate_per_second = 400;
/// Measured seconds of the latency case at scale 1.
constexpr double latency_seconds = 30;
constexpr uint64_t latency_min_patients = 200;
/// The sources' max_out_of_orderness in the latency case (the example's is 2h).
constexpr const char* latency_out_of_orderness = "10ms";
constexpr double latency_out_of_orderness_ms = 10;
constexpr double target_p99_at_least_once_ms = 100;
constexpr double target_p99_exactly_once_ms = checkpoint_interval_ms + 250;
/// How long the job may take to make its first alert visible.
constexpr auto warmup_limit = 60s;
/// How long after the last measured observation every alert must be visible.
constexpr auto drain_limit = 10s + std::chrono::milliseconds(checkpoint_interval_ms);
/// How long the throughput job may go without reading a message before the case fails.
constexpr auto read_stall_limit = 30s;
/// How long the throughput job may take to read what was loaded.
constexpr auto read_limit = 600s;
constexpr int consumer_poll_ms = 20;
constexpr int consumer_fetch_wait_ms = 5;

constexpr const char* tables[] = {"bronze_messages", "silver_observations", "gold_scores",
                                  "gold_alerts"};
/// The replay columns the latency feed sends (replay_columns indices).
constexpr size_t heart_rate_column = 0;
constexpr size_t resp_rate_column = 6;

/// µs since the Unix epoch on the system clock: event times, Kafka timestamps and latencies.
int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// The example graph's text with its settings expanded; `out_of_orderness`, when not empty,
/// replaces the sources' max_out_of_orderness.
result<v1::JobGraph> bench_graph(const std::map<std::string, std::string, std::less<>>& settings,
                                 std::string_view out_of_orderness) {
  const fs::path file = fs::path(VIGIL_EXAMPLES_DIR) / "sepsis-watch.yaml";
  std::ifstream in(file);
  if (!in) return make_error(errc::io_error, file.string() + ": cannot open file");
  std::stringstream text;
  text << in.rdbuf();
  std::string graph = text.str();
  if (graph.find("checkpoints: {interval_ms: " + std::to_string(checkpoint_interval_ms) + "}") ==
      std::string::npos) {
    return make_error(errc::failed_precondition, file.string() +
                                                     ": expected checkpoints: {interval_ms: " +
                                                     std::to_string(checkpoint_interval_ms) + "}");
  }
  if (!out_of_orderness.empty()) {
    constexpr std::string_view example = "max_out_of_orderness: 2h";
    int replaced = 0;
    for (size_t at = graph.find(example); at != std::string::npos;
         at = graph.find(example, at + 1)) {
      graph.replace(at, example.size(), "max_out_of_orderness: " + std::string(out_of_orderness));
      ++replaced;
    }
    if (replaced != 2) {
      return make_error(errc::failed_precondition,
                        file.string() + ": expected two sources with max_out_of_orderness: 2h");
    }
  }
  auto expanded =
      expand_graph_variables(graph, [&](std::string_view name) -> std::optional<std::string> {
        if (auto it = settings.find(name); it != settings.end()) return it->second;
        return std::nullopt;
      });
  if (!expanded) return with_context(file.string() + ": ", expanded.err());
  auto parsed = parse_graph_yaml(*expanded);
  if (!parsed) return with_context(file.string() + ": ", parsed.err());
  return parsed;
}

/// The topics of the graph on a fresh mock cluster, fhir.raw with `fhir_partitions` partitions.
result<std::unique_ptr<tools::mock_kafka_cluster>> start_kafka(int fhir_partitions) {
  return tools::mock_kafka_cluster::start(1, {{"hl7.raw", 4, 1},
                                              {"fhir.raw", fhir_partitions, 1},
                                              {"dead-letters", 1, 1},
                                              {"alerts", 2, 1},
                                              {"alerts.progress", 1, 1}});
}

/// An embedded cluster of one worker with a slot for each of the job's 30 subtasks and two
/// actor system threads per core (the worker's `--threads`), state and checkpoints below `dir`.
/// One worker is how a single machine is deployed: two workers on the same two cores (as
/// vigil-demo runs) spend 15-20% more CPU on batches serialized over loopback TCP. Two threads
/// per core: subtasks block their thread in checkpoint file I/O (fsync, file creation), and with
/// one thread per core the alert path waits behind them (BENCHMARKS.md, "2026-11-23, later").
result<std::unique_ptr<embedded_cluster>> start_cluster(const fs::path& dir) {
  static const operator_registry registry = make_builtin_registry();
  embedded_cluster_options co;
  co.workers = 1;
  co.slots_per_worker = 32;
  co.threads_per_worker = 2 * std::max(2u, std::thread::hardware_concurrency());
  co.state_dir = dir / "state";
  co.checkpoint_dir = dir / "checkpoints";
  return embedded_cluster::start(co, registry);
}

/// Calls fn(operator, value) for each series of `family` (a counter or gauge family labelled
/// by job and operator) of the job named `job`, read from this process's metrics.
template <class Metric, class Fn>
void for_each_operator_series(prometheus::Family<Metric>& family, std::string_view job, Fn&& fn) {
  for (const prometheus::MetricFamily& f : family.Collect()) {
    for (const prometheus::ClientMetric& m : f.metric) {
      std::string_view job_label, operator_label;
      for (const auto& l : m.label) {
        if (l.name == "job") job_label = l.value;
        if (l.name == "operator") operator_label = l.value;
      }
      if (job_label != job) continue;
      fn(operator_label,
         std::is_same_v<Metric, prometheus::Gauge> ? m.gauge.value : m.counter.value);
    }
  }
}

/// Per operator of the job named `job`, summed over its subtasks: the wall time its subtasks spent
/// in their handlers (vigil_operator_busy_seconds_total, which also counts time the thread was
/// preempted) and the records they received and emitted. Read from this process's metrics while
/// the job runs (a subtask's series go when it closes). A JSON array, busiest first.
std::string operator_costs_json(std::string_view job) {
  struct cost {
    double busy = 0;
    double in = 0;
    double out = 0;
  };
  std::map<std::string, cost, std::less<>> by_operator;
  const auto add = [&](prometheus::Family<prometheus::Counter>& family, double cost::*field) {
    for_each_operator_series(family, job, [&](std::string_view op, double value) {
      by_operator[std::string(op)].*field += value;
    });
  };
  add(metrics::family().operator_busy, &cost::busy);
  add(metrics::family().operator_records_in, &cost::in);
  add(metrics::family().operator_records_out, &cost::out);
  std::vector<std::pair<std::string, cost>> sorted(by_operator.begin(), by_operator.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second.busy > b.second.busy; });
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [name, c] : sorted) {
    const double records = std::max(c.in, c.out);
    out.push_back(
        {{"operator", name},
         {"busy_seconds", std::round(c.busy * 1000) / 1000},
         {"records_in", static_cast<uint64_t>(c.in)},
         {"records_out", static_cast<uint64_t>(c.out)},
         {"busy_us_per_record", records > 0 ? std::round(c.busy * 1e8 / records) / 100 : 0.0}});
  }
  return out.dump();
}

/// The sum over the subtasks of operator `op` of job `job` of a counter or gauge family, read
/// from this process's metrics (0 before the job starts).
template <class Metric>
double operator_metric_sum(prometheus::Family<Metric>& family, std::string_view job,
                           std::string_view op) {
  double sum = 0;
  for_each_operator_series(family, job, [&](std::string_view name, double value) {
    if (name == op) sum += value;
  });
  return sum;
}

/// The records the subtasks of operator `op` of job `job` have emitted so far.
uint64_t operator_records_out(std::string_view job, std::string_view op) {
  return static_cast<uint64_t>(
      operator_metric_sum(metrics::family().operator_records_out, job, op));
}

/// The records in the first `partitions` partitions of `topic` (high minus low watermark).
result<uint64_t> count_topic(const std::string& bootstrap, const char* topic, int partitions) {
  auto c = make_client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap},
                                           {"group.id", "vigil-bench-count"},
                                           {"enable.auto.commit", "false"}});
  if (!c) return c.err();
  uint64_t n = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(c->get(), topic, p, &low, &high, 10'000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return make_error(errc::io_error,
                        std::string("offsets of ") + topic + ": " + rd_kafka_err2str(err));
    }
    n += static_cast<uint64_t>(high - low);
  }
  return n;
}

/// The bundled stays replicated until they hold at least `observations` measured cells.
result<std::vector<replay::patient_stay>> replicated_stays(uint64_t observations) {
  auto files = replay::list_psv_files({(fs::path(VIGIL_EXAMPLES_DIR) / "data/physionet2019")});
  if (!files) return files.err();
  std::vector<replay::patient_stay> originals;
  uint64_t per_copy = 0;
  for (const auto& f : *files) {
    auto stay = replay::read_psv(f);
    if (!stay) return stay.err();
    for (const auto& row : stay->rows) per_copy += replay::measured_count(row);
    originals.push_back(std::move(*stay));
  }
  if (per_copy == 0) return make_error(errc::failed_precondition, "the sample has no observations");
  const uint64_t copies = std::max<uint64_t>(1, (observations + per_copy - 1) / per_copy);
  std::vector<replay::patient_stay> stays;
  stays.reserve(copies * originals.size());
  for (uint64_t k = 0; k < copies; ++k) {
    for (const auto& s : originals) {
      stays.push_back({s.patient + "-r" + std::to_string(k), s.rows});
    }
  }
  return stays;
}

/// Sends to `inner` while at most backlog_limit messages are ahead of `consumed()` (the messages
/// the job has read); waits otherwise.
class throttled_output final : public replay::message_output {
 public:
  throttled_output(std::unique_ptr<replay::message_output> inner,
                   std::function<uint64_t()> consumed)
      : inner_(std::move(inner)), consumed_(std::move(consumed)) {}

  status send(std::string_view key, std::string_view payload, int64_t sent_at_us) override {
    const uint64_t sent = sent_.load(std::memory_order_relaxed);
    if (sent >= consumed_seen_ + backlog_limit) {
      const auto deadline = std::chrono::steady_clock::now() + stall_limit;
      mark_blocked();
      // The job's progress is a metric: it is polled.
      while (sent >= consumed_seen_ + backlog_limit) {
        if (stop_.load()) return make_error(errc::failed_precondition, "feeding stopped");
        if (std::chrono::steady_clock::now() > deadline) {
          return make_error(
              errc::failed_precondition,
              "the job read nothing for " + std::to_string(stall_limit.count()) + " s");
        }
        std::this_thread::sleep_for(20ms);
        consumed_seen_ = consumed_();
      }
    }
    VIGIL_TRY(inner_->send(key, payload, sent_at_us));
    sent_.store(sent + 1, std::memory_order_relaxed);
    return {};
  }

  status finish() override {
    auto st = inner_->finish();
    mark_blocked();
    return st;
  }

  /// Waits until send() first waits for the job, or the feed has ended.
  void wait_blocked_or_done() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return blocked_; });
  }

  /// Makes a waiting send() fail.
  void stop() { stop_.store(true); }

  /// Messages sent so far.
  uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }

 private:
  static constexpr auto stall_limit = std::chrono::seconds(120);

  void mark_blocked() {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_ = true;
    cv_.notify_all();
  }

  std::unique_ptr<replay::message_output> inner_;
  std::function<uint64_t()> consumed_;
  uint64_t consumed_seen_ = 0;  ///< Feeder thread only.
  std::atomic<uint64_t> sent_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool blocked_ = false;  ///< Guarded by mu_.
};

status run_throughput(double scale, const fs::path& dir) {
  auto stays = replicated_stays(
      std::max<uint64_t>(1, static_cast<uint64_t>(throughput_observations * scale)));
  if (!stays) return stays.err();
  fs::create_directories(dir / "lake");
  const fs::path key_file = dir / "pseudonym.key";
  VIGIL_TRY(demo::write_pseudonym_key(key_file));
  auto kafka = start_kafka(throughput_partitions);
  if (!kafka) return with_context("mock Kafka: ", kafka.err());
  const std::string bootstrap = (*kafka)->bootstrap();

  auto graph = bench_graph({{"VIGIL_KAFKA", bootstrap},
                            {"VIGIL_LAKE", (dir / "lake").string()},
                            {"VIGIL_PSEUDONYM_KEY_FILE", key_file.string()},
                            {"VIGIL_ALERTS_MODE", "exactly_once"},
                            {"VIGIL_KAFKA_FETCH_WAIT_MS", "10"}},
                           "");
  if (!graph) return graph.err();

  // The mock broker keeps only ~5 MB per partition (it drops the oldest messages), so the
  // feeder stays at most backlog_limit messages ahead of what the job has read (its Kafka
  // source's records out): it pre-loads that many before the job starts, then tops up while the
  // job reads. Not ahead of the bronze table: that commits once per checkpoint, and a limit on it
  // left the job without input for part of every checkpoint interval (BENCHMARKS.md,
  // "2026-11-23, session 10").
  const fs::path bronze = dir / "lake" / "bronze_messages";
  // The feeder batches more than a live sender (linger 50 ms, not 5): the job always has a
  // backlog, so this adds no latency, and the mock broker, which finds a fetch's offset by
  // walking the partition's list of message sets, walks fewer of them.
  auto output = replay::kafka_output::connect(bootstrap, "fhir.raw", 60s, feeder_linger);
  if (!output) return output.err();
  throttled_output feeder(std::move(*output),
                          [&] { return operator_records_out(graph->name(), "fhir_in"); });
  replay::replay_options ro;
  ro.format = replay::message_format::fhir;
  ro.base_time = *parse_timestamp_iso("2026-01-01T00:00:00Z");
  ro.speed = 0;
  const auto load_start = std::chrono::steady_clock::now();
  auto replayed =
      std::async(std::launch::async, [&] { return replay::replay(*stays, ro, feeder); });
  // Unblocks the feeder on every way out, before `replayed` waits for it.
  struct stop_on_exit {
    throttled_output& feeder;
    ~stop_on_exit() { feeder.stop(); }
  } stop_feeder{feeder};
  feeder.wait_blocked_or_done();
  const double preload_seconds = seconds_since(load_start);
  const uint64_t preloaded = feeder.sent();

  auto cluster = start_cluster(dir);
  if (!cluster) return with_context("embedded cluster: ", cluster.err());
  cluster_coordinator& coordinator = (*cluster)->coordinator();

  const double cpu0 = cpu_seconds();
  const auto started = std::chrono::steady_clock::now();
  auto job = coordinator.submit(*graph);
  if (!job) return job.err();
  double read_seconds = 0;
  std::string operator_costs;
  std::optional<replay::replay_counts> counts;
  uint64_t read = 0;
  auto read_changed = started;
  for (;;) {
    auto j = coordinator.wait(job->id, 20ms);
    if (!j) return j.err();
    if (j->state != job_state::running && j->state != job_state::pending) {
      feeder.stop();
      return make_error(errc::internal,
                        "job " + job->id + " ended before its input was read: " + j->error);
    }
    if (!counts && replayed.wait_for(0s) == std::future_status::ready) {
      auto c = replayed.get();
      if (!c) return with_context("feeding fhir.raw: ", c.err());
      counts = *c;
    }
    if (const uint64_t now_read = operator_records_out(graph->name(), "fhir_in");
        now_read != read) {
      read = now_read;
      read_changed = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - read_changed > read_stall_limit) {
      feeder.stop();
      // A lag of 0 with messages unread: the broker dropped them before the job read them.
      // Otherwise the job has input and does not read it.
      const double lag =
          operator_metric_sum(metrics::family().kafka_consumer_lag, graph->name(), "fhir_in");
      return make_error(errc::failed_precondition,
                        "the job read nothing for " + std::to_string(read_stall_limit.count()) +
                            " s: " + std::to_string(read) + " messages read, " +
                            std::to_string(feeder.sent()) + " sent, consumer lag " +
                            std::to_string(static_cast<uint64_t>(lag)) +
                            "; operators: " + operator_costs_json(graph->name()));
    }
    // Every message read: the job is drained; it finishes once its sinks made their final
    // commits as they closed.
    if (j->state == job_state::running && counts && read >= counts->messages) {
      read_seconds = seconds_since(started);
      operator_costs = operator_costs_json(graph->name());
      VIGIL_TRY(coordinator.end_input(job->id));
      break;
    }
    if (std::chrono::steady_clock::now() - started > read_limit) {
      feeder.stop();
      return make_error(errc::failed_precondition, "the job did not read its input in time");
    }
  }
  job_info finished;
  for (;;) {
    auto j = coordinator.wait(job->id, 1s);
    if (!j) return j.err();
    if (j->state == job_state::finished) {
      finished = *j;
      break;
    }
    if (j->state != job_state::running) {
      return make_error(errc::internal, "job " + job->id + " did not finish: " + j->error);
    }
    if (std::chrono::steady_clock::now() - started > read_limit) {
      return make_error(errc::failed_precondition, "the job did not drain in time");
    }
  }
  const double seconds = seconds_since(started);
  const double cpu = cpu_seconds() - cpu0;

  // Rows missing here would mean the drain began before every message was read (e.g. counts
  // that went wrong across a restart): the figures stand only for a complete bronze table.
  if (const uint64_t bronze_rows = demo::delta_table_rows(bronze);
      bronze_rows != counts->messages) {
    return make_error(errc::internal, "the bronze table holds " + std::to_string(bronze_rows) +
                                          " rows after the job finished, not the " +
                                          std::to_string(counts->messages) + " messages sent");
  }
  std::string rows;
  for (const char* t : tables) {
    rows += std::string(rows.empty() ? "" : ",") + "\"" + t +
            "\":" + std::to_string(demo::delta_table_rows(dir / "lake" / t));
  }
  auto dead = count_topic(bootstrap, "dead-letters", 1);
  if (!dead) return dead.err();
  std::printf(
      "{\"name\":\"%s\",\"case\":\"throughput\",\"observations\":%llu,\"patients\":%llu,"
      "\"preloaded\":%llu,\"preload_seconds\":%.3f,\"read_seconds\":%.3f,\"seconds\":%.3f,"
      "\"observations_per_second\":%.0f,\"cpu_seconds\":%.3f,"
      "\"observations_per_cpu_second\":%.0f,\"checkpoints\":%llu,\"rows\":{%s},"
      "\"dead_letters\":%llu,\"peak_rss_bytes\":%ld,"
      "\"target_observations_per_second\":%.0f,\"operators\":%s}\n",
      clinical_sepsis_watch_name, static_cast<unsigned long long>(counts->observations),
      static_cast<unsigned long long>(counts->patients), static_cast<unsigned long long>(preloaded),
      preload_seconds, read_seconds, seconds, counts->observations / seconds, cpu,
      counts->observations / cpu, static_cast<unsigned long long>(finished.checkpoints_completed),
      rows.c_str(), static_cast<unsigned long long>(*dead), peak_rss_bytes(),
      target_observations_per_second, operator_costs.c_str());
  std::fflush(stdout);
  return {};
}

/// What the alert consumer measured.
struct alert_visibility {
  std::vector<double> latencies_ms;  ///< One per measured patient, its first open alert.
  uint64_t measured_alerts = 0;      ///< Alert records of measured patients, all actions.
  uint64_t duplicates = 0;           ///< Open alerts of a measured trigger seen again.
  uint64_t unreadable = 0;
  uint64_t markers = 0;
  /// Per measured trigger seen (its event time): where its open alert was first read
  /// (partition, offset).
  std::unordered_map<int64_t, std::pair<int32_t, int64_t>> first_read;
};

/// Reads the alerts topic (and, for exactly_once, alerts.progress) on its own thread and takes
/// each measured trigger's latency: the time its open alert became visible minus its event time
/// (= its send time).
class alert_tracker {
 public:
  explicit alert_tracker(bool exactly_once) : exactly_once_(exactly_once) {}

  status start(const std::string& bootstrap) {
    std::vector<std::pair<std::string, int32_t>> partitions = {{"alerts", 0}, {"alerts", 1}};
    if (exactly_once_) partitions.emplace_back("alerts.progress", 0);
    auto c = make_assigned_consumer(bootstrap, "vigil-bench-sepsis-watch", consumer_fetch_wait_ms,
                                    partitions);
    if (!c) return c.err();
    consumer_ = std::move(*c);
    thread_ = std::thread([this] { run(); });
    return {};
  }

  /// Alerts with an event time at or after `from_us` are measured; earlier ones are warm-up.
  /// Must be called before the first measured observation is sent.
  void measure_from(int64_t from_us, uint64_t triggers) {
    std::lock_guard<std::mutex> lock(mu_);
    measure_from_us_ = from_us;
    triggers_ = triggers;
  }

  /// Alerts with an event time at or after `until_us` are not measured (the tail of the feed).
  void measure_until(int64_t until_us) {
    std::lock_guard<std::mutex> lock(mu_);
    measure_until_us_ = until_us;
  }

  bool warm() const { return warm_.load(); }

  /// Waits until `n` measured triggers have alerted or `deadline` passed; true if they have.
  bool wait_measured(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return all_visible_; });
  }

  alert_visibility stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    if (consumer_) rd_kafka_consumer_close(consumer_.get());
    consumer_.reset();
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(v_);
  }

  ~alert_tracker() { stop(); }
  alert_tracker(const alert_tracker&) = delete;
  alert_tracker& operator=(const alert_tracker&) = delete;

 private:
  /// An alert waiting for its epoch's marker: event time, action, and where it was read.
  struct pending_alert {
    int64_t event_time_us;
    bool open;
    int32_t partition;
    int64_t offset;
  };
  struct epoch_entry {
    bool committed = false;
    std::vector<pending_alert> pending;
  };

  void run() {
    while (!stop_.load()) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), consumer_poll_ms);
      if (m == nullptr) continue;
      const int64_t t = wall_us();
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (std::strcmp(rd_kafka_topic_name(m->rkt), "alerts.progress") == 0) {
          on_marker(m, t);
        } else {
          on_alert(m, t);
        }
      }
      rd_kafka_message_destroy(m);
    }
  }

  void on_alert(rd_kafka_message_t* m, int64_t t) {
    auto j = nlohmann::json::parse(std::string_view(static_cast<const char*>(m->payload), m->len),
                                   nullptr, false);
    std::optional<int64_t> when;
    if (j.is_object()) when = parse_timestamp_iso(j.value("event_time", ""));
    if (!when) {
      std::lock_guard<std::mutex> lock(mu_);
      ++v_.unreadable;
      return;
    }
    const pending_alert a{*when, j.value("action", "") == "open", m->partition, m->offset};
    if (!exactly_once_) return visible(a, t);
    rd_kafka_headers_t* headers = nullptr;
    rd_kafka_message_headers(m, &headers);
    const auto sink = header_of(headers, kafka::header_sink);
    const auto epoch = header_of(headers, kafka::header_epoch);
    const auto attempt = header_of(headers, kafka::header_attempt);
    if (sink.empty() || epoch.empty() || attempt.empty()) {
      std::lock_guard<std::mutex> lock(mu_);
      ++v_.unreadable;
      return;
    }
    epoch_entry& e = epochs_[epoch_key(sink, epoch, attempt)];
    if (e.committed) return visible(a, t);
    e.pending.push_back(a);
  }

  void on_marker(rd_kafka_message_t* m, int64_t t) {
    auto marker =
        kafka::parse_marker(std::string_view(static_cast<const char*>(m->payload), m->len));
    if (!marker) {
      std::lock_guard<std::mutex> lock(mu_);
      ++v_.unreadable;
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++v_.markers;
    }
    epoch_entry& e =
        epochs_[epoch_key(marker->sink, std::to_string(marker->epoch), marker->attempt)];
    e.committed = true;
    for (const auto& a : e.pending) visible(a, t);
    e.pending = {};
  }

  static std::string epoch_key(std::string_view sink, std::string_view epoch,
                               std::string_view attempt) {
    std::string k(sink);
    k.push_back('\n');
    k.append(epoch);
    k.push_back('\n');
    k.append(attempt);
    return k;
  }

  /// Alert `a` became visible at `t`.
  void visible(const pending_alert& a, int64_t t) {
    warm_.store(true);
    std::lock_guard<std::mutex> lock(mu_);
    if (measure_from_us_ == 0 || a.event_time_us < measure_from_us_ ||
        a.event_time_us >= measure_until_us_) {
      return;
    }
    ++v_.measured_alerts;
    if (!a.open) return;
    const auto [first, inserted] =
        v_.first_read.try_emplace(a.event_time_us, a.partition, a.offset);
    if (!inserted) {
      ++v_.duplicates;
      std::fprintf(stderr,
                   "%s: the open alert of the trigger at %lld us was visible again: alerts "
                   "partition %d offset %lld, first read at partition %d offset %lld\n",
                   clinical_sepsis_watch_name, static_cast<long long>(a.event_time_us), a.partition,
                   static_cast<long long>(a.offset), first->second.first,
                   static_cast<long long>(first->second.second));
      return;
    }
    v_.latencies_ms.push_back(static_cast<double>(t - a.event_time_us) / 1000.0);
    if (v_.latencies_ms.size() >= triggers_) {
      all_visible_ = true;
      cv_.notify_all();
    }
  }

  const bool exactly_once_;
  kafka_handle consumer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> warm_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  int64_t measure_from_us_ = 0;
  int64_t measure_until_us_ = std::numeric_limits<int64_t>::max();
  uint64_t triggers_ = 0;
  bool all_visible_ = false;
  alert_visibility v_;
  // Owned by the consumer thread.
  std::unordered_map<std::string, epoch_entry> epochs_;
};

/// What the feed sent.
struct feed {
  uint64_t warmup_patients = 0;
  uint64_t patients = 0;          ///< Measured ones; each sends one trigger.
  std::vector<int64_t> triggers;  ///< The event time of each measured patient's trigger.
  double seconds = 0;             ///< From the first to the last measured observation.
  std::string error;
};

/// Sends patients (heart rate, then the triggering respiratory rate) to fhir.raw at
/// latency_rate_per_second: warm-up ones until `tracker` is warm, then `patients` measured ones,
/// then tail ones (a live feed goes on, and its watermark with it) until every measured patient
/// has alerted or `drain_limit` has passed.
feed send_feed(rd_kafka_t* producer, uint64_t patients, alert_tracker& tracker,
               const std::atomic<bool>& job_ended) {
  feed f;
  const auto gap = std::chrono::microseconds(1'000'000 / latency_rate_per_second);
  std::string id, msg;
  replay::psv_row row;
  row.values.fill(std::numeric_limits<double>::quiet_NaN());
  row.values[heart_rate_column] = 80;
  row.values[resp_rate_column] = 30;
  int64_t last_sent_us = 0;
  auto send = [&](size_t column, int64_t iculos, int64_t event_time_us) {
    last_sent_us = event_time_us;
    row.iculos = iculos;
    msg.clear();
    replay::append_fhir_observation(msg, {id, &row, event_time_us}, column);
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer, RD_KAFKA_V_TOPIC("fhir.raw"), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_KEY(id.data(), id.size()), RD_KAFKA_V_VALUE(msg.data(), msg.size()),
          RD_KAFKA_V_TIMESTAMP(event_time_us / 1000), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        f.error = std::string("produce to fhir.raw: ") + rd_kafka_err2str(err);
        return false;
      }
      rd_kafka_poll(producer, 1);
    }
    rd_kafka_poll(producer, 0);
    return true;
  };
  // Event times are the wall clock, but strictly increasing: the tracker tells triggers apart
  // by event time, and a wall clock that steps back (a paused and resumed VM) could give two
  // triggers the same microsecond.
  const auto event_time = [&] { return std::max(wall_us(), last_sent_us + 1); };
  // One patient: two observations, one gap apart.
  auto next = std::chrono::steady_clock::now();
  auto patient = [&](const std::string& name) {
    id = name;
    if (!send(heart_rate_column, 0, event_time())) return false;
    next += gap;
    std::this_thread::sleep_until(next);
    if (!send(resp_rate_column, 1, event_time())) return false;
    next += gap;
    std::this_thread::sleep_until(next);
    return true;
  };
  const auto warmup_deadline = next + warmup_limit;
  while (!tracker.warm()) {
    if (job_ended.load()) {
      f.error = "the job ended during the warm-up";
      return f;
    }
    if (std::chrono::steady_clock::now() > warmup_deadline) {
      f.error = "no alert became visible within the warm-up limit";
      return f;
    }
    if (!patient("warm" + std::to_string(f.warmup_patients))) return f;
    ++f.warmup_patients;
  }
  const auto first = std::chrono::steady_clock::now();
  next = first;
  tracker.measure_from(wall_us(), patients);
  for (uint64_t p = 0; p < patients; ++p) {
    if (job_ended.load()) {
      f.error = "the job ended while the feed ran";
      return f;
    }
    if (!patient("lat" + std::to_string(p))) return f;
    f.triggers.push_back(last_sent_us);
    ++f.patients;
  }
  f.seconds = seconds_since(first);
  tracker.measure_until(wall_us());
  const auto drain_deadline = std::chrono::steady_clock::now() + drain_limit;
  for (uint64_t p = 0; !tracker.wait_measured(std::chrono::steady_clock::now()); ++p) {
    if (job_ended.load() || std::chrono::steady_clock::now() > drain_deadline) break;
    if (!patient("tail" + std::to_string(p))) return f;
  }
  if (rd_kafka_flush(producer, 10'000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    f.error = "the producer could not deliver every observation within 10 s";
  }
  return f;
}

status run_latency(const std::string& mode, double scale, const fs::path& dir) {
  const bool exactly_once = mode == "exactly_once";
  const uint64_t patients = std::max<uint64_t>(
      latency_min_patients,
      static_cast<uint64_t>(latency_seconds * scale * latency_rate_per_second / 2));
  fs::create_directories(dir / "lake");
  const fs::path key_file = dir / "pseudonym.key";
  VIGIL_TRY(demo::write_pseudonym_key(key_file));
  auto kafka = start_kafka(latency_partitions);
  if (!kafka) return with_context("mock Kafka: ", kafka.err());
  const std::string bootstrap = (*kafka)->bootstrap();
  auto graph = bench_graph({{"VIGIL_KAFKA", bootstrap},
                            {"VIGIL_LAKE", (dir / "lake").string()},
                            {"VIGIL_PSEUDONYM_KEY_FILE", key_file.string()},
                            {"VIGIL_ALERTS_MODE", mode},
                            {"VIGIL_KAFKA_FETCH_WAIT_MS", "5"}},
                           latency_out_of_orderness);
  if (!graph) return graph.err();
  auto producer = make_client(
      RD_KAFKA_PRODUCER,
      {{"bootstrap.servers", bootstrap}, {"linger.ms", "0"}, {"enable.idempotence", "true"}});
  if (!producer) return producer.err();
  alert_tracker tracker(exactly_once);
  VIGIL_TRY(tracker.start(bootstrap));

  auto cluster = start_cluster(dir);
  if (!cluster) return with_context("embedded cluster: ", cluster.err());
  cluster_coordinator& coordinator = (*cluster)->coordinator();
  const double cpu0 = cpu_seconds();
  auto job = coordinator.submit(*graph);
  if (!job) return job.err();
  VIGIL_TRY(demo::wait_until_running(coordinator, job->id, 30s));

  // Watches the job while the feed runs, so that a failed job stops the feed.
  std::atomic<bool> job_ended{false};
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done.load()) {
      auto j = coordinator.wait(job->id, 100ms);
      if (!j || (j->state != job_state::running && j->state != job_state::restarting)) {
        job_ended.store(true);
        return;
      }
    }
  });
  feed f = send_feed(producer->get(), patients, tracker, job_ended);
  const bool all = f.error.empty() && tracker.wait_measured(std::chrono::steady_clock::now());
  done.store(true);
  watcher.join();
  const bool ended_early = job_ended.load();
  auto info = coordinator.wait(job->id, 0ms);
  const uint64_t checkpoints = info ? info->checkpoints_completed : 0;
  const uint64_t restarts = info ? info->restarts : 0;
  (void)coordinator.cancel(job->id);
  (void)coordinator.wait(job->id, 30s);
  const double cpu = cpu_seconds() - cpu0;
  alert_visibility v = tracker.stop();
  producer->reset();

  if (!f.error.empty() || ended_early) {
    std::string why = f.error.empty() ? "the job ended before it was cancelled" : f.error;
    if (info && !info->error.empty()) why += " (job: " + info->error + ")";
    return make_error(errc::internal, mode + ": " + why);
  }
  const uint64_t visible = v.latencies_ms.size();
  for (size_t p = 0, reported = 0; p < f.triggers.size() && reported < 10; ++p) {
    if (v.first_read.count(f.triggers[p]) != 0) continue;
    ++reported;
    std::fprintf(stderr, "%s %s: no open alert of patient lat%zu's trigger at %lld us\n",
                 clinical_sepsis_watch_name, mode.c_str(), p,
                 static_cast<long long>(f.triggers[p]));
  }
  double mean = 0;
  for (double l : v.latencies_ms) mean += l;
  if (visible > 0) mean /= static_cast<double>(visible);
  std::printf(
      "{\"name\":\"%s\",\"case\":\"latency\",\"mode\":\"%s\",\"rate_per_second\":%lld,"
      "\"patients\":%llu,\"feed_seconds\":%.3f,\"warmup_patients\":%llu,\"visible\":%llu,"
      "\"missing\":%llu,\"duplicates\":%llu,\"unreadable\":%llu,\"measured_alert_records\":%llu,"
      "\"checkpoint_interval_ms\":%lld,\"checkpoints\":%llu,\"markers\":%llu,\"restarts\":%llu,"
      "\"max_out_of_orderness_ms\":%.0f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f,"
      "\"mean_ms\":%.1f,\"cpu_seconds\":%.3f,\"target_p99_ms\":%.0f}\n",
      clinical_sepsis_watch_name, mode.c_str(), static_cast<long long>(latency_rate_per_second),
      static_cast<unsigned long long>(f.patients), f.seconds,
      static_cast<unsigned long long>(f.warmup_patients), static_cast<unsigned long long>(visible),
      static_cast<unsigned long long>(f.patients - std::min<uint64_t>(f.patients, visible)),
      static_cast<unsigned long long>(v.duplicates), static_cast<unsigned long long>(v.unreadable),
      static_cast<unsigned long long>(v.measured_alerts),
      static_cast<long long>(checkpoint_interval_ms), static_cast<unsigned long long>(checkpoints),
      static_cast<unsigned long long>(v.markers), static_cast<unsigned long long>(restarts),
      latency_out_of_orderness_ms, quantile(v.latencies_ms, 0.5), quantile(v.latencies_ms, 0.99),
      quantile(v.latencies_ms, 1.0), mean, cpu,
      exactly_once ? target_p99_exactly_once_ms : target_p99_at_least_once_ms);
  std::fflush(stdout);
  if (!all) {
    return make_error(errc::internal,
                      mode + ": " + std::to_string(f.patients - std::min(f.patients, visible)) +
                          " alerts were not visible within the drain limit");
  }
  return {};
}

}  // namespace

int run_clinical_sepsis_watch(double scale, const std::string& state_dir) {
  const fs::path dir = fs::path(state_dir) / ("sepsis-" + std::to_string(::getpid()));
  int rc = 0;
  auto report = [&](const char* what, const status& st) {
    if (!st) {
      std::fprintf(stderr, "%s %s: %s\n", clinical_sepsis_watch_name, what,
                   st.err().message.c_str());
      rc = 1;
    }
  };
  std::error_code ec;
  report("throughput", run_throughput(scale, dir / "throughput"));
  fs::remove_all(dir / "throughput", ec);
  for (const char* mode : {"exactly_once", "at_least_once"}) {
    report(mode, run_latency(mode, scale, dir / mode));
    fs::remove_all(dir / mode, ec);
  }
  fs::remove_all(dir, ec);
  return rc;
}

}  // namespace vigil::bench
