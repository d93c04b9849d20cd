#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/types.hpp"
#include "lake/parquet_writer.hpp"

namespace vigil::lake {

/// The reader and writer protocol versions Vigil implements: {minReaderVersion: 1,
/// minWriterVersion: 2}, no table features.
inline constexpr int delta_reader_version = 1;
inline constexpr int delta_writer_version = 2;

/// A partition column's value as stored in `partitionValues`: a string, or null.
using delta_partition_values = std::map<std::string, std::optional<std::string>>;

/// The `protocol` action.
struct delta_protocol {
  int min_reader_version = delta_reader_version;
  int min_writer_version = delta_writer_version;
};

/// One top-level column of a table's `schemaString`, with its Delta type name ("long",
/// "string", ... or the JSON text of a nested type).
struct delta_column {
  std::string name;
  std::string type;
  bool nullable = true;
  /// The column's metadata has a `delta.invariants` constraint (writer version 2), which
  /// Vigil cannot evaluate, so it does not write to such a table.
  bool has_invariants = false;
};

/// The `metaData` action.
struct delta_metadata {
  std::string id;
  std::string provider = "parquet";
  std::string schema_string;
  std::vector<delta_column> columns;  ///< schema_string, parsed.
  /// The columns as a Vigil schema; null if a column has a type Vigil has no equivalent for.
  schema_ptr schema;
  std::vector<std::string> partition_columns;
  std::map<std::string, std::string> configuration;
  std::optional<int64_t> created_time_ms;
};

/// The `add` action. `path` is the file's path relative to the table root, decoded (the log
/// stores it URI-encoded).
struct delta_add {
  std::string path;
  delta_partition_values partition_values;
  int64_t size = 0;
  int64_t modification_time_ms = 0;
  bool data_change = true;
  std::string stats;  ///< The JSON text of the statistics, or empty for none.
};

/// The `remove` action; `path` decoded like delta_add::path.
struct delta_remove {
  std::string path;
  std::optional<int64_t> deletion_timestamp_ms;
  bool data_change = true;
  std::optional<delta_partition_values> partition_values;
  std::optional<int64_t> size;
};

/// The `txn` action: how far application `app_id` has written into the table.
struct delta_txn {
  std::string app_id;
  int64_t version = 0;
  std::optional<int64_t> last_updated_ms;
};

/// The `commitInfo` action of one version (free-form; `raw` is null if the version has none).
struct delta_commit_info {
  int64_t version = 0;
  std::optional<int64_t> timestamp_ms;
  std::string operation;
  nlohmann::json raw;
};

/// Spark's schemaString of `s`: {"type":"struct","fields":[{"name","type","nullable",
/// "metadata":{}}...]} with types boolean, long, double, string, timestamp.
std::string delta_schema_string(const schema& s);

/// Parses a schemaString. Fails with parse_error if it is not a struct of named fields.
/// Columns of types Vigil lacks are kept in `columns`, and then `schema` is null.
status parse_delta_schema(const std::string& schema_string, std::vector<delta_column>& columns,
                          schema_ptr& schema);

/// The Delta type name of a Vigil type: boolean, long, double, string, timestamp.
const char* delta_type_name(type_id type);

/// µs since the epoch as Spark writes timestamps in statistics: "YYYY-MM-DDTHH:MM:SS.mmmZ",
/// truncated down to the millisecond. Nothing outside the years 0001-9999.
std::optional<std::string> delta_stats_timestamp(int64_t us);

/// The `stats` JSON text of a data file: numRecords, and minValues, maxValues, nullCount for
/// each column of `info` that is not a partition column. Timestamps as
/// delta_stats_timestamp(); strings longer than 32 code points have their minimum cut to that
/// prefix and no maximum; no minimum or maximum for booleans, for doubles with NaN or an
/// infinite bound, or for columns without a non-null value.
std::string delta_stats_json(const parquet_file_info& info,
                             const std::vector<std::string>& partition_columns);

/// Percent-encodes a relative file path for the log (RFC 2396): every byte but letters,
/// digits, "-_.~/=" becomes %XX.
std::string delta_encode_path(std::string_view path);

/// Decodes %XX escapes; fails with parse_error on a bad escape.
result<std::string> delta_decode_path(std::string_view path);

/// The Hive-style directory of a partition, "col=value/..." with the trailing slash, empty
/// for no partition columns. Values are escaped as Spark does (%XX for control characters and
/// "\"#%'*/:=?\\{[]^"); a null value is written as __HIVE_DEFAULT_PARTITION__.
std::string delta_partition_dir(const std::vector<std::string>& partition_columns,
                                const delta_partition_values& values);

/// A random (version 4) UUID in its 36-character text form.
std::string make_uuid();

}  // namespace vigil::lake
