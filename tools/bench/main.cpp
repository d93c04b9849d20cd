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
//
//   vigil-bench                    run every benchmark
//   vigil-bench --only NAME        run one (in this process)
//   vigil-bench --scale 0.1        scale event counts (CI smoke runs use a small scale)
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "coordinator/embedded_cluster.hpp"
#include "engine/engine.hpp"
#include "graph/planner.hpp"
#include "graph/yaml_loader.hpp"

namespace {

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
      {"dist.shuffle", 5'000'000, 0, shuffle_graph, true},
  };
  return all;
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

long peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss * 1024L;  // Linux reports kilobytes.
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
    return 0;
  }
  if (!only.empty()) {
    for (const auto& b : benchmarks()) {
      if (b.name == only) return run_one(b, scale, state_dir);
    }
    std::fprintf(stderr, "vigil-bench: unknown benchmark '%s' (see --list)\n", only.c_str());
    return 2;
  }
  int failures = 0;
  for (const auto& b : benchmarks()) {
    std::fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) _exit(run_one(b, scale, state_dir));
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
  }
  return failures == 0 ? 0 : 1;
}
