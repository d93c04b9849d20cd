#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace vigil {

/// A typed configuration value of an operator (the internal form of vigil.v1.Value).
struct config_value {
  enum class kind { null, boolean, integer, number, string, list, map };

  kind k = kind::null;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;
  std::vector<config_value> list;
  std::vector<std::pair<std::string, config_value>> map;

  static config_value of_bool(bool v);
  static config_value of_int(int64_t v);
  static config_value of_double(double v);
  static config_value of_string(std::string v);

  const config_value* find(std::string_view key) const;  ///< For maps; nullptr if absent.
};

const char* to_string(config_value::kind k);

using config_map = std::vector<std::pair<std::string, config_value>>;

/// Parses a duration: an integer count of milliseconds, or a string such as "250ms", "10s",
/// "5m", "2h", "1d", "100us". Returns microseconds.
result<int64_t> parse_duration_us(const config_value& v);

/// Reads an operator's config, checking types and reporting errors as "config.<key>: ...".
/// Every key read is remembered; finish() refuses keys nobody read (typos).
class config_reader {
 public:
  explicit config_reader(const config_map& cfg) : cfg_(cfg) {}

  const config_value* get(std::string_view key);

  result<std::string> required_string(std::string_view key);
  result<std::string> string_or(std::string_view key, std::string fallback);
  result<int64_t> required_int(std::string_view key);
  result<int64_t> int_or(std::string_view key, int64_t fallback);
  result<double> double_or(std::string_view key, double fallback);
  result<bool> bool_or(std::string_view key, bool fallback);
  result<int64_t> required_duration_us(std::string_view key);
  result<int64_t> duration_us_or(std::string_view key, int64_t fallback_us);
  /// A string or a list of strings.
  result<std::vector<std::string>> required_string_list(std::string_view key);
  result<std::vector<std::string>> string_list_or(std::string_view key,
                                                  std::vector<std::string> fallback);

  /// An error naming `key`: "config.<key>: <what>".
  static error key_error(std::string_view key, std::string_view what);

  /// Refuses keys that were never read.
  status finish() const;

 private:
  const config_map& cfg_;
  std::set<std::string, std::less<>> seen_;
};

}  // namespace vigil
