// vigil-coordinator: the cluster's coordinator. Serves the gRPC job API (vigilctl talks to it),
// accepts workers on its cluster port, schedules and watches jobs, and keeps the job store.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "common/signals.hpp"
#include "coordinator/api_server.hpp"
#include "coordinator/cluster_coordinator.hpp"
#include "engine/engine.hpp"

int main(int argc, char** argv) {
  CLI::App app{"vigil-coordinator: schedules Vigil jobs onto workers and serves the job API"};
  std::string listen = "127.0.0.1:7070";
  std::string cluster_listen = "127.0.0.1:7071";
  std::string data_dir = "vigil-coordinator-data";
  std::string checkpoint_dir;
  std::string savepoint_dir;
  int64_t heartbeat_timeout_ms = 3000;
  size_t threads = 0;
  app.set_config("--config", "", "Read these options from a TOML or INI file");
  app.add_option("--listen", listen, "gRPC API endpoint host:port (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--cluster-listen", cluster_listen,
                 "Endpoint workers connect to, host:port (port 0: any free port)")
      ->capture_default_str();
  app.add_option("--data-dir", data_dir, "Directory of the durable job store")
      ->capture_default_str();
  app.add_option("--checkpoint-dir", checkpoint_dir,
                 "Checkpoint storage shared with every worker (jobs go to <dir>/<job id>); "
                 "required for graphs with checkpoints");
  app.add_option("--savepoint-dir", savepoint_dir,
                 "Where savepoints go (<dir>/<job id>-<checkpoint id>); default "
                 "<checkpoint-dir>/savepoints");
  app.add_option("--heartbeat-timeout-ms", heartbeat_timeout_ms,
                 "Declare a worker lost after this long without a heartbeat")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{100}, int64_t{600000}));
  app.add_option("--threads", threads, "Actor system threads (0 = two)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; a bad flag or config value is a refusal: exit 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  // Logs go to stderr: stdout carries the startup line (and, on workers, stdout sinks).
  spdlog::set_default_logger(spdlog::stderr_color_mt("vigil-coordinator"));

  auto api_at = vigil::parse_host_port(listen, "--listen");
  auto cluster_at = vigil::parse_host_port(cluster_listen, "--cluster-listen");
  for (const auto* r : {&api_at, &cluster_at}) {
    if (!r->ok()) {
      std::fprintf(stderr, "vigil-coordinator: %s\n", r->err().message.c_str());
      return 2;
    }
  }

  // Stop signals are taken by sigwait below: block them before any thread starts.
  sigset_t signals = vigil::block_stop_signals();

  auto registry = vigil::make_builtin_registry();
  vigil::coordinator_options opts;
  opts.cluster_listen = *cluster_at;
  opts.data_dir = data_dir;
  opts.checkpoint_dir = checkpoint_dir;
  opts.savepoint_dir = savepoint_dir;
  opts.heartbeat_timeout = std::chrono::milliseconds(heartbeat_timeout_ms);
  opts.threads = threads;
  auto core = vigil::cluster_coordinator::start(opts, registry);
  if (!core) {
    std::fprintf(stderr, "vigil-coordinator: %s\n", core.err().message.c_str());
    return 1;
  }
  for (const auto& e : (*core)->store_errors()) spdlog::warn("{}", e.message);
  auto server = vigil::api_server::start(**core, *api_at);
  if (!server) {
    std::fprintf(stderr, "vigil-coordinator: %s\n", server.err().message.c_str());
    return 1;
  }
  std::printf("vigil-coordinator: api %s cluster %s:%u\n", (*server)->address().c_str(),
              cluster_at->host.c_str(), (*core)->cluster_port());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("coordinator: signal {}, shutting down", sig);
  (*server)->shutdown();
  return 0;
}
