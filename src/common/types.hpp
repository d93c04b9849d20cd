#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

/// The value types a stream field can have. Timestamps are microseconds since the Unix epoch, UTC.
enum class type_id : uint8_t { boolean, int64, float64, string, timestamp };

std::string_view to_string(type_id type);

/// Parses "bool", "int64", "double", "string", "timestamp".
std::optional<type_id> parse_type(std::string_view name);

/// Sources refuse event times beyond ±2^62 µs (about ±146,000 years) so that window and join
/// arithmetic on event times (time + size, time - lower, ...) never overflows.
inline constexpr int64_t max_event_time_us = int64_t{1} << 62;

inline bool event_time_in_range(int64_t t) {
  return t >= -max_event_time_us && t <= max_event_time_us;
}

/// True for int64, float64 and timestamp-free numeric types (int64, float64).
inline bool is_numeric(type_id t) {
  return t == type_id::int64 || t == type_id::float64;
}

struct field {
  std::string name;
  type_id type = type_id::int64;
  bool nullable = true;

  friend bool operator==(const field&, const field&) = default;
};

/// An ordered list of named, typed fields. Immutable once shared (see schema_ptr).
class schema {
 public:
  schema() = default;
  explicit schema(std::vector<field> fields) : fields_(std::move(fields)) {}

  const std::vector<field>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }
  const field& at(size_t i) const { return fields_[i]; }

  /// Index of the field named `name`, or -1.
  int index_of(std::string_view name) const;

  /// "name:type, name:type?" (a '?' marks nullable fields).
  std::string to_string() const;

  friend bool operator==(const schema&, const schema&) = default;

 private:
  std::vector<field> fields_;
};

using schema_ptr = std::shared_ptr<const schema>;

inline schema_ptr make_schema(std::vector<field> fields) {
  return std::make_shared<const schema>(std::move(fields));
}

}  // namespace vigil
