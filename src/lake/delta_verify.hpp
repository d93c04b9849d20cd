#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lake/delta_log.hpp"

namespace vigil::lake {

/// What verify_delta_table() found.
struct delta_verify_report {
  int64_t version = -1;  ///< The latest version, or -1 if the log could not be replayed.
  size_t live_files = 0;
  std::vector<std::string> problems;  ///< Empty if the table is sound.
};

/// Checks a table: the log replays (contiguous versions from 0, well-formed commits, a
/// protocol Vigil reads), every remove names a live file, every live file has partitionValues
/// for exactly the partition columns and readable stats, exists under the table root and has
/// the size the log records.
delta_verify_report verify_delta_table(const std::string& table);

/// The numRecords of an add's stats, if the stats hold one.
std::optional<int64_t> delta_num_records(const delta_add& add);

/// The local file of a live data file: `table`/path for a relative path, the path of a
/// file:// URI; nothing for other absolute URIs.
std::optional<std::string> delta_local_path(const std::string& table, const std::string& path);

}  // namespace vigil::lake
