#pragma once

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/host_port.hpp"
#include "common/result.hpp"
#include "runtime/operator.hpp"
#include "worker/cluster_tls.hpp"

namespace vigil {

struct worker_options {
  /// Unique in the cluster; the coordinator refuses a second live worker with the same id.
  std::string id;
  /// The coordinator's cluster endpoint (its CAF port, not the gRPC API).
  host_port coordinator;
  /// Where this worker accepts data connections from its peers; port 0 picks a free port.
  host_port listen{"127.0.0.1", 0};
  /// The host name peers use to reach this worker; empty means listen.host.
  std::string advertise_host;
  /// Task slots: how many subtasks this worker runs at most (one subtask per slot).
  uint32_t slots = 4;
  /// Parent of the subtasks' RocksDB directories ("<state_dir>/<job>/<node>-<subtask>").
  std::filesystem::path state_dir;
  /// Actor system threads; 0 = one per core.
  size_t threads = 0;
  std::chrono::milliseconds heartbeat_interval{500};
  /// Reconnection to a lost or not yet started coordinator backs off up to this.
  std::chrono::milliseconds max_reconnect_backoff{2000};
  /// Called with true once the coordinator accepted the registration and with false when that
  /// connection ends (for the readiness endpoint); may be empty. Called from actor threads.
  std::function<void(bool registered)> on_registration;
  /// TLS on every CAF connection (to the coordinator and to peers); off when not enabled().
  cluster_tls tls;
};

/// A worker process's runtime: one CAF actor system (with the io middleman) hosting the
/// subtasks the coordinator deploys here. start() opens the data port and returns; a background
/// thread connects to the coordinator (retrying with backoff until it is up), registers the
/// slots, heartbeats, and serves deploy and cancel requests. When the coordinator goes away,
/// the worker stops every subtask it hosts (their job master is gone) and reconnects.
/// See docs/design/0005-cluster.md.
class worker_node {
 public:
  /// Refuses bad options (invalid_argument naming the setting) and a data port that cannot be
  /// opened (io_error). `registry` must outlive the node.
  static result<std::unique_ptr<worker_node>> start(worker_options opts,
                                                    const operator_registry& registry);

  ~worker_node();
  worker_node(const worker_node&) = delete;
  worker_node& operator=(const worker_node&) = delete;

  const std::string& id() const { return opts_.id; }
  /// "host:port" peers use for data connections (the bound port when listen.port was 0).
  const std::string& address() const { return address_; }

  /// Stops the subtasks and disconnects. Thread-safe, idempotent.
  void stop();

  /// Blocks until stop() or a fatal refusal by the coordinator (e.g. a duplicate id), which is
  /// returned as an error.
  status wait();

 private:
  worker_node(worker_options opts, const operator_registry& registry);
  void supervise();

  worker_options opts_;
  const operator_registry& registry_;
  std::unique_ptr<caf::actor_system_config> cfg_;  ///< The system keeps a reference to it.
  std::unique_ptr<caf::actor_system> sys_;
  std::string address_;
  std::thread supervisor_;

  std::mutex mutex_;
  std::condition_variable changed_;
  bool stopping_ = false;
  bool ended_ = false;
  std::optional<error> fatal_;
  caf::actor current_;  ///< The worker actor of the current coordinator connection.
};

}  // namespace vigil
