#pragma once

#include <caf/actor_system_config.hpp>
#include <string>
#include <string_view>

#include "common/result.hpp"

namespace vigil {

/// Reads a PEM file of one or more X.509 certificates (a certificate chain or a CA bundle) and
/// checks that every certificate in it parses. Errors name `flag` and the file, e.g.
/// "--tls-cert server.pem: cannot be read: No such file or directory" or
/// "--tls-client-ca ca.pem: no PEM certificate in it".
result<std::string> read_pem_certificates(const std::string& path, std::string_view flag);

/// Reads a PEM private key (unencrypted) and checks that it parses; errors as above.
result<std::string> read_pem_private_key(const std::string& path, std::string_view flag);

/// Checks that `key_pem` is the private key of the first certificate of `cert_pem`;
/// invalid_argument naming both flags and files otherwise.
status check_key_pair(const std::string& cert_pem, const std::string& key_pem,
                      std::string_view cert_flag, const std::string& cert_path,
                      std::string_view key_flag, const std::string& key_path);

/// TLS on the CAF transport between the coordinator and the workers and between workers
/// (--cluster-tls-cert, --cluster-tls-key, --cluster-tls-ca). Either all three files are set
/// or none. Every side presents its certificate and verifies the peer's against the CA (CAF's
/// OpenSSL module: TLS 1.2, no host name check), so only holders of a certificate signed by
/// the cluster CA can connect.
struct cluster_tls {
  std::string cert;  ///< PEM certificate chain of this process.
  std::string key;   ///< PEM private key of `cert`.
  std::string ca;    ///< PEM certificates of the cluster CA.

  bool enabled() const { return !cert.empty() || !key.empty() || !ca.empty(); }
};

/// Checks the files (all three set, readable, parseable, key matching the certificate) and
/// sets up `cfg` for TLS: loads CAF's OpenSSL module and points it at the files. Errors name
/// the flag and file. Call only when tls.enabled(), after the middleman was loaded.
status enable_cluster_tls(caf::actor_system_config& cfg, const cluster_tls& tls);

}  // namespace vigil
