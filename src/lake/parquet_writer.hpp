#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/record_batch.hpp"
#include "common/result.hpp"
#include "common/types.hpp"

namespace vigil::lake {

/// The compression codec of every page of a file.
enum class parquet_codec : uint8_t { uncompressed, snappy, zstd };

/// "uncompressed", "snappy", "zstd".
const char* to_string(parquet_codec codec);

struct parquet_writer_options {
  parquet_codec codec = parquet_codec::snappy;
  /// ZSTD's compression level when `codec` is zstd: from 1 (fastest) to max_zstd_level
  /// (smallest). 3 is ZSTD's own default.
  int zstd_level = 3;
  /// A row group is closed once its encoded, uncompressed column data (page headers, levels
  /// and values) reaches this many bytes. Between 1 and max_row_group_bytes.
  size_t row_group_bytes = size_t{128} << 20;
  /// A data page is closed once its encoded, uncompressed levels and values reach this many
  /// bytes. Between 1 and max_page_bytes, and at most row_group_bytes.
  size_t page_bytes = size_t{1} << 20;
  /// Written to the footer's key_value_metadata in this order (keys must not be empty).
  std::vector<std::pair<std::string, std::string>> key_value_metadata;

  static constexpr int max_zstd_level = 19;
  static constexpr size_t max_page_bytes = size_t{1} << 30;
  static constexpr size_t max_row_group_bytes = size_t{1} << 40;
};

/// A minimum or maximum: nothing (no non-null, non-NaN value), a bool, an int64 (also for
/// timestamps, in µs UTC), a double or a string.
using parquet_stat_value = std::variant<std::monostate, bool, int64_t, double, std::string>;

/// Statistics of one column over a whole file, as written to its column chunks. For float64,
/// min and max leave out NaN, a zero minimum is -0.0 and a zero maximum is +0.0 (Parquet's
/// rules for TypeDefinedOrder); strings compare as unsigned bytes; false < true.
struct parquet_column_stats {
  std::string name;
  type_id type = type_id::int64;
  int64_t null_count = 0;
  int64_t nan_count = 0;  ///< Always 0 unless the column is float64.
  parquet_stat_value min;
  parquet_stat_value max;
};

/// What close() reports about the finished file.
struct parquet_file_info {
  uint64_t file_bytes = 0;
  int64_t num_rows = 0;
  size_t num_row_groups = 0;
  std::vector<parquet_column_stats> columns;  ///< In schema order.
};

/// Writes record batches of one flat schema to a Parquet file: data pages v1, PLAIN values,
/// RLE/bit-packed definition levels for nullable fields, one codec for all pages, column chunk
/// statistics and TypeDefinedOrder column orders in the footer.
///
/// Types: bool -> BOOLEAN, int64 -> INT64, float64 -> DOUBLE, string -> BYTE_ARRAY (STRING),
/// timestamp -> INT64 (TIMESTAMP(isAdjustedToUTC=true, MICROS)). Nullable fields are OPTIONAL,
/// the others REQUIRED. Event times and key hashes of the batches are not written.
///
/// Rows are buffered in memory, encoded and compressed, until their row group is full; then
/// the row group is written to the file. Not thread-safe. After an error every further call
/// fails; the partial file is left for the caller to remove.
class parquet_writer {
 public:
  /// Creates (or truncates) `path` and writes the file's leading magic. Fails with
  /// invalid_argument for bad options or a schema Parquet cannot hold (no fields, an empty or
  /// duplicate field name), with io_error if the file cannot be created.
  static result<std::unique_ptr<parquet_writer>> open(const std::string& path, schema_ptr schema,
                                                      parquet_writer_options options);

  ~parquet_writer();
  parquet_writer(const parquet_writer&) = delete;
  parquet_writer& operator=(const parquet_writer&) = delete;

  /// Appends the rows of `batch`, whose schema must equal the writer's. May write a row group.
  status write(const record_batch& batch);

  /// Writes the last row group and the footer, fsyncs and closes the file.
  result<parquet_file_info> close();

  /// Rows written so far, including buffered ones.
  int64_t num_rows() const { return num_rows_; }

 private:
  struct page_compressor;
  struct column_writer;
  struct row_group_meta;

  parquet_writer(std::string path, int fd, schema_ptr schema, parquet_writer_options options);

  status flush_row_group();
  size_t buffered_bytes() const;
  status write_all(const std::string& bytes);
  std::string encode_footer() const;
  status fail(error err);

  std::string path_;
  int fd_ = -1;
  schema_ptr schema_;
  parquet_writer_options options_;
  std::unique_ptr<page_compressor> compressor_;
  std::vector<std::unique_ptr<column_writer>> columns_;
  std::vector<row_group_meta> row_groups_;
  uint64_t offset_ = 0;  ///< Bytes written to the file so far.
  int64_t num_rows_ = 0;
  int64_t row_group_rows_ = 0;  ///< Rows buffered for the current row group.
  bool failed_ = false;
  bool closed_ = false;
};

}  // namespace vigil::lake
