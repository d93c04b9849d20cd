// vigil-worker: hosts operator subtasks for a Vigil coordinator.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "common/signals.hpp"
#include "engine/engine.hpp"
#include "metrics/http_server.hpp"
#include "worker/worker.hpp"

int main(int argc, char** argv) {
  CLI::App app{"vigil-worker: runs the subtasks a Vigil coordinator deploys here"};
  std::string coordinator = "127.0.0.1:7071";
  std::string listen = "127.0.0.1:0";
  std::string id;
  std::string advertise;
  std::string state_dir;
  uint32_t slots = 4;
  size_t threads = 0;
  int64_t heartbeat_ms = 500;
  vigil::cluster_tls tls;
  std::string metrics_listen;
  app.set_config("--config", "", "Read these options from a TOML or INI file");
  app.add_option("--coordinator", coordinator, "The coordinator's cluster endpoint, host:port")
      ->capture_default_str();
  app.add_option("--listen", listen, "Endpoint for data from peer workers (port 0: any free)")
      ->capture_default_str();
  app.add_option("--id", id, "Worker id, unique in the cluster (default: the host name)");
  app.add_option("--advertise", advertise,
                 "Host name peers use to reach this worker (default: the --listen host)");
  app.add_option("--slots", slots, "Task slots: subtasks this worker runs at most")
      ->capture_default_str()
      ->check(CLI::Range(1u, 4096u));
  app.add_option("--state-dir", state_dir,
                 "Directory for RocksDB state (default: <tmp>/vigil-worker-<id>)");
  app.add_option("--threads", threads, "Actor system threads (0 = one per core)");
  app.add_option("--heartbeat-ms", heartbeat_ms, "Heartbeat interval")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{10}, int64_t{60000}));
  app.add_option("--cluster-tls-cert", tls.cert,
                 "PEM certificate for TLS to the coordinator and peers (with --cluster-tls-key "
                 "and --cluster-tls-ca)");
  app.add_option("--cluster-tls-key", tls.key, "PEM private key of --cluster-tls-cert");
  app.add_option("--cluster-tls-ca", tls.ca,
                 "PEM CA certificates: peers must present a certificate signed by it");
  app.add_option("--metrics-listen", metrics_listen,
                 "Serve /metrics (Prometheus), /healthz and /readyz on host:port (default: off)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; a bad flag or config value is a refusal: exit 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  // Logs go to stderr: stdout carries the startup line (and, on workers, stdout sinks).
  spdlog::set_default_logger(spdlog::stderr_color_mt("vigil-worker"));

  vigil::worker_options opts;
  auto coord = vigil::parse_host_port(coordinator, "--coordinator");
  auto lis = vigil::parse_host_port(listen, "--listen");
  for (const auto* r : {&coord, &lis}) {
    if (!r->ok()) {
      std::fprintf(stderr, "vigil-worker: %s\n", r->err().message.c_str());
      return 2;
    }
  }
  if (id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    id = host;
  }
  opts.id = id;
  opts.coordinator = *coord;
  opts.listen = *lis;
  opts.advertise_host = advertise;
  opts.slots = slots;
  opts.state_dir = state_dir.empty()
                       ? std::filesystem::temp_directory_path() / ("vigil-worker-" + id)
                       : std::filesystem::path(state_dir);
  opts.threads = threads;
  opts.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  opts.tls = tls;

  sigset_t signals = vigil::block_stop_signals();

  // Ready while registered with the coordinator.
  auto readiness =
      std::make_shared<vigil::metrics::readiness>("not registered with the coordinator");
  auto metrics_server = vigil::metrics::start_if_configured(metrics_listen, readiness);
  if (!metrics_server) {
    std::fprintf(stderr, "vigil-worker: %s\n", metrics_server.err().message.c_str());
    return metrics_server.err().code == vigil::errc::invalid_argument ? 2 : 1;
  }
  opts.on_registration = [readiness](bool registered) {
    if (registered) {
      readiness->set_ready();
    } else {
      readiness->set_not_ready("not registered with the coordinator");
    }
  };

  auto registry = vigil::make_builtin_registry();
  auto node = vigil::worker_node::start(opts, registry);
  if (!node) {
    std::fprintf(stderr, "vigil-worker: %s\n", node.err().message.c_str());
    return node.err().code == vigil::errc::invalid_argument ? 2 : 1;
  }
  std::printf("vigil-worker: %s data %s coordinator %s\n", id.c_str(), (*node)->address().c_str(),
              coord->to_string().c_str());
  std::fflush(stdout);
  std::thread on_signal([&signals, n = node->get()] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGTERM || sig == SIGINT) spdlog::info("worker: signal {}, shutting down", sig);
    n->stop();
  });
  auto st = (*node)->wait();
  pthread_kill(on_signal.native_handle(), SIGTERM);  // Ends the sigwait if no signal came.
  on_signal.join();
  if (!st) {
    std::fprintf(stderr, "vigil-worker: %s\n", st.err().message.c_str());
    return st.err().code == vigil::errc::invalid_argument ? 2 : 1;
  }
  return 0;
}
