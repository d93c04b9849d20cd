#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.hpp"
#include "common/key.hpp"
#include "common/record_batch.hpp"
#include "common/result.hpp"
#include "common/types.hpp"

/// The operator API: the only thing the runtime knows of operators. Operators live in
/// operators/ and register by name in an operator_registry; the runtime never includes one.
///
/// Life of a node: at validation, its operator_factory::plan() checks the config against the
/// input streams and returns an operator_plan (output streams, parsed expressions). At run time
/// every subtask calls plan->instantiate() and drives the instance from one CAF actor, so an
/// operator instance is only ever called from one thread at a time and needs no locking.

namespace vigil {

class state_backend;
class timer_service;

inline constexpr int64_t min_watermark = std::numeric_limits<int64_t>::min();
inline constexpr int64_t max_watermark = std::numeric_limits<int64_t>::max();

/// A stream as operators see it at planning time: its schema and, for keyed streams, the indices
/// of the key fields in the schema.
struct stream_info {
  schema_ptr schema;
  std::vector<int> key_fields;

  bool keyed() const { return !key_fields.empty(); }
};

/// What plan() gets: the node's config and the streams on its input ports.
struct plan_context {
  std::string node_id;
  const config_map* config = nullptr;
  /// One per input port in traits().input_ports order; for a variadic port, one per edge.
  std::vector<stream_info> inputs;
  uint32_t parallelism = 1;
  uint32_t max_parallelism = 128;
  int64_t allowed_lateness_us = 0;  ///< The graph's default; operators may override in config.
  /// The node's declared output schema (YAML `schema:`), or null. Sources that read files take
  /// their record schema from it; the validator checks it against outputs[0] for the others.
  schema_ptr declared_output;
};

class operator_base;

/// A node checked and prepared once, shared read-only by all its subtasks.
class operator_plan {
 public:
  virtual ~operator_plan() = default;

  /// One per output port, in traits().output_ports order.
  std::vector<stream_info> outputs;

  virtual std::unique_ptr<operator_base> instantiate() const = 0;
};

using plan_ptr = std::shared_ptr<const operator_plan>;

struct operator_traits {
  std::string name;
  std::vector<std::string> input_ports;   ///< Empty for sources; usually {"in"}.
  bool variadic_input = false;            ///< The single input port takes any number of edges.
  std::vector<std::string> output_ports;  ///< Empty for sinks; e.g. {"out", "late"}.
  bool keyed = false;                     ///< Requires keyed inputs (after key_by, hash edges).
  bool stateful = false;                  ///< Needs a state backend and timers.
  std::string summary;                    ///< One line, for `vigil operators` and the docs.
};

class operator_factory {
 public:
  virtual ~operator_factory() = default;
  virtual const operator_traits& traits() const = 0;
  /// Checks the config (use config_reader; errors as "config.<key>: ...") and the input streams,
  /// and returns the plan. Must not touch files or the network.
  virtual result<plan_ptr> plan(const plan_context& ctx) const = 0;
};

/// The named operators a job graph can use.
class operator_registry {
 public:
  void add(std::unique_ptr<operator_factory> factory);
  const operator_factory* find(std::string_view name) const;
  const std::vector<std::unique_ptr<operator_factory>>& all() const { return factories_; }

 private:
  std::vector<std::unique_ptr<operator_factory>> factories_;
};

/// Where an operator sends its output. Batches may have any size; the runtime re-batches for
/// partitioned edges.
class output {
 public:
  virtual ~output() = default;
  /// Sends `batch` (non-empty) on output port `port` (index into traits().output_ports).
  virtual void emit(size_t port, batch_ptr batch) = 0;
};

/// What a running operator instance knows of its surroundings. Owned by the runtime.
struct operator_context {
  std::string job_name;  ///< The graph's name (stable across restarts of the job).
  /// The job's id: the cluster's job id, or the graph's name for a job run in this process
  /// (`vigil run` without `--workers`).
  std::string job_id;
  /// A content hash of the job's graph as submitted (job_plan::graph_version): equal for the
  /// same graph across restarts of the job and of the coordinator.
  std::string graph_version;
  std::string node_id;
  uint32_t subtask_index = 0;
  uint32_t parallelism = 1;
  uint32_t max_parallelism = 128;
  /// When restored: the node's parallelism in the checkpoint (restore_state() is then called
  /// once per old subtask with state, in subtask order, if it differs from `parallelism`);
  /// 0 when starting empty.
  uint32_t restored_parallelism = 0;
  /// When restored: the id of the checkpoint restored from, else 0.
  int64_t restored_checkpoint_id = 0;
  /// When restored: the source positions of that checkpoint, `{"<node id>": [<position of
  /// subtask 0>, ...]}` (see operator_base::position_json); empty when unknown.
  std::string restored_sources_json;
  key_group_range key_groups;
  size_t batch_size = 1024;
  state_backend* state = nullptr;     ///< Set for stateful operators, else null.
  timer_service* timers = nullptr;    ///< Set for stateful operators, else null.
  int64_t watermark = min_watermark;  ///< The current input watermark (µs).
  uint64_t late_records = 0;          ///< Operators add the late records they divert here.
  /// Records an operator discards by design (duplicates, unmatched inner-join rows); shown in
  /// the run summary so that nothing disappears without a count.
  uint64_t dropped_records = 0;
  /// Sources: asks the runtime to poll again now rather than after the retry_after_us of the
  /// last no_data poll, e.g. when a client library signals that data arrived. Thread-safe: may
  /// be called from any thread, also after the subtask ended (then it does nothing). Empty when
  /// the runtime offers no wake-ups (operator tests); sources must then rely on polling.
  std::function<void()> wakeup;

  /// Processing time, µs since the epoch.
  static int64_t now_us();
};

/// A fired timer. `key` is the encoded key (see encode_key); the state's current key is set to
/// it before on_timer() is called.
struct timer {
  int64_t time = 0;
  uint32_t key_group = 0;
  std::string_view key;
  int64_t ns = 0;  ///< Operator-defined namespace, e.g. a window's end.
};

/// What a source's poll() reports.
struct poll_result {
  enum class state {
    more,       ///< Produced output or has more; poll again as soon as there is credit.
    throttled,  ///< Rate limited: poll again after retry_after_us.
    no_data,    ///< Nothing available now: poll again after retry_after_us. After the graph's
                ///< idle timeout without data, the runtime marks the source's outputs idle.
    finished,   ///< Bounded input ended; the runtime sends end-of-stream.
  };
  state st = state::more;
  int64_t retry_after_us = 0;
  int64_t watermark = min_watermark;  ///< The source's watermark after this poll.
};

class operator_base {
 public:
  virtual ~operator_base() = default;

  /// Called once before anything else. May open files; an error fails the job.
  virtual status open(operator_context& ctx) {
    (void)ctx;
    return {};
  }
  /// One batch from input port `port`. For a variadic port, `port` is 0 for every edge.
  virtual void process(size_t port, const record_batch& batch, output& out) {
    (void)port, (void)batch, (void)out;
  }
  /// What the runtime calls for each input batch: process() with the batch's shared owner.
  /// Batches are immutable once emitted, so an operator that passes a batch on unchanged (a
  /// union, a dedup that drops nothing) overrides this to emit `batch` itself instead of a
  /// copy. The default calls process(port, *batch, out).
  virtual void process_shared(size_t port, const batch_ptr& batch, output& out) {
    process(port, *batch, out);
  }
  /// An event-time or processing-time timer fired.
  virtual void on_timer(const timer& t, output& out) { (void)t, (void)out; }
  /// The input watermark advanced to `wm` (ctx.watermark is already `wm`); due event-time timers
  /// have fired before this call.
  virtual void on_watermark(int64_t wm, output& out) { (void)wm, (void)out; }
  /// Sources only: produce at most ctx.batch_size records.
  virtual poll_result poll(output& out) {
    (void)out;
    return {poll_result::state::finished};
  }
  /// Every input ended (watermark max_watermark was delivered first). Emit what remains and
  /// release resources; nothing is called after this.
  virtual status close(output& out) {
    (void)out;
    return {};
  }

  // Checkpoints (docs/design/0006-checkpoints.md). Keyed state in ctx.state and timers are
  // snapshotted by the runtime; these hooks cover what an operator keeps elsewhere.

  /// The operator's non-keyed state (e.g. a source's read position) for checkpoint `id`,
  /// taken at the barrier: after everything before it was processed, before anything after.
  virtual std::string snapshot_state(int64_t checkpoint_id) {
    (void)checkpoint_id;
    return {};
  }
  /// Restores what snapshot_state() returned, after open() and before any input or poll.
  /// An error (e.g. bytes this version cannot read) fails the job.
  virtual status restore_state(std::string_view bytes) {
    (void)bytes;
    return {};
  }
  /// Sources: their read position as of the last snapshot_state(), as a small JSON object (e.g.
  /// a Kafka source's next offset per partition). The runtime calls it right after
  /// snapshot_state() and records it in the checkpoint's metadata (lineage, not state: restores
  /// use snapshot_state()). Empty: no position to report.
  virtual std::string position_json() const { return {}; }
  /// Checkpoint `id` is complete on every subtask: output held back for it may become visible.
  /// `sources_json` holds the checkpoint's source positions, `{"<node id>": [<position of
  /// subtask 0>, ...]}` ("{}" when no source reported one). An error fails the subtask at once,
  /// and the job's restart strategy takes over.
  virtual status notify_checkpoint_complete(int64_t checkpoint_id, std::string_view sources_json) {
    (void)checkpoint_id, (void)sources_json;
    return {};
  }
};

}  // namespace vigil
