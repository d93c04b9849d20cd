// vigil-coordinator: the cluster's coordinator. Serves the gRPC job API (vigilctl talks to it),
// accepts workers on its cluster port, schedules and watches jobs, and keeps the job store.
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <optional>

#include "common/signals.hpp"
#include "coordinator/api_server.hpp"
#include "coordinator/audit_log.hpp"
#include "coordinator/auth.hpp"
#include "coordinator/cluster_coordinator.hpp"
#include "engine/engine.hpp"
#include "metrics/http_server.hpp"

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
  std::string metrics_listen;
  app.add_option("--metrics-listen", metrics_listen,
                 "Serve /metrics (Prometheus), /healthz and /readyz on host:port (default: off)");
  vigil::api_tls_options api_tls;
  std::string auth_tokens;
  std::string audit_log_path;
  vigil::cluster_tls cluster_tls;
  app.add_option("--tls-cert", api_tls.tls_cert, "PEM certificate chain: serve the API over TLS");
  app.add_option("--tls-key", api_tls.tls_key, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", api_tls.tls_client_ca,
                 "PEM CA certificates: require API clients to present a certificate signed by "
                 "it (mTLS)");
  app.add_option("--auth-tokens", auth_tokens,
                 "Bearer tokens file ('<principal> <role> <sha256-hex-of-token>' per line): "
                 "enables authentication and roles");
  app.add_option("--audit-log", audit_log_path, "Append one JSON line per API call to this file");
  app.add_option("--cluster-tls-cert", cluster_tls.cert,
                 "PEM certificate for TLS with the workers (with --cluster-tls-key and "
                 "--cluster-tls-ca)");
  app.add_option("--cluster-tls-key", cluster_tls.key, "PEM private key of --cluster-tls-cert");
  app.add_option("--cluster-tls-ca", cluster_tls.ca,
                 "PEM CA certificates: workers must present a certificate signed by it");
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

  // Security settings are checked before anything starts: a bad file is a refusal (exit 2).
  if (auto creds = vigil::make_api_credentials(api_tls); !creds) {
    std::fprintf(stderr, "vigil-coordinator: %s\n", creds.err().message.c_str());
    return 2;
  }
  std::optional<vigil::token_table> tokens;
  if (!auth_tokens.empty()) {
    auto loaded = vigil::token_table::load(auth_tokens);
    if (!loaded) {
      std::fprintf(stderr, "vigil-coordinator: %s\n", loaded.err().message.c_str());
      return 2;
    }
    tokens = std::move(*loaded);
  }
  std::unique_ptr<vigil::audit_log> audit;
  if (!audit_log_path.empty()) {
    auto opened = vigil::audit_log::open(audit_log_path);
    if (!opened) {
      std::fprintf(stderr, "vigil-coordinator: %s\n", opened.err().message.c_str());
      return 2;
    }
    audit = std::move(*opened);
  }
  if (tokens) {
    spdlog::info("API authentication on: {} principals from {}", tokens->size(), auth_tokens);
  } else {
    spdlog::warn("API authentication is off (no --auth-tokens): every caller acts as admin");
  }
  if (api_tls.tls_cert.empty()) {
    spdlog::warn(auth_tokens.empty()
                     ? "the API is served without TLS (no --tls-cert)"
                     : "the API is served without TLS (no --tls-cert): bearer tokens cross the "
                       "network in clear text unless the API listens on loopback only");
  }

  // Stop signals are taken by sigwait below: block them before any thread starts.
  sigset_t signals = vigil::block_stop_signals();

  // Ready once the job store is loaded and the API serves.
  auto readiness = std::make_shared<vigil::metrics::readiness>("loading the job store");
  auto metrics_server = vigil::metrics::start_if_configured(metrics_listen, readiness);
  if (!metrics_server) {
    std::fprintf(stderr, "vigil-coordinator: %s\n", metrics_server.err().message.c_str());
    return metrics_server.err().code == vigil::errc::invalid_argument ? 2 : 1;
  }

  auto registry = vigil::make_builtin_registry();
  vigil::coordinator_options opts;
  opts.cluster_listen = *cluster_at;
  opts.data_dir = data_dir;
  opts.checkpoint_dir = checkpoint_dir;
  opts.savepoint_dir = savepoint_dir;
  opts.heartbeat_timeout = std::chrono::milliseconds(heartbeat_timeout_ms);
  opts.threads = threads;
  opts.tls = cluster_tls;
  auto core = vigil::cluster_coordinator::start(opts, registry);
  if (!core) {
    std::fprintf(stderr, "vigil-coordinator: %s\n", core.err().message.c_str());
    return 1;
  }
  for (const auto& e : (*core)->store_errors()) spdlog::warn("{}", e.message);
  readiness->set_not_ready("starting the API server");
  vigil::api_security security{tokens ? &*tokens : nullptr, audit.get()};
  auto server = vigil::api_server::start(**core, *api_at, api_tls, security);
  if (!server) {
    std::fprintf(stderr, "vigil-coordinator: %s\n", server.err().message.c_str());
    return 1;
  }
  std::printf("vigil-coordinator: api %s cluster %s:%u\n", (*server)->address().c_str(),
              cluster_at->host.c_str(), (*core)->cluster_port());
  std::fflush(stdout);
  readiness->set_ready();
  if (*metrics_server) spdlog::info("metrics at http://{}/metrics", (*metrics_server)->address());

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("coordinator: signal {}, shutting down", sig);
  readiness->set_not_ready("shutting down");
  (*server)->shutdown();
  return 0;
}
