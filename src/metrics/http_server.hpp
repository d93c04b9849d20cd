#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/host_port.hpp"
#include "common/result.hpp"

namespace vigil::metrics {

/// Whether the process is ready for work, with the reason when it is not. Thread-safe.
class readiness {
 public:
  /// Starts not ready with `reason`.
  explicit readiness(std::string reason = "starting") : reason_(std::move(reason)) {}

  void set_ready() {
    std::lock_guard lock(mutex_);
    ready_ = true;
    reason_.clear();
  }
  void set_not_ready(std::string reason) {
    std::lock_guard lock(mutex_);
    ready_ = false;
    reason_ = std::move(reason);
  }
  /// True when ready; otherwise false and `reason` is set.
  bool ready(std::string& reason) const {
    std::lock_guard lock(mutex_);
    reason = reason_;
    return ready_;
  }

 private:
  mutable std::mutex mutex_;
  bool ready_ = false;
  std::string reason_;
};

/// The metrics and health endpoint of a process: a small HTTP/1.1 server on one thread serving
/// `GET /metrics` (the registry in Prometheus text format), `/healthz` (200 "ok" while the
/// process runs) and `/readyz` (200 "ready", or 503 with the reason). Every other path is 404,
/// other methods 405, a malformed or oversized request 400; each connection serves one request
/// (Connection: close) and a client that sends nothing is dropped after a few seconds.
class http_server {
 public:
  /// Binds `at` (port 0: any free port) and starts serving. io_error if it cannot bind.
  static result<std::unique_ptr<http_server>> start(const host_port& at,
                                                    std::shared_ptr<readiness> ready);

  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// The bound port.
  uint16_t port() const { return port_; }
  /// "host:port" actually bound.
  std::string address() const { return host_ + ":" + std::to_string(port_); }
  readiness& ready() { return *ready_; }

  /// Stops serving and joins the thread. Idempotent.
  void stop();

 private:
  http_server(std::shared_ptr<readiness> ready) : ready_(std::move(ready)) {}
  void serve();
  void handle(int fd);

  std::shared_ptr<readiness> ready_;
  std::string host_;
  uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_fd_[2] = {-1, -1};  ///< A pipe: writing to [1] ends serve().
  std::thread thread_;
};

/// Starts the endpoint when `listen` (a --metrics-listen value) is not empty; null when empty.
/// `what` names the flag in errors.
result<std::unique_ptr<http_server>> start_if_configured(
    const std::string& listen, std::shared_ptr<readiness> ready,
    std::string_view what = "--metrics-listen");

}  // namespace vigil::metrics
