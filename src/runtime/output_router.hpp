#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "runtime/job_plan.hpp"
#include "runtime/operator.hpp"

namespace vigil {

/// What travels on a channel, in order: batches (each costs one credit) and control items
/// (watermark, idle, end of stream) that cost none but never overtake a queued batch.
struct channel_item {
  enum class kind : uint8_t { batch, watermark, idle, eos, barrier };
  kind k = kind::batch;
  batch_ptr batch;
  int64_t watermark = 0;  ///< The watermark, or a barrier's checkpoint id.
};

/// Delivers channel items to the subtask at the other end (a CAF send in the runtime, a vector
/// in tests).
class channel_transport {
 public:
  virtual ~channel_transport() = default;
  virtual void deliver(size_t channel, channel_item item) = 0;
};

/// The output side of a subtask: partitions what the operator emits onto the channels to the
/// downstream subtasks, with credit-based flow control. A channel sends a batch only while it
/// holds credit; otherwise the batch waits in the channel's queue until the receiver grants more.
/// While any queue is non-empty the router is blocked: the subtask then stops granting credit
/// to its own inputs (and a source stops polling), so backpressure reaches the sources.
/// In flight per channel: at most `credits` batches. Queued per channel: what the operator
/// emitted since the channel ran out of credit, which is bounded by the output of the input
/// batches already in the mailbox (at most credits per input) and of one watermark or close;
/// emit() itself never refuses, so a watermark that fires many windows queues all their rows.
///
/// Hash edges re-batch rows per target subtask by key group; partial batches go out on
/// flush_partial() (the linger tick) and before every watermark, idle marker or end of stream.
class output_router final : public output {
 public:
  struct edge {
    size_t port = 0;  ///< The operator's output port.
    partitioning part = partitioning::forward;
    std::vector<size_t> channels;  ///< One per downstream subtask, in subtask order.
  };

  output_router(channel_transport& transport, std::vector<edge> edges, size_t num_channels,
                uint32_t subtask_index, uint32_t max_parallelism, size_t batch_size,
                size_t num_ports);

  void emit(size_t port, batch_ptr batch) override;

  /// The receiver of `channel` granted `n` more credits; sends what was waiting.
  void add_credit(size_t channel, uint32_t n);
  /// Sends out partially filled hash batches.
  void flush_partial();
  void broadcast_watermark(int64_t wm);
  void broadcast_idle();
  void broadcast_eos();
  /// The checkpoint barrier `id`, behind everything emitted before it on every channel.
  void broadcast_barrier(int64_t id);

  bool blocked() const { return queued_ > 0; }
  /// True when a hash edge may hold rows in a partially filled batch: flush_partial() or the
  /// next control item sends them.
  bool has_partial() const { return partial_; }
  /// Rows emitted on each output port so far.
  const std::vector<uint64_t>& rows_out() const { return rows_out_; }
  /// Payload bytes emitted on all ports so far (metrics::batch_payload_bytes of each batch).
  uint64_t bytes_out() const { return bytes_out_; }

 private:
  struct channel_state {
    uint32_t credits = 0;
    std::deque<channel_item> queue;
  };
  struct hash_edge_state {
    std::vector<batch_builder> builders;  ///< One per downstream subtask.
    std::vector<std::vector<uint32_t>> selection;
  };

  void enqueue(size_t ch, channel_item item);
  void broadcast_control(channel_item::kind k, int64_t wm);
  void route_hash(size_t edge_index, const batch_ptr& batch);

  channel_transport& transport_;
  std::vector<edge> edges_;
  std::vector<hash_edge_state> hash_state_;  ///< Parallel to edges_ (empty for non-hash).
  std::vector<channel_state> channels_;
  std::vector<size_t> round_robin_;  ///< Parallel to edges_.
  std::vector<uint64_t> rows_out_;
  uint64_t bytes_out_ = 0;
  uint32_t max_parallelism_;
  size_t batch_size_;
  size_t queued_ = 0;     ///< Items waiting in all channel queues.
  bool partial_ = false;  ///< Rows were left in a hash batch builder since the last flush.
};

}  // namespace vigil
