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

/// Transport security of the API endpoint. Without tls_cert and tls_key the API is plaintext.
struct api_tls_options {
  std::string tls_cert;       ///< PEM certificate chain of the server (--tls-cert).
  std::string tls_key;        ///< PEM private key of tls_cert (--tls-key).
  std::string tls_client_ca;  ///< mTLS: clients must present a certificate signed by this CA.
};

/// The coordinator's external API: a gRPC server with JobService and ClusterService over a
/// coordinator core, which must outlive it. Shuts down when destroyed.
class api_server {
 public:
  /// Listens on `listen` (port 0 picks a free port); io_error when it cannot. With `tls`
  /// certificate and key the API is served over TLS, and with a client CA every client must
  /// present a certificate signed by it (mTLS). Bad TLS files are refused before listening
  /// (invalid_argument or io_error naming the flag and file). The tokens and audit log
  /// `security` points to must outlive the server.
  static result<std::unique_ptr<api_server>> start(coordinator_api& core, const host_port& listen,
                                                   const api_tls_options& tls = {},
                                                   api_security security = {});

  ~api_server();
  api_server(const api_server&) = delete;
  api_server& operator=(const api_server&) = delete;

  /// "host:port" with the bound port.
  const std::string& address() const { return address_; }
  uint16_t port() const { return static_cast<uint16_t>(port_); }
  /// Stops accepting calls and waits for the running ones. Idempotent.
  void shutdown();

 private:
  api_server(coordinator_api& core, api_security security)
      : jobs_(core, security), cluster_(core, security) {}

  job_service jobs_;
  cluster_service cluster_;
  int port_ = 0;
  std::string address_;
  std::unique_ptr<grpc::Server> server_;
};

/// Server credentials for `tls`: insecure when it sets neither certificate nor key, else
/// SSL (requiring and verifying client certificates when it has a client CA). Refuses a
/// certificate without a key (or the reverse), a client CA without both, and files that
/// cannot be read or parsed or do not belong together, naming the flag and the file.
result<std::shared_ptr<grpc::ServerCredentials>> make_api_credentials(const api_tls_options& tls);

}  // namespace vigil
