#include "worker/cluster_tls.hpp"

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

// CAF 0.17's OpenSSL module never drains OpenSSL's per-thread error queue when a TLS call
// fails (it only reads it for a log line, compiled out in release builds). A peer that fails
// the handshake (no or an untrusted certificate) thus leaves an error on the multiplexer
// thread, and the next SSL_read of a healthy connection that merely would block is then
// reported as SSL_ERROR_SSL, which makes CAF drop that connection: any stranger knocking on
// the cluster port would disconnect every worker. OpenSSL requires an empty queue before each
// TLS I/O call (see SSL_get_error(3)), so these wrappers empty it and call the real function.
// Defined in the executable, they take precedence over libssl for every library, gRPC
// included, which is harmless: emptying the queue first is what OpenSSL asks for.
namespace {

template <class F>
F real_ssl_function(const char* name) {
  void* f = dlvsym(RTLD_NEXT, name, "OPENSSL_3.0.0");
  if (f == nullptr) f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) std::abort();  // libssl is linked: its functions exist.
  return reinterpret_cast<F>(f);
}

}  // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto real = real_ssl_function<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto real = real_ssl_function<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static const auto real = real_ssl_function<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

int SSL_connect(SSL* ssl) {
  static const auto real = real_ssl_function<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

}  // extern "C"

namespace vigil {
namespace {

struct bio_deleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct x509_deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct pkey_deleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using x509_ptr = std::unique_ptr<X509, x509_deleter>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

std::string where(std::string_view flag, const std::string& path) {
  return std::string(flag) + " " + path;
}

result<std::string> read_file(const std::string& path, std::string_view flag) {
  if (path.empty()) return make_error(errc::invalid_argument, std::string(flag) + ": required");
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    return make_error(errc::io_error,
                      where(flag, path) + ": cannot be read: " + std::strerror(errno));
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return make_error(errc::io_error, where(flag, path) + ": cannot be read");
  return text;
}

bio_ptr memory_bio(const std::string& text) {
  return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

x509_ptr first_certificate(const std::string& pem) {
  auto bio = memory_bio(pem);
  return x509_ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

}  // namespace

result<std::string> read_pem_certificates(const std::string& path, std::string_view flag) {
  auto text = read_file(path, flag);
  if (!text) return text.err();
  auto bio = memory_bio(*text);
  size_t count = 0;
  for (;;) {
    x509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) break;
    ++count;
  }
  // The loop ends on the first block that is not a certificate: at the end of the text
  // (PEM_R_NO_START_LINE) or on a broken one.
  auto err = ERR_peek_last_error();
  bool at_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  ERR_clear_error();
  if (count == 0) {
    return make_error(errc::invalid_argument,
                      where(flag, path) +
                          ": no PEM certificate in it (expected '-----BEGIN "
                          "CERTIFICATE-----')");
  }
  if (!at_end) {
    return make_error(errc::invalid_argument, where(flag, path) + ": certificate " +
                                                  std::to_string(count + 1) + " does not parse");
  }
  return text;
}

result<std::string> read_pem_private_key(const std::string& path, std::string_view flag) {
  auto text = read_file(path, flag);
  if (!text) return text.err();
  auto bio = memory_bio(*text);
  // An empty passphrase callback result makes an encrypted key fail instead of prompting.
  auto no_passphrase = [](char*, int, int, void*) { return 0; };
  pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
  ERR_clear_error();
  if (!key) {
    return make_error(errc::invalid_argument,
                      where(flag, path) +
                          ": no unencrypted PEM private key in it (expected '-----BEGIN "
                          "PRIVATE KEY-----')");
  }
  return text;
}

status check_key_pair(const std::string& cert_pem, const std::string& key_pem,
                      std::string_view cert_flag, const std::string& cert_path,
                      std::string_view key_flag, const std::string& key_path) {
  auto cert = first_certificate(cert_pem);
  auto bio = memory_bio(key_pem);
  pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  bool match = cert && key && X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (match) return {};
  return make_error(errc::invalid_argument, where(key_flag, key_path) +
                                                ": not the private key of the certificate in " +
                                                where(cert_flag, cert_path));
}

status enable_cluster_tls(caf::actor_system_config& cfg, const cluster_tls& tls) {
  constexpr std::string_view cert_flag = "--cluster-tls-cert";
  constexpr std::string_view key_flag = "--cluster-tls-key";
  constexpr std::string_view ca_flag = "--cluster-tls-ca";
  if (tls.cert.empty() || tls.key.empty() || tls.ca.empty()) {
    return make_error(errc::invalid_argument,
                      "--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together: "
                      "set all three or none");
  }
  auto cert = read_pem_certificates(tls.cert, cert_flag);
  if (!cert) return cert.err();
  auto key = read_pem_private_key(tls.key, key_flag);
  if (!key) return key.err();
  auto ca = read_pem_certificates(tls.ca, ca_flag);
  if (!ca) return ca.err();
  VIGIL_TRY(check_key_pair(*cert, *key, cert_flag, tls.cert, key_flag, tls.key));
  // CAF reads the files again for every connection: absolute paths keep them valid whatever
  // the working directory.
  auto absolute = [](const std::string& p) { return std::filesystem::absolute(p).string(); };
  cfg.openssl_certificate = absolute(tls.cert);
  cfg.openssl_key = absolute(tls.key);
  cfg.openssl_cafile = absolute(tls.ca);
  cfg.load<caf::openssl::manager>();
  return {};
}

}  // namespace vigil
