#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace vigil {

/// What storing one subtask's snapshot cost.
struct snapshot_stats {
  uint64_t files = 0;         ///< Files the snapshot consists of.
  uint64_t files_copied = 0;  ///< New files copied (the others were already in storage).
  uint64_t bytes = 0;         ///< Size of the snapshot.
  uint64_t bytes_copied = 0;  ///< Bytes copied for it.
};

/// A job's checkpoint storage: a directory (local disk in tests, a shared volume in
/// Kubernetes) holding incremental RocksDB snapshots of every stateful subtask and the
/// operator state of the others. Layout:
///
///   <root>/shared/<subtask>/<db identity>-<number>.sst   immutable SST files, copied once
///   <root>/chk-<id>/<subtask>/                           one subtask's snapshot:
///       CURRENT, MANIFEST-*, OPTIONS-*                   RocksDB's small files, copied
///       VIGIL-STATE-DELTA, VIGIL-WATERMARK               the cache delta, the input watermark
///       SHARED                                           the shared SSTs it uses, one per line
///       operator_state                                   non-keyed operator state, if any
///   <root>/chk-<id>/_metadata                            written last: the checkpoint is complete
///
/// SST files never change once written and carry the RocksDB instance's identity in their
/// stored name, so a file already in shared/ is referenced, not copied again. Subtasks store
/// concurrently (each in its own directories); complete(), retain() and abandon() are the
/// checkpoint coordinator's. Every file is written to a temporary name, fsynced and renamed.
/// See docs/design/0006-checkpoints.md.
class checkpoint_storage {
 public:
  explicit checkpoint_storage(std::filesystem::path root) : root_(std::move(root)) {}

  /// Stores a RocksDB checkpoint directory (state_backend::checkpoint_to) of the instance
  /// `identity` as `subtask`'s part of checkpoint `id`, then removes that directory.
  result<snapshot_stats> store_state(int64_t id, const std::string& subtask,
                                     const std::filesystem::path& rocksdb_checkpoint,
                                     std::string_view identity);
  /// Stores non-keyed operator state (e.g. a source's position) of `subtask`.
  status store_operator_state(int64_t id, const std::string& subtask, std::string_view bytes);

  /// Marks checkpoint `id` complete by writing its _metadata file atomically.
  status complete(int64_t id, std::string_view metadata);
  /// Removes an incomplete checkpoint's directory (a timed-out or declined checkpoint).
  void abandon(int64_t id);
  /// Keeps the newest `keep` complete checkpoints: deletes older checkpoint directories
  /// (complete or not) and every shared file no remaining checkpoint refers to. Call it only
  /// while no checkpoint is in progress.
  status retain(size_t keep);

  /// Rebuilds `subtask`'s RocksDB directory of checkpoint `id` in `target` (which must not
  /// exist): its shared SST files under their original names plus its small files. Returns
  /// false when the checkpoint holds no RocksDB state for `subtask`.
  result<bool> restore_state(int64_t id, const std::string& subtask,
                             const std::filesystem::path& target) const;
  /// `subtask`'s operator state in checkpoint `id`; empty if it stored none.
  result<std::string> operator_state(int64_t id, const std::string& subtask) const;

  /// The parallelism of every node and the max parallelism (key groups) of the job when it
  /// took complete checkpoint `id`, from its metadata; for a restore with a new parallelism.
  struct job_shape {
    uint32_t max_parallelism = 0;
    std::map<std::string, uint32_t> parallelism;  ///< By node id.
  };
  result<job_shape> shape(int64_t id) const;
  /// The source positions recorded in complete checkpoint `id`'s metadata, `{"<node id>":
  /// [<position of subtask 0>, ...]}` as compact JSON; empty if it recorded none.
  result<std::string> source_positions(int64_t id) const;

  /// Copies complete checkpoint `id` with every shared file it uses into `target` (which must
  /// not exist), in the same layout, _metadata last: a savepoint, a storage of its own that
  /// retention in this one never touches.
  status export_checkpoint(int64_t id, const std::filesystem::path& target) const;

  /// Ids of the complete checkpoints, oldest first.
  std::vector<int64_t> completed() const;
  /// The highest checkpoint id with a directory, complete or not; 0 if none.
  int64_t highest_id() const;
  /// The shared SST files `subtask` uses in checkpoint `id` (names relative to shared/).
  result<std::vector<std::string>> shared_files(int64_t id, const std::string& subtask) const;

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path checkpoint_dir(int64_t id) const;

 private:
  std::filesystem::path root_;
};

}  // namespace vigil
