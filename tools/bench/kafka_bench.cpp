#include "kafka_bench.hpp"

#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "engine/engine.hpp"
#include "graph/planner.hpp"
#include "graph/yaml_loader.hpp"
#include "operators/kafka/sink/progress_marker.hpp"
#include "tools/bench/kafka_client.hpp"
#include "tools/mock_kafka/mock_kafka.hpp"

namespace vigil::bench {
namespace {

namespace fs = std::filesystem;

constexpr int64_t checkpoint_interval_ms = 1000;
/// Records per second the producer sends, warm-up included.
constexpr int64_t rate_per_second = 2000;
/// How long the job may take to make its first record visible.
constexpr auto warmup_limit = std::chrono::seconds(30);
/// How long after the last produced record every record must be visible.
constexpr auto drain_limit =
    std::chrono::seconds(10) + std::chrono::milliseconds(checkpoint_interval_ms);
/// The consumer's poll timeout: how quickly it notices the end of the run.
constexpr int consumer_poll_ms = 20;
/// fetch.wait.max.ms of every consumer: kafka_source's (its `properties`) and the benchmark's
/// of the output topics. librdkafka's mock broker answers a fetch that finds no data only after
/// this wait, even if data arrives meanwhile (librdkafka's default is 500 ms).
constexpr int consumer_fetch_wait_ms = 5;

constexpr const char* in_topic = "in";
constexpr const char* out_topic = "out";
constexpr const char* progress_topic = "out.progress";

/// Microseconds on the steady clock: the one clock of producer and consumer.
int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// The job: kafka_source `in` → kafka_sink `out` in `mode`, a checkpoint every second.
std::string job_graph(const std::string& bootstrap, const std::string& mode) {
  return R"yaml(
name: kafka-e2e-latency
checkpoints: {retain: 1000000, interval_ms: )yaml" +
         std::to_string(checkpoint_interval_ms) + R"yaml(}
nodes:
  - id: src
    operator: kafka_source
    config: {bootstrap: ")yaml" +
         bootstrap + R"yaml(", topic: in, properties: {fetch.wait.max.ms: )yaml" +
         std::to_string(consumer_fetch_wait_ms) + R"yaml(}}
    output_schema:
      fields:
        - {name: seq, type: int64, required: true}
        - {name: produced_us, type: int64, required: true}
  - id: sink
    operator: kafka_sink
    config: {bootstrap: ")yaml" +
         bootstrap + R"yaml(", topic: out, mode: )yaml" + mode + R"yaml(}
edges:
  - {from: src, to: sink}
)yaml";
}

/// The integer after `"name":` in a JSON object written by kafka_sink, or nullopt.
std::optional<int64_t> int_field(std::string_view json, std::string_view quoted_name) {
  auto at = json.find(quoted_name);
  if (at == std::string_view::npos) return std::nullopt;
  const char* begin = json.data() + at + quoted_name.size();
  const char* end = json.data() + json.size();
  if (begin >= end || *begin != ':') return std::nullopt;
  ++begin;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc()) return std::nullopt;
  return v;
}

/// What the consumer thread measured.
struct visibility {
  std::vector<double> latencies_ms;  ///< One per measured record, first visibility only.
  std::vector<uint8_t> seen;         ///< By seq.
  uint64_t duplicates = 0;           ///< Measured records visible more than once.
  uint64_t unreadable = 0;           ///< Output records without seq/produced_us or headers.
  uint64_t markers = 0;
};

/// The consumer side of one case: reads the output (and progress) topic and decides when each
/// record became visible. Runs on its own thread from start() to stop().
class visibility_tracker {
 public:
  visibility_tracker(bool exactly_once, uint64_t records)
      : exactly_once_(exactly_once), records_(records) {
    v_.latencies_ms.reserve(records);
    v_.seen.assign(records, 0);
  }

  /// Starts reading `topic` (and, for exactly_once, the progress topic) with the consumer setting
  /// fetch.wait.max.ms = `fetch_wait_ms`.
  status start(const std::string& bootstrap, const char* topic, int fetch_wait_ms) {
    std::vector<std::pair<std::string, int32_t>> partitions = {{topic, 0}};
    if (exactly_once_) partitions.emplace_back(progress_topic, 0);
    auto c =
        make_assigned_consumer(bootstrap, "vigil-bench-e2e-latency", fetch_wait_ms, partitions);
    if (!c) return c.err();
    consumer_ = std::move(*c);
    thread_ = std::thread([this] { run(); });
    return {};
  }

  /// True once any record (warm-up ones included) has become visible.
  bool warm() const { return warm_.load(); }

  /// Waits until every measured record is visible or `deadline` passes; true if all are.
  bool wait_all(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return all_cv_.wait_until(lock, deadline, [&] { return all_visible_; });
  }

  /// Stops the thread and returns what it measured.
  visibility stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    if (consumer_) rd_kafka_consumer_close(consumer_.get());
    consumer_.reset();
    return std::move(v_);
  }

  ~visibility_tracker() { stop(); }
  visibility_tracker(const visibility_tracker&) = delete;
  visibility_tracker& operator=(const visibility_tracker&) = delete;

 private:
  /// An epoch of one sink attempt: committed once its marker arrived.
  struct epoch_entry {
    bool committed = false;
    std::vector<std::pair<int64_t, int64_t>> pending;  ///< (seq, produced_us) before the marker.
  };

  void run() {
    while (!stop_.load()) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer_.get(), consumer_poll_ms);
      if (m == nullptr) continue;
      const int64_t t = now_us();
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (std::strcmp(rd_kafka_topic_name(m->rkt), progress_topic) == 0) {
          on_marker(m, t);
        } else {
          on_record(m, t);
        }
      }
      rd_kafka_message_destroy(m);
    }
  }

  void on_record(rd_kafka_message_t* m, int64_t t) {
    std::string_view value(static_cast<const char*>(m->payload), m->len);
    auto seq = int_field(value, "\"seq\"");
    auto produced = int_field(value, "\"produced_us\"");
    if (!seq || !produced) {
      ++v_.unreadable;
      return;
    }
    if (!exactly_once_) {
      visible(*seq, *produced, t);
      return;
    }
    rd_kafka_headers_t* headers = nullptr;
    rd_kafka_message_headers(m, &headers);
    const auto sink = header_of(headers, kafka::header_sink);
    const auto epoch = header_of(headers, kafka::header_epoch);
    const auto attempt = header_of(headers, kafka::header_attempt);
    if (sink.empty() || epoch.empty() || attempt.empty()) {
      ++v_.unreadable;
      return;
    }
    set_key(sink, epoch, attempt);
    epoch_entry& e = epochs_[key_];
    if (e.committed) {
      visible(*seq, *produced, t);
    } else {
      e.pending.emplace_back(*seq, *produced);
    }
  }

  void on_marker(rd_kafka_message_t* m, int64_t t) {
    auto marker =
        kafka::parse_marker(std::string_view(static_cast<const char*>(m->payload), m->len));
    if (!marker) {
      ++v_.unreadable;
      return;
    }
    ++v_.markers;
    set_key(marker->sink, std::to_string(marker->epoch), marker->attempt);
    epoch_entry& e = epochs_[key_];
    e.committed = true;
    for (const auto& [seq, produced] : e.pending) visible(seq, produced, t);
    e.pending = {};
  }

  void set_key(std::string_view sink, std::string_view epoch, std::string_view attempt) {
    key_.assign(sink);
    key_.push_back('\n');
    key_.append(epoch);
    key_.push_back('\n');
    key_.append(attempt);
  }

  /// Record `seq` (negative: warm-up), produced at `produced_us`, became visible at `t`.
  void visible(int64_t seq, int64_t produced_us, int64_t t) {
    warm_.store(true);
    if (seq < 0 || static_cast<uint64_t>(seq) >= records_) return;
    if (v_.seen[seq] != 0) {
      ++v_.duplicates;
      return;
    }
    v_.seen[seq] = 1;
    v_.latencies_ms.push_back(static_cast<double>(t - produced_us) / 1000.0);
    if (v_.latencies_ms.size() == records_) {
      std::lock_guard<std::mutex> lock(mu_);
      all_visible_ = true;
      all_cv_.notify_all();
    }
  }

  const bool exactly_once_;
  const uint64_t records_;
  kafka_handle consumer_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> warm_{false};
  std::mutex mu_;
  std::condition_variable all_cv_;
  bool all_visible_ = false;  ///< Guarded by mu_.
  // Owned by the consumer thread until stop().
  visibility v_;
  std::unordered_map<std::string, epoch_entry> epochs_;
  std::string key_;
};

/// What the producer thread did.
struct production {
  uint64_t warmup = 0;  ///< Warm-up records sent.
  uint64_t sent = 0;    ///< Measured records sent.
  double seconds = 0;   ///< From the first to the last measured record.
  std::string error;    ///< Empty on success.
};

/// Sends warm-up records (seq -1) until `tracker` is warm, then `records` measured records, all
/// at rate_per_second; stops early if `job_ended` turns true.
production produce(rd_kafka_t* producer, uint64_t records, const visibility_tracker& tracker,
                   const std::atomic<bool>& job_ended) {
  production p;
  const auto gap = std::chrono::microseconds(1'000'000 / rate_per_second);
  std::string value;
  auto send = [&](int64_t seq) {
    value.clear();
    value.append("{\"seq\":");
    value.append(std::to_string(seq));
    value.append(",\"produced_us\":");
    value.append(std::to_string(now_us()));
    value.push_back('}');
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer, RD_KAFKA_V_TOPIC(in_topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        p.error = std::string("produce to 'in': ") + rd_kafka_err2str(err);
        return false;
      }
      rd_kafka_poll(producer, 1);
    }
    rd_kafka_poll(producer, 0);
    return true;
  };
  auto next = std::chrono::steady_clock::now();
  const auto warmup_deadline = next + warmup_limit;
  while (!tracker.warm()) {
    if (job_ended.load()) {
      p.error = "the job ended during the warm-up";
      return p;
    }
    if (std::chrono::steady_clock::now() > warmup_deadline) {
      p.error = "no record became visible within the warm-up limit";
      return p;
    }
    if (!send(-1)) return p;
    ++p.warmup;
    next += gap;
    std::this_thread::sleep_until(next);
  }
  const auto first = std::chrono::steady_clock::now();
  next = first;
  for (uint64_t seq = 0; seq < records; ++seq) {
    if (job_ended.load()) {
      p.error = "the job ended while records were being produced";
      return p;
    }
    if (!send(static_cast<int64_t>(seq))) return p;
    ++p.sent;
    next += gap;
    std::this_thread::sleep_until(next);
  }
  p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - first).count();
  if (rd_kafka_flush(producer, 10'000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    p.error = "the producer could not deliver every record within 10 s";
  }
  return p;
}

/// Complete checkpoints (chk-*/_metadata) in `dir`.
uint64_t complete_checkpoints(const fs::path& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().filename().string().rfind("chk-", 0) == 0 &&
        fs::exists(entry.path() / "_metadata", ec)) {
      ++n;
    }
  }
  return n;
}

/// One case: `mode` is "exactly_once" or "at_least_once" (the job with that sink mode), or
/// broker_baseline (no job: the consumer reads topic `in` with the fetch.wait.max.ms
/// kafka_source uses here). Prints its JSON line.
status run_case(const std::string& mode, uint64_t records, double target_p99_ms,
                const fs::path& dir) {
  const bool exactly_once = mode == "exactly_once";
  const bool baseline = mode == "broker_baseline";
  auto cluster = tools::mock_kafka_cluster::start(
      1, {{in_topic, 1, 1}, {out_topic, 1, 1}, {progress_topic, 1, 1}});
  if (!cluster) return cluster.err();
  const std::string bootstrap = (*cluster)->bootstrap();

  const auto registry = make_builtin_registry();
  std::optional<job_plan> plan;
  if (!baseline) {
    auto graph = parse_graph_yaml(job_graph(bootstrap, mode));
    if (!graph) return graph.err();
    auto planned = plan_job(*graph, registry);
    if (!planned) return planned.err();
    plan = std::move(*planned);
  }

  auto producer = make_client(
      RD_KAFKA_PRODUCER,
      {{"bootstrap.servers", bootstrap}, {"linger.ms", "0"}, {"enable.idempotence", "true"}});
  if (!producer) return producer.err();
  visibility_tracker tracker(exactly_once, records);
  if (auto st = tracker.start(bootstrap, baseline ? in_topic : out_topic, consumer_fetch_wait_ms);
      !st) {
    return st;
  }

  std::atomic<bool> cancel{false};
  std::atomic<bool> job_ended{false};
  run_options opts;
  opts.state_dir = (dir / "state").string();
  opts.checkpoint_dir = (dir / "checkpoints").string();
  opts.cancel = &cancel;
  std::optional<result<job_summary>> job;
  const double cpu0 = cpu_seconds();
  std::thread job_thread;
  if (!baseline) {
    job_thread = std::thread([&] {
      job.emplace(run_local(*plan, opts));
      job_ended.store(true);
    });
  }

  production p = produce(producer->get(), records, tracker, job_ended);
  const bool all =
      p.error.empty() && tracker.wait_all(std::chrono::steady_clock::now() + drain_limit);
  const bool ended_early = job_ended.load();
  cancel.store(true);
  if (job_thread.joinable()) job_thread.join();
  const double cpu = cpu_seconds() - cpu0;
  visibility v = tracker.stop();
  producer->reset();
  const uint64_t checkpoints = complete_checkpoints(dir / "checkpoints");

  if (!p.error.empty() || ended_early) {
    std::string why = p.error.empty() ? "the job ended before it was cancelled" : p.error;
    if (job && !job->ok()) why += " (job: " + job->err().message + ")";
    return make_error(errc::internal, mode + ": " + why);
  }
  const uint64_t visible = v.latencies_ms.size();
  double mean = 0;
  for (double l : v.latencies_ms) mean += l;
  if (visible > 0) mean /= static_cast<double>(visible);
  std::printf(
      "{\"name\":\"%s\",\"mode\":\"%s\",\"records\":%llu,\"rate_per_second\":%lld,"
      "\"produce_seconds\":%.3f,\"warmup_records\":%llu,\"visible\":%llu,\"missing\":%llu,"
      "\"duplicates\":%llu,\"unreadable\":%llu,\"checkpoint_interval_ms\":%lld,"
      "\"checkpoints\":%llu,\"markers\":%llu,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f,"
      "\"mean_ms\":%.1f,\"cpu_seconds\":%.3f,\"peak_rss_bytes\":%ld,\"target_p99_ms\":%s}\n",
      kafka_e2e_latency_name, mode.c_str(), static_cast<unsigned long long>(records),
      static_cast<long long>(rate_per_second), p.seconds, static_cast<unsigned long long>(p.warmup),
      static_cast<unsigned long long>(visible), static_cast<unsigned long long>(records - visible),
      static_cast<unsigned long long>(v.duplicates), static_cast<unsigned long long>(v.unreadable),
      static_cast<long long>(checkpoint_interval_ms), static_cast<unsigned long long>(checkpoints),
      static_cast<unsigned long long>(v.markers), quantile(v.latencies_ms, 0.5),
      quantile(v.latencies_ms, 0.99), quantile(v.latencies_ms, 1.0), mean, cpu, peak_rss_bytes(),
      baseline ? "null" : std::to_string(static_cast<int64_t>(target_p99_ms)).c_str());
  std::fflush(stdout);
  if (!all) {
    return make_error(errc::internal, mode + ": " + std::to_string(records - visible) +
                                          " records were not visible within the drain limit");
  }
  return {};
}

}  // namespace

int run_kafka_e2e_latency(double scale, const std::string& state_dir) {
  const auto records = std::max<uint64_t>(1'000, static_cast<uint64_t>(20'000 * scale));
  const fs::path dir = fs::path(state_dir) / std::to_string(::getpid());
  const std::pair<const char*, double> cases[] = {
      {"exactly_once", static_cast<double>(checkpoint_interval_ms) + 250},
      {"at_least_once", 50},
      {"broker_baseline", 0},
  };
  int rc = 0;
  for (const auto& [mode, target] : cases) {
    const fs::path case_dir = dir / mode;
    auto st = run_case(mode, records, target, case_dir);
    std::error_code ec;
    fs::remove_all(case_dir, ec);
    if (!st) {
      std::fprintf(stderr, "%s: %s\n", kafka_e2e_latency_name, st.err().message.c_str());
      rc = 1;
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return rc;
}

}  // namespace vigil::bench
