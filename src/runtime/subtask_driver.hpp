#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "runtime/checkpoint_storage.hpp"
#include "runtime/operator.hpp"
#include "runtime/state_backend.hpp"
#include "runtime/timer_service.hpp"

namespace vigil {

/// Drives one operator instance: owns it, its context, state backend and timers, and applies the
/// event order every subtask follows (process batches; on a watermark, fire due event-time
/// timers, then on_watermark; at the end, watermark max then close). Knows nothing of actors:
/// the subtask actor wraps it, and operator tests use it directly.
class subtask_driver {
 public:
  struct options {
    std::string job_name;
    std::string job_id;         ///< operator_context::job_id.
    std::string graph_version;  ///< operator_context::graph_version.
    std::string node_id;
    uint32_t subtask_index = 0;
    uint32_t parallelism = 1;
    uint32_t max_parallelism = 128;
    size_t batch_size = 1024;
    /// Directory for this subtask's RocksDB state; used only by stateful operators.
    std::string state_dir;
    /// Restore from checkpoint `restore_id` of `restore_from` (0: start empty).
    const checkpoint_storage* restore_from = nullptr;
    int64_t restore_id = 0;
    /// operator_context::wakeup, set before the operator opens.
    std::function<void()> wakeup;
  };

  static result<std::unique_ptr<subtask_driver>> make(const operator_factory& factory,
                                                      const operator_plan& plan,
                                                      const options& opts, output& out);

  void process(size_t port, const batch_ptr& batch);
  /// Moves the input watermark forward (a smaller value is ignored).
  void advance_watermark(int64_t wm);
  /// Fires processing-time timers due at `now_us` (the actor calls it every linger interval
  /// while any are pending).
  void advance_processing_time(int64_t now_us);
  /// True while a processing-time timer is pending.
  bool has_processing_timers() const {
    return timers_ && timers_->next(timer_service::domain::processing_time).has_value();
  }
  poll_result poll();
  /// Delivers watermark max and closes the operator.
  status finish();

  /// This subtask's part of checkpoint `id`: the operator's non-keyed state and, for a stateful
  /// operator, an incremental RocksDB snapshot (flushed, hard-linked next to the state
  /// directory, then copied to `storage` under `subtask_key`) with the input watermark beside it.
  /// A restore starts the operator at that watermark (the lowest of the snapshots it merges when
  /// rescaling): what was late before the snapshot stays late and expired TTL state stays
  /// expired, as in the run that took it.
  result<snapshot_stats> snapshot(int64_t id, checkpoint_storage& storage,
                                  const std::string& subtask_key);
  /// Checkpoint `id` is complete; `sources_json` are its source positions. An error means the
  /// subtask must fail.
  status checkpoint_complete(int64_t id, std::string_view sources_json) {
    return op_->notify_checkpoint_complete(id, sources_json);
  }

  operator_context& context() { return ctx_; }
  operator_base& op() { return *op_; }

 private:
  subtask_driver(output& out) : out_(out) {}

  output& out_;
  std::string state_dir_;
  operator_context ctx_;
  std::unique_ptr<state_backend> state_;
  std::unique_ptr<timer_service> timers_;
  std::unique_ptr<operator_base> op_;
};

}  // namespace vigil
