#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/record_batch.hpp"
#include "common/types.hpp"

namespace vigil {

/// Serializes some columns of a row into compact bytes (for state values) and back.
///
/// Format: a validity bitmap with one bit per encoded column (bit i of byte i/8 set = value
/// present), then the present values in column order: int64, timestamp and float64 as 8 bytes
/// little-endian, bool as one byte, string as a LEB128 varint length followed by the bytes.
/// Neither the schema nor the event time is stored: the reader knows both.
class row_codec {
 public:
  row_codec() = default;
  /// Encodes the columns `columns` (indices into `s`), in that order.
  row_codec(const schema& s, std::vector<int> columns);
  /// Encodes every column of `s`.
  static row_codec all(const schema& s);

  size_t num_columns() const { return columns_.size(); }
  const std::vector<int>& columns() const { return columns_; }

  /// Appends the encoding of row `row` of `batch` (whose schema is the codec's) to `out`.
  void encode(const record_batch& batch, size_t row, std::string& out) const;

  /// Decodes one encoded row and pushes one value to each of out[0..num_columns()), whose types
  /// are those of the encoded columns. On malformed input (truncated or with trailing bytes) it
  /// still pushes one value (null for what could not be read) to every column, so the columns
  /// stay aligned, and returns false.
  bool decode(std::string_view in, column* const* out) const;

 private:
  std::vector<int> columns_;
  std::vector<type_id> types_;
};

}  // namespace vigil
