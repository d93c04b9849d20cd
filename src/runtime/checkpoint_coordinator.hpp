#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "metrics/job_metrics.hpp"
#include "runtime/checkpoint_storage.hpp"
#include "runtime/job_plan.hpp"
#include "runtime/messages.hpp"

namespace vigil {

/// What the checkpoints of a run did, for the run summary and tests.
struct checkpoint_summary {
  int64_t last_completed = 0;  ///< Id of the newest complete checkpoint; 0 if none.
  uint64_t completed = 0;
  uint64_t failed = 0;  ///< Declined or timed out.
  uint64_t bytes_copied = 0;
  uint64_t last_bytes = 0;   ///< Size of the newest complete checkpoint.
  std::string last_failure;  ///< Why the newest failed checkpoint failed; empty if none.
};

/// Drives a job's periodic aligned checkpoints, independent of transport: the local executor
/// and the cluster's job master feed it acknowledgements and call tick(); it triggers the
/// sources, completes a checkpoint once every live subtask acknowledged it (metadata written
/// atomically, retention applied, subtasks notified), abandons one that timed out, and fails
/// the job after more consecutive failures than the plan tolerates. One checkpoint at a time.
class checkpoint_coordinator {
 public:
  /// `trigger(id)` sends the trigger to every live source subtask; `notify(id, sources)` tells
  /// every live subtask that checkpoint `id` is complete, with the source positions the source
  /// subtasks acknowledged it with (`{"<node id>": [<position of subtask 0>, ...]}`, also in
  /// the checkpoint's _metadata as "sources"). Completions and failures are counted in
  /// `metrics` (the job's series, kept across restarts by the caller), or, when it is null, in
  /// series of its own labelled with the plan's name.
  checkpoint_coordinator(const job_plan& plan, std::shared_ptr<checkpoint_storage> storage,
                         std::function<void(int64_t)> trigger,
                         std::function<void(int64_t, const std::string&)> notify,
                         std::shared_ptr<metrics::job_metrics> metrics = nullptr);

  /// Starts the first checkpoint one interval after `now_us`. A job restored from checkpoint
  /// `restored_id` (perhaps a savepoint in other storage) numbers its checkpoints above it, so
  /// that sinks keyed by checkpoint id (lake_sink's txn versions, kafka_sink's epochs) see
  /// their ids grow across the restore.
  void start(int64_t now_us, int64_t restored_id = 0);
  /// Triggers a due checkpoint or abandons a timed-out one. An error means the job must fail.
  status tick(int64_t now_us);
  status on_ack(const checkpoint_ack& ack, int64_t now_us);
  status on_decline(int64_t id, size_t node, uint32_t subtask, const std::string& reason,
                    int64_t now_us);
  /// A subtask finished: no further checkpoint is taken (a checkpoint without the state of a
  /// finished subtask would restart it from nothing), and one in progress that it had not yet
  /// acknowledged is abandoned (not counted as a failure). The job is draining.
  status on_finished(size_t node, uint32_t subtask, int64_t now_us);

  /// Takes a checkpoint as soon as possible (after the one in progress, if any), e.g. for a
  /// savepoint.
  void request(int64_t now_us);
  /// A subtask finished: no further checkpoint will be taken.
  bool draining() const { return draining_; }
  /// The id the next checkpoint triggered will have.
  int64_t next_id() const { return next_id_; }

  const checkpoint_summary& summary() const { return summary_; }
  int64_t in_progress() const { return current_; }

 private:
  status complete(int64_t now_us);
  status failure(const std::string& why, int64_t now_us);

  const job_plan& plan_;
  std::shared_ptr<checkpoint_storage> storage_;
  std::function<void(int64_t)> trigger_;
  std::function<void(int64_t, const std::string&)> notify_;
  std::set<std::pair<size_t, uint32_t>> live_;     ///< Subtasks not finished.
  std::set<std::pair<size_t, uint32_t>> pending_;  ///< Not yet acknowledged the current one.
  std::vector<checkpoint_ack> acks_;
  int64_t next_id_ = 1;
  int64_t current_ = 0;  ///< In progress; 0 if none.
  int64_t started_us_ = 0;
  int64_t next_due_us_ = 0;
  uint32_t consecutive_failures_ = 0;
  bool requested_ = false;  ///< request() asked for a checkpoint not yet triggered.
  bool draining_ = false;   ///< A subtask finished: no more checkpoints.
  checkpoint_summary summary_;
  std::shared_ptr<metrics::job_metrics> metrics_;
};

}  // namespace vigil
