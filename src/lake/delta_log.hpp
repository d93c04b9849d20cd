#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/types.hpp"
#include "lake/delta_types.hpp"
#include "lake/parquet_writer.hpp"

namespace vigil::lake {

/// A remove action that named no live file (legal, but worth reporting).
struct delta_unmatched_remove {
  int64_t version = 0;
  std::string path;
};

/// The table's state at one version, from replaying its commits 0..version.
struct delta_snapshot {
  int64_t version = -1;
  delta_protocol protocol;
  delta_metadata metadata;
  std::map<std::string, delta_add> files;  ///< Live data files by decoded path.
  /// The latest txn of each application, and the version that committed it.
  std::map<std::string, std::pair<delta_txn, int64_t>> txns;
  std::vector<delta_commit_info> commits;  ///< One per version, index = version.
  std::vector<delta_unmatched_remove> unmatched_removes;

  /// The latest txn version of `app_id`, if it has written to the table.
  std::optional<int64_t> txn_version(const std::string& app_id) const;
};

/// `<table>/_delta_log`.
std::string delta_log_dir(const std::string& table);

/// The commit file of `version`: `<table>/_delta_log/` and 20 zero-padded digits, ".json".
std::string delta_commit_path(const std::string& table, int64_t version);

/// Replays the JSON commits of `table` from version 0 up to `version` (default: the latest).
/// Fails with not_found if the table has no commit, invalid_argument if reading it needs a
/// checkpoint (version 0 is gone) or a protocol or feature Vigil lacks, or if `version` is
/// beyond the latest, and parse_error (naming file and line) for a malformed commit, an action
/// Vigil does not know, or a gap in the versions.
result<delta_snapshot> read_delta_snapshot(const std::string& table,
                                           std::optional<int64_t> version = std::nullopt);

/// How a table is created.
struct delta_create_options {
  std::vector<std::string> partition_columns;  ///< Each must be a column of the schema.
  std::map<std::string, std::string> configuration;
  std::string name;         ///< Written as metaData.name unless empty.
  std::string description;  ///< Written as metaData.description unless empty.
};

/// What to commit: file actions, an optional application transaction and the provenance.
struct delta_commit_request {
  std::vector<delta_add> adds;
  std::vector<delta_remove> removes;
  std::optional<delta_txn> txn;     ///< lastUpdated is set at commit time.
  std::string operation = "WRITE";  ///< Or "STREAMING UPDATE".
  nlohmann::json operation_parameters = nlohmann::json::object();
  /// Caller lineage (job id, graph version, checkpoint id, source offsets...), written as
  /// commitInfo.lineage. Must be a JSON object.
  nlohmann::json lineage = nlohmann::json::object();
};

/// How a commit ended.
struct delta_commit_result {
  /// False if the request's txn (or a later one of its application) was already in the table,
  /// so nothing was written.
  bool committed = false;
  /// The version written, or the version holding the txn that made this one a duplicate.
  int64_t version = -1;
  int attempts = 0;  ///< Versions tried (0 if skipped before trying).
};

/// A writer of one Delta table: keeps the latest snapshot and appends commits put-if-absent
/// (temp file, fsync, link() to the version's name, fsync of the directory), so a version is
/// never overwritten. A commit first reads the commits newer than the snapshot; it fails if
/// they changed the metadata since the snapshot (the caller wrote its files for that one) or
/// removed a file it removes, skips if they hold its txn, and else writes the next version;
/// losing that race repeats these checks at the following version. Not thread-safe; use one
/// object per thread or process.
class delta_log {
 public:
  /// Attempts at successive versions before a commit gives up with resource_exhausted.
  static constexpr int max_commit_attempts = 32;

  /// Creates the table (version 0: protocol, metaData, commitInfo). Fails with
  /// invalid_argument if the table already exists or the schema cannot be written.
  static result<delta_log> create(const std::string& table, const schema& s,
                                  const delta_create_options& options);

  /// Opens an existing table at its latest version.
  static result<delta_log> open(const std::string& table);

  /// Opens the table, or creates it if it has no version 0 yet. An existing table must have
  /// the same columns and partition columns.
  static result<delta_log> open_or_create(const std::string& table, const schema& s,
                                          const delta_create_options& options);

  const std::string& table() const { return table_; }
  const delta_snapshot& snapshot() const { return snapshot_; }

  /// Replays the commits written since the snapshot, accepting any metadata change in them.
  status refresh();

  /// Commits the request at the next free version (see the class comment). Paths are
  /// relative to the table root, with no empty or ".." component and none starting with '_'
  /// or '.' (hidden); removes must name live files; partitionValues must name exactly the
  /// partition columns. Writes nothing to a table with delta.invariants, nor removes from a
  /// delta.appendOnly one. An I/O error after the link() (the directory fsync) is reported
  /// although the version is in the log; a retry with the same txn then skips.
  result<delta_commit_result> commit(const delta_commit_request& request);

  /// An add action for a data file written under the table root: size and modification time
  /// from the file system, stats from `info`.
  result<delta_add> describe_file(const std::string& relative_path, const parquet_file_info& info,
                                  delta_partition_values partition_values = {}) const;

 private:
  delta_log(std::string table, delta_snapshot snapshot)
      : table_(std::move(table)), snapshot_(std::move(snapshot)) {}

  status check_request(const delta_commit_request& request) const;

  std::string table_;
  delta_snapshot snapshot_;
};

}  // namespace vigil::lake
