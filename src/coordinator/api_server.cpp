#include "coordinator/api_server.hpp"

#include "worker/cluster_tls.hpp"

namespace vigil {

result<std::shared_ptr<grpc::ServerCredentials>> make_api_credentials(const api_tls_options& tls) {
  if (tls.tls_cert.empty() && tls.tls_key.empty()) {
    if (!tls.tls_client_ca.empty()) {
      return make_error(errc::invalid_argument,
                        "--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS with client "
                        "certificates)");
    }
    return grpc::InsecureServerCredentials();
  }
  if (tls.tls_cert.empty() || tls.tls_key.empty()) {
    return make_error(errc::invalid_argument, "--tls-cert and --tls-key go together: set both");
  }
  auto cert = read_pem_certificates(tls.tls_cert, "--tls-cert");
  if (!cert) return cert.err();
  auto key = read_pem_private_key(tls.tls_key, "--tls-key");
  if (!key) return key.err();
  VIGIL_TRY(check_key_pair(*cert, *key, "--tls-cert", tls.tls_cert, "--tls-key", tls.tls_key));
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls.tls_client_ca.empty()) {
    auto ca = read_pem_certificates(tls.tls_client_ca, "--tls-client-ca");
    if (!ca) return ca.err();
    options.pem_root_certs = *ca;
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

result<std::unique_ptr<api_server>> api_server::start(coordinator_api& core,
                                                      const host_port& listen,
                                                      const api_tls_options& tls,
                                                      api_security security) {
  auto credentials = make_api_credentials(tls);
  if (!credentials) return credentials.err();
  std::unique_ptr<api_server> s(new api_server(core, security));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen.to_string(), *credentials, &s->port_);
  builder.RegisterService(&s->jobs_);
  builder.RegisterService(&s->cluster_);
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return make_error(errc::io_error, "cannot serve the API on " + listen.to_string() +
                                          " (address in use or not local?)");
  }
  s->address_ = listen.host + ":" + std::to_string(s->port_);
  return s;
}

api_server::~api_server() {
  shutdown();
}

void api_server::shutdown() {
  if (server_) {
    server_->Shutdown();
    server_.reset();
  }
}

}  // namespace vigil
