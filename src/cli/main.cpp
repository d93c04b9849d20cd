// vigil: validate and run job graphs in one process.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/ids.hpp"
#include "coordinator/embedded_cluster.hpp"
#include "engine/engine.hpp"
#include "graph/yaml_loader.hpp"
#include "metrics/http_server.hpp"

namespace {

std::atomic<bool> cancel_requested{false};

void on_signal(int) {
  cancel_requested = true;
}

/// Runs the graph on a coordinator and `workers` workers inside this process.
vigil::result<vigil::job_summary> run_embedded(const std::string& graph_path,
                                               const vigil::operator_registry& registry,
                                               size_t workers, const vigil::job_plan& plan,
                                               const vigil::run_options& opts,
                                               const std::string& checkpoint_root) {
  auto graph = vigil::load_graph_file(graph_path);
  if (!graph) return graph.err();
  uint32_t subtasks = 0;
  for (const auto& n : plan.nodes) subtasks += n.parallelism;
  vigil::embedded_cluster_options co;
  co.workers = workers;
  // Every worker could host the whole job: the scheduler still spreads keyed operators.
  co.slots_per_worker = std::max<uint32_t>(subtasks, 1);
  co.state_dir = opts.state_dir;
  if (plan.checkpoint_interval_us > 0) co.checkpoint_dir = checkpoint_root;
  co.threads_per_worker = opts.threads;
  auto cluster = vigil::embedded_cluster::start(co, registry);
  if (!cluster) return cluster.err();
  return (*cluster)->run(*graph, opts.cancel);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vigil: a stream processor for real-time clinical analytics"};
  app.require_subcommand(1);

  std::string graph_path;
  std::string state_dir = (std::filesystem::temp_directory_path() / "vigil-state").string();
  size_t threads = 0;
  bool quiet = false;
  size_t workers = 0;
  bool verbose = false;
  auto* run = app.add_subcommand("run", "Run a job graph (YAML) in this process");
  run->add_option("graph", graph_path, "Job graph file")->required();
  run->add_option("--state-dir", state_dir, "Directory for RocksDB state");
  run->add_option("--threads", threads, "Actor system threads (0 = one per core)");
  std::string checkpoint_dir =
      (std::filesystem::temp_directory_path() / "vigil-checkpoints").string();
  run->add_option("--checkpoint-dir", checkpoint_dir,
                  "Checkpoint storage; the job's checkpoints go to <dir>/<job name>")
      ->capture_default_str();
  std::string from_checkpoint;
  bool resume = false;
  run->add_option("--from-checkpoint", from_checkpoint,
                  "Start from this complete checkpoint (a .../chk-<id> directory)");
  run->add_flag("--resume", resume,
                "Start from the job's newest complete checkpoint in --checkpoint-dir");
  run->add_flag("-q,--quiet", quiet, "Do not print the run summary");
  run->add_option("--workers", workers,
                  "Run on an embedded cluster: a coordinator and this many workers in this "
                  "process, connected over 127.0.0.1 (0 = the local executor)")
      ->check(CLI::Range(size_t{0}, size_t{64}));
  run->add_flag("-v,--verbose", verbose, "Log the embedded cluster's events");
  std::string metrics_listen;
  run->add_option("--metrics-listen", metrics_listen,
                  "Serve /metrics (Prometheus), /healthz and /readyz on host:port while the job "
                  "runs (default: off)");

  auto* validate = app.add_subcommand("validate", "Check a job graph and print its plan");
  validate->add_option("graph", graph_path, "Job graph file")->required();

  auto* list = app.add_subcommand("operators", "List the available operators");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; a bad flag or config value is a refusal: exit 2.
    return app.exit(e) == 0 ? 0 : 2;
  }

  spdlog::set_default_logger(spdlog::stderr_color_mt("vigil"));
  spdlog::set_level(verbose ? spdlog::level::info : spdlog::level::warn);
  auto registry = vigil::make_builtin_registry();
  if (list->parsed()) {
    for (const auto& f : registry.all()) {
      const auto& t = f->traits();
      std::printf("%-18s %s%s\n", t.name.c_str(), t.keyed ? "[keyed] " : "", t.summary.c_str());
    }
    return 0;
  }

  auto plan = vigil::load_job(graph_path, registry);
  if (!plan) {
    std::fprintf(stderr, "vigil: %s: %s\n", vigil::to_string(plan.err().code),
                 plan.err().message.c_str());
    return 2;
  }
  if (validate->parsed()) {
    std::fputs(vigil::describe_plan(*plan).c_str(), stdout);
    return 0;
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  vigil::run_options opts;
  opts.state_dir = (std::filesystem::path(state_dir) / std::to_string(::getpid())).string();
  opts.threads = threads;
  opts.cancel = &cancel_requested;
  opts.checkpoint_dir =
      (std::filesystem::path(checkpoint_dir) / vigil::to_path_safe_id(plan->name)).string();
  if (workers > 0 && (resume || !from_checkpoint.empty())) {
    std::fprintf(stderr,
                 "vigil: --resume and --from-checkpoint apply to single-process runs; with "
                 "--workers the embedded cluster restarts a failed job from its checkpoints\n");
    return 2;
  }
  if (!from_checkpoint.empty()) {
    auto chk = std::filesystem::path(from_checkpoint).lexically_normal();
    if (chk.filename().empty()) chk = chk.parent_path();
    std::string name = chk.filename().string();
    char* end = nullptr;
    long long id = name.rfind("chk-", 0) == 0 ? std::strtoll(name.c_str() + 4, &end, 10) : 0;
    if (id <= 0 || end == nullptr || *end != '\0') {
      std::fprintf(stderr, "vigil: --from-checkpoint: expected a chk-<id> directory, got '%s'\n",
                   from_checkpoint.c_str());
      return 2;
    }
    opts.restore_dir = chk.parent_path().string();
    opts.restore_id = id;
  } else if (resume) {
    auto done = vigil::checkpoint_storage(opts.checkpoint_dir).completed();
    if (done.empty()) {
      std::fprintf(stderr, "vigil: --resume: no complete checkpoint in %s\n",
                   opts.checkpoint_dir.c_str());
      return 2;
    }
    opts.restore_dir = opts.checkpoint_dir;
    opts.restore_id = done.back();
    if (!quiet)
      std::fprintf(stderr, "vigil: resuming from checkpoint %lld\n",
                   static_cast<long long>(done.back()));
  }
  // Ready while the job runs.
  auto readiness = std::make_shared<vigil::metrics::readiness>("starting the job");
  auto metrics_server = vigil::metrics::start_if_configured(metrics_listen, readiness);
  if (!metrics_server) {
    std::fprintf(stderr, "vigil: %s\n", metrics_server.err().message.c_str());
    return metrics_server.err().code == vigil::errc::invalid_argument ? 2 : 1;
  }
  readiness->set_ready();
  auto summary = workers == 0
                     ? vigil::run_local(*plan, opts)
                     : run_embedded(graph_path, registry, workers, *plan, opts, checkpoint_dir);
  std::error_code ec;
  std::filesystem::remove_all(opts.state_dir, ec);
  if (!summary) {
    if (cancel_requested) {
      std::fprintf(stderr, "vigil: job cancelled\n");
      return 130;
    }
    std::fprintf(stderr, "vigil: job failed: %s\n", summary.err().message.c_str());
    return 1;
  }
  std::fflush(stdout);
  if (!quiet) std::fputs(vigil::describe_summary(*summary).c_str(), stderr);
  return 0;
}
