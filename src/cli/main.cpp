// vigil: validate and run job graphs in one process.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "engine/engine.hpp"

namespace {

std::atomic<bool> cancel_requested{false};

void on_signal(int) {
  cancel_requested = true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vigil: a stream processor for real-time clinical analytics"};
  app.require_subcommand(1);

  std::string graph_path;
  std::string state_dir = (std::filesystem::temp_directory_path() / "vigil-state").string();
  size_t threads = 0;
  bool quiet = false;
  auto* run = app.add_subcommand("run", "Run a job graph (YAML) in this process");
  run->add_option("graph", graph_path, "Job graph file")->required();
  run->add_option("--state-dir", state_dir, "Directory for RocksDB state");
  run->add_option("--threads", threads, "Actor system threads (0 = one per core)");
  run->add_flag("-q,--quiet", quiet, "Do not print the run summary");

  auto* validate = app.add_subcommand("validate", "Check a job graph and print its plan");
  validate->add_option("graph", graph_path, "Job graph file")->required();

  auto* list = app.add_subcommand("operators", "List the available operators");

  CLI11_PARSE(app, argc, argv);

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
  auto summary = vigil::run_local(*plan, opts);
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
