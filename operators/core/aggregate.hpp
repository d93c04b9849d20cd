#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/record_batch.hpp"
#include "common/result.hpp"
#include "common/types.hpp"

/// Aggregate functions of the window operators: parsing the `aggregates` config, folding rows
/// into accumulators, merging accumulators, and their compact binary form in the state backend.

namespace vigil {

enum class aggregate_fn : uint8_t { count, sum, min, max, avg, first, last };

std::string_view to_string(aggregate_fn fn);

/// Parses "count", "sum", "min", "max", "avg", "first", "last".
std::optional<aggregate_fn> parse_aggregate_fn(std::string_view name);

/// One aggregate, checked against the input schema.
struct aggregate_spec {
  aggregate_fn fn = aggregate_fn::count;
  int input = -1;  ///< Index of the aggregated input field; -1 for a count of rows.
  type_id input_type = type_id::int64;
  field output;  ///< The output field: name, type and nullability.
};

/// Parses the config key `key` (normally "aggregates"): a non-empty list of maps
/// {name: <output field>, fn: <function>, field: <input field>}. `field` is required except for
/// count, which then counts rows (with a field it counts non-null values). Allowed input types:
/// sum and avg int64 or double; min and max int64, double, timestamp or string; count, first and
/// last any type. Output types: count int64 (never null); sum, min, max, first and last the input
/// type; avg double. Outputs are nullable exactly when the input field is. Errors name the key,
/// e.g. "config.aggregates[1].fn: ...".
result<std::vector<aggregate_spec>> parse_aggregates(config_reader& reader, std::string_view key,
                                                     const schema& input);

/// The running value of one aggregate in one window. Which members are used depends on the
/// function: count uses `n`; sum uses `has` and `i` (int64) or `d` (double); avg uses `n` and the
/// sum in `i` or `d`; min and max use `has` and the value; first and last also `ts`, the event time
/// of the value. Values live in `i` (int64, timestamp, bool), `d` (double) or `s` (string).
struct accumulator {
  bool has = false;
  int64_t n = 0;
  int64_t i = 0;
  double d = 0;
  int64_t ts = 0;
  std::string s;
};

/// The aggregates of one window operator. A window's state is `size()` consecutive accumulators.
/// Nulls are ignored by every function; a function that saw no non-null value yields null (count
/// yields 0). first keeps the value with the smallest event time (on ties the earliest arrival),
/// last the one with the largest event time (on ties the latest arrival). Integer sums wrap on
/// overflow. Stateless and read-only after construction.
class aggregate_set {
 public:
  aggregate_set() = default;
  explicit aggregate_set(std::vector<aggregate_spec> specs);

  const std::vector<aggregate_spec>& specs() const { return specs_; }
  size_t size() const { return specs_.size(); }

  /// Resets the window state at `acc` to empty (keeps string capacity).
  void reset(accumulator* acc) const;

  /// Folds rows into window states: for i < n, row rows[i] of `batch` goes into the state that
  /// starts at accs + groups[i] * size(). Rows fold in the given order (later = later arrival).
  void add(const record_batch& batch, const uint32_t* rows, const uint32_t* groups, size_t n,
           accumulator* accs) const;

  /// Merges window state `later` (whose rows arrived after those of `into`) into `into`.
  void merge(accumulator* into, const accumulator* later) const;

  /// Appends the binary form of a window state to `out`: fixed-size little-endian fields for
  /// numbers, length-prefixed strings.
  void encode(const accumulator* acc, std::string& out) const;
  /// Reads what encode() wrote; false if `in` does not match this aggregate list.
  bool decode(std::string_view in, accumulator* acc) const;

  /// Pushes one value per aggregate to b.col(first_col), b.col(first_col + 1), ...
  void append_to(const accumulator* acc, batch_builder& b, size_t first_col) const;

 private:
  std::vector<aggregate_spec> specs_;
};

}  // namespace vigil
