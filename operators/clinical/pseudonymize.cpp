#include "operators/clinical/pseudonymize.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <cassert>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "common/config.hpp"

namespace vigil::clinical {

struct pseudonymizer::impl {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;

  ~impl() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};

result<std::string> read_key_file(const std::string& path, std::string_view config_key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return config_reader::key_error(config_key,
                                    "cannot read the pseudonym key file '" + path + "'");
  }
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return config_reader::key_error(config_key,
                                    "cannot read the pseudonym key file '" + path + "'");
  }
  if (!key.empty() && key.back() == '\n') key.pop_back();
  if (!key.empty() && key.back() == '\r') key.pop_back();
  return key;
}

result<std::string> read_key_env(const std::string& name, std::string_view config_key) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr || *v == '\0') {
    return config_reader::key_error(config_key,
                                    "environment variable '" + name + "' is not set or empty");
  }
  return std::string(v);
}

result<std::unique_ptr<pseudonymizer>> pseudonymizer::make(std::string_view key,
                                                           std::string_view config_key) {
  if (key.size() < min_pseudonym_key_bytes) {
    return config_reader::key_error(
        config_key, "the pseudonym key has " + std::to_string(key.size()) + " bytes; at least " +
                        std::to_string(min_pseudonym_key_bytes) + " are required");
  }
  std::unique_ptr<pseudonymizer> p(new pseudonymizer());
  p->impl_ = std::make_unique<impl>();
  impl& m = *p->impl_;
  m.mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (m.mac != nullptr) m.ctx = EVP_MAC_CTX_new(m.mac);
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_END};
  if (m.ctx == nullptr || EVP_MAC_init(m.ctx, reinterpret_cast<const unsigned char*>(key.data()),
                                       key.size(), params) != 1) {
    return make_error(errc::internal, "OpenSSL has no HMAC-SHA256");
  }
  return p;
}

pseudonymizer::~pseudonymizer() = default;

void pseudonymizer::pseudonym(std::string_view mrn, std::string& out) {
  static constexpr char hex[] = "0123456789abcdef";
  unsigned char digest[EVP_MAX_MD_SIZE] = {};
  size_t len = 0;
  // Re-initializing without a key restarts the MAC with the key set in make(), which checked
  // that HMAC-SHA256 works; these calls cannot fail for lack of a key or algorithm.
  [[maybe_unused]] const bool ok =
      EVP_MAC_init(impl_->ctx, nullptr, 0, nullptr) == 1 &&
      EVP_MAC_update(impl_->ctx, reinterpret_cast<const unsigned char*>(mrn.data()), mrn.size()) ==
          1 &&
      EVP_MAC_final(impl_->ctx, digest, &len, sizeof digest) == 1;
  assert(ok && len >= pseudonym_hex_chars / 2);
  out.resize(pseudonym_hex_chars);
  for (size_t i = 0; i < pseudonym_hex_chars / 2; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 0x0f];
  }
}

void redact(std::string& text, std::string_view mrn, std::string_view pseudonym) {
  if (mrn.empty() || text.size() < mrn.size()) return;
  // ASCII only, inline: std::tolower is a call into the locale per character, and this runs on
  // every id of every message.
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  const char first_lower = lower(mrn[0]);
  const char first_upper =
      first_lower >= 'a' && first_lower <= 'z' ? static_cast<char>(first_lower - 32) : first_lower;
  size_t i = 0;
  while (i + mrn.size() <= text.size()) {
    bool match = text[i] == first_lower || text[i] == first_upper;
    for (size_t j = 1; match && j < mrn.size(); ++j) match = lower(text[i + j]) == lower(mrn[j]);
    if (match) {
      text.replace(i, mrn.size(), pseudonym);
      i += pseudonym.size();
    } else {
      ++i;
    }
  }
}

}  // namespace vigil::clinical
