// vigil-bench: end-to-end throughput benchmarks of Vigil pipelines.
//
// Each benchmark runs a real job graph through the local executor (CAF actors, RocksDB
// state, credit-based channels) and prints one JSON object per line:
//   {"name", "events", "seconds", "events_per_second", "cpu_seconds", "events_per_cpu_second",
//    "peak_rss_bytes", "target_events_per_cpu_second"}
// The dist.* benchmarks run their graph twice, in the local executor and on an embedded
// cluster (a coordinator and two workers, each its own actor system, batches serialized over
// TCP on 127.0.0.1), and add "local_events_per_cpu_second" and "ratio"; their target is 70% of
// the local figure. CPU seconds count every thread of the process: both sides of the wire.
// Every benchmark runs in a child process of its own so that peak_rss_bytes is its own.
// ckpt.overhead and ckpt.duration (checkpoint_bench.hpp) measure aligned checkpoints in the
// local executor; recovery.time (recovery_bench.hpp, only with --only: it starts a coordinator
// and workers as processes) measures how long a cluster job's output stops when a worker dies.
// kafka.e2e_latency (kafka_bench.hpp, only with --only: it runs ~25 s on an in-process mock Kafka
// cluster) measures the latency from a record produced to Kafka to its visibility downstream.
// clinical.sepsis_watch (clinical_bench.hpp) runs examples/sepsis-watch.yaml on a mock Kafka
// cluster and an embedded cluster: observations/s end to end, and observation-to-alert latency.
//
//   vigil-bench                    run every benchmark
//   vigil-bench --only NAME        run one (in this process)
//   vigil-bench --scale 0.1        scale event counts (CI smoke runs use a small scale)
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "checkpoint_bench.hpp"
#include "clinical_bench.hpp"
#include "coordinator/embedded_cluster.hpp"
#include "engine/engine.hpp"
#include "graph/planner.hpp"
#include "graph/yaml_loader.hpp"
#include "kafka_bench.hpp"
#include "lake/parquet_writer.hpp"
#include "recovery_bench.hpp"

namespace {

using vigil::bench::cpu_seconds;
using vigil::bench::peak_rss_bytes;

struct benchmark {
  std::string name;
  uint64_t events;  ///< At scale 1.
  double target_per_cpu_second;
  /// The graph for `events` source events.
  std::function<std::string(uint64_t events)> graph;
  /// Also run on an embedded two-worker cluster and compare.
  bool distributed = false;
};

std::string filter_map_graph(uint64_t n) {
  return R"yaml(
name: core.filter_map
nodes:
  - id: gen
    operator: generator
    config: {count: )yaml" +
         std::to_string(n) + R"yaml(, keys: 1000, seed: 1}
  - id: filter
    operator: filter
    config: {where: "value < 80 AND key % 10 != 3"}
  - id: map
    operator: map
    config:
      set: {scaled: "value * 1.8 + 32", bucket: "key % 16", late: "ts < ts_from_ms(0)"}
  - id: sink
    operator: "null"
edges:
  - {from: gen, to: filter}
  - {from: filter, to: map}
  - {from: map, to: sink}
)yaml";
}

std::string window_count_graph(uint64_t n) {
  return R"yaml(
name: core.window_count_rocksdb
nodes:
  - id: gen
    operator: generator
    config: {count: )yaml" +
         std::to_string(n) + R"yaml(, keys: 100000, seed: 2, interval: 10us}
  - id: keyed
    operator: key_by
    config: {key: key}
  - id: count
    operator: tumbling_window
    config:
      size: 10s
      aggregates: [{name: n, fn: count}]
  - id: sink
    operator: "null"
edges:
  - {from: gen, to: keyed}
  - {from: keyed, to: count}
  - {from: count, to: sink}
)yaml";
}

std::string interval_join_graph(uint64_t n) {
  std::string half = std::to_string(n / 2);
  return R"yaml(
name: core.interval_join
nodes:
  - id: left
    operator: generator
    config: {count: )yaml" +
         half + R"yaml(, keys: 1000, seed: 3, interval: 1ms}
  - id: right
    operator: generator
    config: {count: )yaml" +
         half + R"yaml(, keys: 1000, seed: 4, interval: 1ms}
  - id: left_keyed
    operator: key_by
    config: {key: key}
  - id: right_keyed
    operator: key_by
    config: {key: key}
  - id: join
    operator: interval_join
    config: {lower: "-500ms", upper: "500ms"}
  - id: sink
    operator: "null"
edges:
  - {from: left, to: left_keyed}
  - {from: right, to: right_keyed}
  - {from: left_keyed, to: join, to_port: left}
  - {from: right_keyed, to: join, to_port: right}
  - {from: join, to: sink}
)yaml";
}

std::string dedup_graph(uint64_t n) {
  // Every (key, seq) is new, as the message ids of sepsis-watch's dedup are: each record is a
  // state read of a key RocksDB does not hold, then a write, and the state outgrows the cache.
  return R"yaml(
name: core.dedup
nodes:
  - id: gen
    operator: generator
    config: {count: )yaml" +
         std::to_string(n) + R"yaml(, keys: 1000000, key_type: string, seed: 6, interval: 10us}
  - id: keyed
    operator: key_by
    config: {key: [key, seq]}
  - id: dedup
    operator: dedup
    config: {ttl: 24h}
  - id: sink
    operator: "null"
edges:
  - {from: gen, to: keyed}
  - {from: keyed, to: dedup}
  - {from: dedup, to: sink}
)yaml";
}

std::string shuffle_graph(uint64_t n) {
  return R"yaml(
name: dist.shuffle
nodes:
  - id: gen
    operator: generator
    config: {count: )yaml" +
         std::to_string(n) + R"yaml(, keys: 100000, seed: 5, interval: 10us}
  - id: keyed
    operator: key_by
    config: {key: key}
  - id: count
    operator: tumbling_window
    parallelism: 2
    config:
      size: 10s
      aggregates: [{name: n, fn: count}]
  - id: sink
    operator: "null"
    parallelism: 2
edges:
  - {from: gen, to: keyed}
  - {from: keyed, to: count}
  - {from: count, to: sink}
)yaml";
}

const std::vector<benchmark>& benchmarks() {
  static const std::vector<benchmark> all = {
      {"core.filter_map", 20'000'000, 2'000'000, filter_map_graph},
      {"core.window_count_rocksdb", 5'000'000, 500'000, window_count_graph},
      {"core.interval_join", 4'000'000, 300'000, interval_join_graph},
      {"core.dedup", 2'000'000, 500'000, dedup_graph},
      {"dist.shuffle", 5'000'000, 0, shuffle_graph, true},
  };
  return all;
}

struct measurement {
  double seconds = 0;
  double cpu = 0;
};

/// Runs the plan locally or, with `workers` > 0, on an embedded cluster.
vigil::result<measurement> measure(const vigil::v1::JobGraph& graph,
                                   const vigil::operator_registry& registry,
                                   const vigil::job_plan& plan, size_t workers,
                                   const std::string& state_dir) {
  std::unique_ptr<vigil::embedded_cluster> cluster;
  if (workers > 0) {
    vigil::embedded_cluster_options co;
    co.workers = workers;
    co.slots_per_worker = 4;
    co.threads_per_worker = 1;
    co.state_dir = state_dir;
    auto c = vigil::embedded_cluster::start(co, registry);
    if (!c) return c.err();
    cluster = std::move(*c);
  }
  vigil::run_options opts;
  opts.state_dir = state_dir;
  double cpu0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  auto summary = cluster ? cluster->run(graph) : vigil::run_local(plan, opts);
  measurement m;
  m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m.cpu = cpu_seconds() - cpu0;
  std::error_code ec;
  std::filesystem::remove_all(state_dir, ec);
  if (!summary) return summary.err();
  return m;
}

int run_one(const benchmark& b, double scale, const std::string& state_dir) {
  auto events = static_cast<uint64_t>(b.events * scale);
  auto graph = vigil::parse_graph_yaml(b.graph(events));
  if (!graph) {
    std::fprintf(stderr, "%s: %s\n", b.name.c_str(), graph.err().message.c_str());
    return 1;
  }
  auto registry = vigil::make_builtin_registry();
  auto plan = vigil::plan_job(*graph, registry);
  if (!plan) {
    std::fprintf(stderr, "%s: %s\n", b.name.c_str(), plan.err().message.c_str());
    return 1;
  }
  std::string dir = (std::filesystem::path(state_dir) / std::to_string(::getpid())).string();
  auto local = measure(*graph, registry, *plan, 0, dir);
  if (!local) {
    std::fprintf(stderr, "%s: %s\n", b.name.c_str(), local.err().message.c_str());
    return 1;
  }
  measurement m = *local;
  double target = b.target_per_cpu_second;
  std::string extra;
  if (b.distributed) {
    auto dist = measure(*graph, registry, *plan, 2, dir);
    if (!dist) {
      std::fprintf(stderr, "%s: %s\n", b.name.c_str(), dist.err().message.c_str());
      return 1;
    }
    m = *dist;
    double local_rate = events / local->cpu;
    target = 0.7 * local_rate;
    char buf[128];
    std::snprintf(buf, sizeof buf, ",\"local_events_per_cpu_second\":%.0f,\"ratio\":%.3f",
                  local_rate, (events / m.cpu) / local_rate);
    extra = buf;
  }
  std::printf(
      "{\"name\":\"%s\",\"events\":%llu,\"seconds\":%.3f,\"events_per_second\":%.0f,"
      "\"cpu_seconds\":%.3f,\"events_per_cpu_second\":%.0f,\"peak_rss_bytes\":%ld,"
      "\"target_events_per_cpu_second\":%.0f%s}\n",
      b.name.c_str(), static_cast<unsigned long long>(events), m.seconds, events / m.seconds, m.cpu,
      events / m.cpu, peak_rss_bytes(), target, extra.c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace

// lake.parquet_write: Vigil's Parquet writer against DuckDB's COPY ... TO (FORMAT parquet,
// COMPRESSION zstd), both on one thread, for the same rows of a 10-column clinical
// observation schema. Run only with --only (it needs node and tools/duckdb, which
// tools/bootstrap.sh installs).
constexpr const char* parquet_bench_name = "lake.parquet_write";

int run_parquet_write(double scale, const std::string& dir) {
  auto rows = static_cast<uint64_t>(2'000'000 * scale);
  auto schema = vigil::make_schema({{"patient", vigil::type_id::string, false},
                                    {"encounter", vigil::type_id::string, false},
                                    {"loinc", vigil::type_id::string, false},
                                    {"value", vigil::type_id::float64, true},
                                    {"unit", vigil::type_id::string, true},
                                    {"status", vigil::type_id::string, false},
                                    {"observed_at", vigil::type_id::timestamp, false},
                                    {"ingested_at", vigil::type_id::timestamp, false},
                                    {"message_id", vigil::type_id::string, false},
                                    {"seq", vigil::type_id::int64, false}});
  static const char* loinc[] = {"8867-4", "9279-1", "8310-5", "2708-6", "8480-6",
                                "2524-7", "2160-0", "1975-2", "777-3",  "26464-8"};
  static const char* unit[] = {"/min",   "/min",  "Cel",   "%",       "mm[Hg]",
                               "mmol/L", "mg/dL", "mg/dL", "10*3/uL", "10*3/uL"};
  std::vector<vigil::batch_ptr> batches;
  char buf[64];
  for (uint64_t r = 0; r < rows;) {
    vigil::batch_builder b(schema, 4096);
    for (int i = 0; i < 4096 && r < rows; ++i, ++r) {
      uint64_t h = r * 0x9E3779B97F4A7C15ull;
      int p = static_cast<int>(h % 5000);
      int k = static_cast<int>((h >> 20) % 10);
      b.col(0).push_string({buf, static_cast<size_t>(std::snprintf(buf, sizeof buf, "p%06d", p))});
      b.col(1).push_string(
          {buf, static_cast<size_t>(std::snprintf(buf, sizeof buf, "e%06d-%d", p, p % 7))});
      b.col(2).push_string(loinc[k]);
      if ((h >> 40) % 50 == 0) {
        b.col(3).push_null();
        b.col(4).push_null();
      } else {
        b.col(3).push_float64(static_cast<double>((h >> 24) % 20000) / 100.0);
        b.col(4).push_string(unit[k]);
      }
      b.col(5).push_string((h >> 50) % 100 == 0 ? "corrected" : "final");
      int64_t t = 1'767'225'600'000'000 + static_cast<int64_t>(r) * 50'000;
      b.col(6).push_int64(t);
      b.col(7).push_int64(t + static_cast<int64_t>((h >> 30) % 5'000'000));
      b.col(8).push_string(
          {buf, static_cast<size_t>(std::snprintf(buf, sizeof buf, "MSG%010llu",
                                                  static_cast<unsigned long long>(r / 3)))});
      b.col(9).push_int64(static_cast<int64_t>(r));
      b.end_row(t);
    }
    batches.push_back(b.finish());
  }
  std::filesystem::create_directories(dir);
  std::string ours = dir + "/vigil.parquet";
  vigil::lake::parquet_writer_options o;
  o.codec = vigil::lake::parquet_codec::zstd;
  double best_cpu = 1e30, best_wall = 1e30;
  uint64_t bytes = 0;
  for (int run = 0; run < 3; ++run) {
    double cpu0 = cpu_seconds();
    auto t0 = std::chrono::steady_clock::now();
    auto w = vigil::lake::parquet_writer::open(ours, schema, o);
    if (!w) {
      std::fprintf(stderr, "%s: %s\n", parquet_bench_name, w.err().message.c_str());
      return 1;
    }
    for (const auto& b : batches) {
      if (auto st = (*w)->write(*b); !st) {
        std::fprintf(stderr, "%s: %s\n", parquet_bench_name, st.err().message.c_str());
        return 1;
      }
    }
    auto info = (*w)->close();
    if (!info) {
      std::fprintf(stderr, "%s: %s\n", parquet_bench_name, info.err().message.c_str());
      return 1;
    }
    best_wall = std::min(
        best_wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    best_cpu = std::min(best_cpu, cpu_seconds() - cpu0);
    bytes = info->file_bytes;
  }
  std::string cmd = "node '" + std::string(VIGIL_DUCKDB_DIR) + "/copy_bench.mjs' '" + ours + "' '" +
                    dir + "/duckdb.parquet' 3";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  std::string duck;
  if (pipe != nullptr) {
    char line[512];
    while (std::fgets(line, sizeof line, pipe) != nullptr) duck += line;
    if (::pclose(pipe) != 0) duck.clear();
  }
  double duck_seconds = 0;
  unsigned long long duck_bytes = 0;
  if (std::sscanf(duck.c_str(), "{\"rows\":%*d,\"seconds\":%lf,\"bytes\":%llu", &duck_seconds,
                  &duck_bytes) != 2 ||
      duck_seconds <= 0) {
    std::fprintf(stderr, "%s: DuckDB did not run (run tools/bootstrap.sh): %s\n",
                 parquet_bench_name, duck.c_str());
    return 1;
  }
  // The writer runs on this thread only: its wall time is its CPU time, minus the fsync wait.
  std::printf(
      "{\"name\":\"%s\",\"rows\":%llu,\"seconds\":%.3f,\"cpu_seconds\":%.3f,"
      "\"rows_per_second\":%.0f,\"mb_per_second\":%.1f,\"file_bytes\":%llu,"
      "\"duckdb_seconds\":%.3f,\"duckdb_rows_per_second\":%.0f,\"duckdb_file_bytes\":%llu,"
      "\"ratio\":%.3f,\"target_ratio\":0.8}\n",
      parquet_bench_name, static_cast<unsigned long long>(rows), best_wall, best_cpu,
      rows / best_wall, bytes / best_wall / 1e6, static_cast<unsigned long long>(bytes),
      duck_seconds, rows / duck_seconds, duck_bytes, duck_seconds / best_wall);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}

int main(int argc, char** argv) {
  CLI::App app{"vigil-bench: end-to-end throughput benchmarks"};
  std::string only;
  double scale = 1.0;
  std::string state_dir = (std::filesystem::temp_directory_path() / "vigil-bench").string();
  bool list = false;
  app.add_option("--only", only, "Run one benchmark in this process");
  app.add_option("--scale", scale, "Multiply every benchmark's event count")
      ->check(CLI::PositiveNumber);
  app.add_option("--state-dir", state_dir, "Directory for RocksDB state");
  app.add_flag("--list", list, "List the benchmarks");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  if (list) {
    for (const auto& b : benchmarks()) std::printf("%s\n", b.name.c_str());
    std::printf("%s\n%s\n%s\n", vigil::bench::checkpoint_overhead_name,
                vigil::bench::clinical_sepsis_watch_name, vigil::bench::checkpoint_duration_name);
    std::printf("%s (only with --only)\n", parquet_bench_name);
    std::printf("%s (only with --only)\n", vigil::bench::recovery_time_name);
    std::printf("%s (only with --only)\n", vigil::bench::kafka_e2e_latency_name);
    return 0;
  }
  // Benchmarks that are not a plain graph run: name and how to run it at `scale`.
  const std::vector<std::pair<std::string, std::function<int()>>> others = {
      {vigil::bench::checkpoint_overhead_name,
       [&] {
         const benchmark* window = nullptr;
         for (const auto& b : benchmarks()) {
           if (b.name == "core.window_count_rocksdb") window = &b;
         }
         return vigil::bench::run_checkpoint_overhead(
             window->graph, static_cast<uint64_t>(window->events * scale), scale, state_dir);
       }},
      {vigil::bench::clinical_sepsis_watch_name,
       [&] { return vigil::bench::run_clinical_sepsis_watch(scale, state_dir); }},
      {vigil::bench::checkpoint_duration_name,
       [&] { return vigil::bench::run_checkpoint_duration(scale, state_dir); }},
  };
  if (only == parquet_bench_name) {
    return run_parquet_write(scale, state_dir + "/" + std::to_string(::getpid()));
  }
  if (only == vigil::bench::recovery_time_name) {
    // Five kills at scale 1; at least one.
    return vigil::bench::run_recovery_time(std::max(1, static_cast<int>(5 * scale + 0.5)),
                                           state_dir);
  }
  if (only == vigil::bench::kafka_e2e_latency_name) {
    return vigil::bench::run_kafka_e2e_latency(scale, state_dir);
  }
  if (!only.empty()) {
    for (const auto& b : benchmarks()) {
      if (b.name == only) return run_one(b, scale, state_dir);
    }
    for (const auto& [name, run] : others) {
      if (name == only) return run();
    }
    std::fprintf(stderr, "vigil-bench: unknown benchmark '%s' (see --list)\n", only.c_str());
    return 2;
  }
  std::vector<std::function<int()>> all;
  for (const auto& b : benchmarks()) all.push_back([&] { return run_one(b, scale, state_dir); });
  for (const auto& other : others) all.push_back(other.second);
  int failures = 0;
  for (const auto& run : all) {
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(run());
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
  }
  return failures == 0 ? 0 : 1;
}
