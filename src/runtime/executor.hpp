#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "runtime/checkpoint_coordinator.hpp"
#include "runtime/job_plan.hpp"

namespace vigil {

/// What one node did in a run, summed over its subtasks.
struct node_summary {
  std::string id;
  std::string op;
  uint32_t parallelism = 1;
  uint64_t records_in = 0;
  std::vector<std::pair<std::string, uint64_t>> rows_out;  ///< Per output port.
  uint64_t late_records = 0;
  uint64_t dropped_records = 0;  ///< Discarded by design: duplicates, unmatched join rows.
};

struct job_summary {
  std::string name;
  double seconds = 0;
  std::vector<node_summary> nodes;
  checkpoint_summary checkpoints;
};

struct subtask_stats;

/// A summary with every node of `plan` and zero counts.
job_summary empty_summary(const job_plan& plan);
/// Adds what one subtask reported when it finished.
void add_stats(job_summary& summary, const subtask_stats& stats);

struct run_options {
  /// Parent directory for the subtasks' RocksDB state (one directory per subtask below it).
  std::string state_dir;
  /// Worker threads of the actor system; 0 = one per core.
  size_t threads = 0;
  /// When set to true from another thread (e.g. a signal handler), the job is cancelled.
  const std::atomic<bool>* cancel = nullptr;
  /// The job's checkpoint storage (docs/design/0006-checkpoints.md); required when the graph
  /// sets checkpoints.interval_ms.
  std::string checkpoint_dir;
  /// Start from complete checkpoint `restore_id` (> 0) of the checkpoint storage at
  /// `restore_dir`: keyed state and source positions as they were; same node ids and
  /// parallelism required.
  std::string restore_dir;
  int64_t restore_id = 0;
};

/// Runs a planned job in this process: one CAF actor per subtask, wired with credit-based
/// channels. Returns when every subtask has finished (bounded sources) or on the first failure,
/// which names the node.
result<job_summary> run_local(const job_plan& plan, const run_options& opts);

}  // namespace vigil
