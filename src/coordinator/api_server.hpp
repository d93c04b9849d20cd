#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "common/host_port.hpp"
#include "common/result.hpp"
#include "coordinator/cluster_service.hpp"
#include "coordinator/coordinator_api.hpp"
#include "coordinator/job_service.hpp"

namespace vigil {

/// The coordinator's external API: a gRPC server with JobService and ClusterService over a
/// coordinator core, which must outlive it. Shuts down when destroyed.
class api_server {
 public:
  /// Listens on `listen` (port 0 picks a free port); io_error when it cannot.
  static result<std::unique_ptr<api_server>> start(coordinator_api& core, const host_port& listen);

  ~api_server();
  api_server(const api_server&) = delete;
  api_server& operator=(const api_server&) = delete;

  /// "host:port" with the bound port.
  const std::string& address() const { return address_; }
  uint16_t port() const { return static_cast<uint16_t>(port_); }
  /// Stops accepting calls and waits for the running ones. Idempotent.
  void shutdown();

 private:
  explicit api_server(coordinator_api& core) : jobs_(core), cluster_(core) {}

  job_service jobs_;
  cluster_service cluster_;
  int port_ = 0;
  std::string address_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace vigil
