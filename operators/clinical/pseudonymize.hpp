#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"

/// Pseudonymized patient ids: HMAC-SHA256 of the MRN under a secret key.

namespace vigil::clinical {

/// Minimum key length in bytes (128 bits).
inline constexpr size_t min_pseudonym_key_bytes = 16;

/// Hex digits of a pseudonym: the first 128 bits of the HMAC-SHA256 in lowercase hex. 128 bits
/// keep collisions out of reach for any realistic number of patients (birthday bound ~2^64)
/// and keep keys and file names short.
inline constexpr size_t pseudonym_hex_chars = 32;

/// Reads the key from the file `path` (its bytes; one trailing "\n" or "\r\n" is removed).
/// Errors name the config key `config_key` and never contain the key.
result<std::string> read_key_file(const std::string& path, std::string_view config_key);

/// Reads the key from the environment variable `name` (its value as bytes).
result<std::string> read_key_env(const std::string& name, std::string_view config_key);

/// Computes pseudonyms with one key. Reuses one OpenSSL MAC context, so computing a pseudonym
/// does not allocate. The key is held only inside OpenSSL and never logged. One instance serves
/// one thread.
class pseudonymizer {
 public:
  /// Fails when the key is shorter than min_pseudonym_key_bytes or OpenSSL has no HMAC-SHA256.
  static result<std::unique_ptr<pseudonymizer>> make(std::string_view key,
                                                     std::string_view config_key);
  ~pseudonymizer();
  pseudonymizer(const pseudonymizer&) = delete;
  pseudonymizer& operator=(const pseudonymizer&) = delete;

  /// The pseudonym of `mrn`: pseudonym_hex_chars lowercase hex digits, into `out` (replaced).
  void pseudonym(std::string_view mrn, std::string& out);

 private:
  pseudonymizer() = default;
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Replaces each occurrence of `mrn` in `text` (ASCII case-insensitive) by `pseudonym`. Used on
/// message ids, encounters and dead-letter text so that an MRN embedded in them (FHIR ids such
/// as "hr-mrn004521-...") does not leave the ingest. No-op for an empty `mrn`.
void redact(std::string& text, std::string_view mrn, std::string_view pseudonym);

}  // namespace vigil::clinical
