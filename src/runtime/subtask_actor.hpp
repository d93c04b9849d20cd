#pragma once

#include <caf/all.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "metrics/operator_metrics.hpp"
#include "runtime/job_plan.hpp"
#include "runtime/messages.hpp"
#include "runtime/output_router.hpp"
#include "runtime/subtask_driver.hpp"
#include "runtime/watermark_tracker.hpp"

namespace vigil {

/// Everything a subtask actor needs to know at spawn time.
struct subtask_spec {
  size_t node = 0;
  uint32_t subtask = 0;
  std::shared_ptr<const job_plan> plan;
  std::string state_dir;
  caf::actor executor;  ///< Receives done/failed reports (the local executor or a job master).
  /// The job's checkpoint storage root; empty when checkpoints are off.
  std::string checkpoint_dir;
  /// Start from checkpoint `restore_id` (> 0) of the storage at `restore_dir`.
  std::string restore_dir;
  int64_t restore_id = 0;
};

/// One operator subtask as a CAF event-based actor: receives batches, watermarks, idle markers
/// and end-of-stream on its input channels, drives the operator through a subtask_driver, and
/// sends its output through an output_router with credit-based flow control. Sources poll
/// their operator in a self-message loop that pauses while the router is blocked.
class subtask_actor : public caf::event_based_actor, private channel_transport {
 public:
  subtask_actor(caf::actor_config& cfg, subtask_spec spec);

  caf::behavior make_behavior() override;

 private:
  void deliver(size_t channel, channel_item item) override;

  caf::error on_wire(subtask_wiring wiring);
  void on_start();
  void on_batch(uint32_t ch, const batch_ptr& batch);
  void on_watermark(uint32_t ch, int64_t wm);
  void on_idle(uint32_t ch);
  void on_eos(uint32_t ch);
  void on_credit(uint32_t ch, uint32_t n);
  /// A data-plane item from input `ch`: held while `ch` is blocked by barrier alignment,
  /// otherwise handled.
  void receive(uint32_t ch, channel_item item);
  void handle(uint32_t ch, channel_item item);
  void on_barrier(uint32_t ch, int64_t id);
  /// Takes the snapshot once every input delivered the barrier (or ended), then processes
  /// what waited behind it.
  void maybe_aligned();
  /// Snapshots this subtask for checkpoint aligning_, acknowledges (or declines) it to the
  /// executor, and forwards the barrier downstream.
  void take_snapshot();
  void on_tick();
  /// Sends the next tick after `delay_us`; `fast` when something waits for it (a partial hash
  /// batch, a processing-time timer). Earlier pending ticks become stale.
  void schedule_tick(int64_t delay_us, bool fast);
  /// After work that may have left a partial hash batch or registered a processing-time
  /// timer: makes sure a tick comes within the linger interval.
  void arm_tick();
  /// Sources: sends the next poll after `delay_us` (0: at once); `wakeable` when a wake-up may
  /// bring it forward (after no_data, not after throttled). Earlier pending polls become stale,
  /// so that one poll loop runs however polls are started (the loop, a wake-up, credit).
  void schedule_poll(int64_t delay_us, bool wakeable = false);
  void poll_source();

  void advance_to(std::optional<int64_t> wm);
  /// Sources: sends the operator's watermark if it moved since the last one sent.
  void send_source_watermark();
  /// True if `ch` is an input of a wired subtask; otherwise fails the subtask (a message that
  /// no Vigil peer sends) and returns false.
  bool check_input(uint32_t ch, const char* what);
  void on_exit() override;
  void grant_credit(uint32_t ch);
  void pay_owed_credit();
  void finish_inputs();
  void maybe_done();
  void fail(const std::string& message);
  /// Metrics: `start_ns` (steady clock) began a unit of work that just ended; `batch` when it
  /// was one input batch or poll (observed in the batch duration histogram).
  void work_done(int64_t start_ns, bool batch);
  /// Metrics: publishes the counters accumulated since the last call (records and bytes out,
  /// late records, busy/idle/backpressured time, event-time lag, state size at most every few
  /// seconds). Called on every tick and when the subtask ends.
  void publish_metrics();

  subtask_spec spec_;
  const job_plan::node& node_;
  subtask_wiring wiring_;
  std::unique_ptr<output_router> router_;
  std::unique_ptr<subtask_driver> driver_;
  std::optional<watermark_tracker> tracker_;
  /// Per input: credits for consumed batches not yet returned. They go back in grants of at
  /// least credit_grant_ (half the window: one credit message per two batches with the
  /// default of 4), and not at all while the router is blocked. No deadlock: a sender out of
  /// credit with nothing in flight means the whole window is owed here, which is >= the grant.
  std::vector<uint32_t> owed_credit_;
  uint32_t credit_grant_ = 1;
  uint64_t records_in_ = 0;
  // Sources: the watermark the operator reported, and the one last sent downstream. A source
  // that keeps returning `more` sends its watermark after every watermark_every_polls polls,
  // otherwise after every poll (and always before an idle marker), so that a fast source
  // neither floods its channels with watermarks nor cuts every hash batch short (the router
  // flushes partial batches before each watermark). Counted in polls, not wall time, so which
  // records precede which watermark does not depend on timing.
  static constexpr uint32_t watermark_every_polls = 8;
  int64_t source_watermark_ = min_watermark;
  int64_t sent_watermark_ = min_watermark;
  uint32_t polls_since_watermark_ = 0;
  int64_t no_data_since_us_ = 0;
  bool idle_sent_ = false;       ///< Sources: idle declared since the last data.
  bool idle_forwarded_ = false;  ///< All inputs idle and that was forwarded downstream.
  bool waiting_for_credit_ = false;
  // Sources: the sequence number of the poll that counts, and whether it waits out a no_data
  // retry delay (a wake-up from the operator then polls at once).
  uint64_t poll_seq_ = 0;
  bool poll_delayed_ = false;
  // Ticks flush partial hash batches, fire processing-time timers and publish metrics. One
  // counts at a time (tick_seq_); it comes after the linger interval while something waits for
  // it, otherwise after idle_tick_us, so that an idle job does not wake every subtask every few
  // milliseconds.
  static constexpr int64_t idle_tick_us = 100'000;
  uint64_t tick_seq_ = 0;
  bool fast_tick_pending_ = false;
  bool finished_ = false;       ///< Inputs ended and end-of-stream queued downstream.
  bool end_requested_ = false;  ///< Source: end_input received; ends at the next poll.
  bool done_ = false;

  // Checkpoints: the barrier being aligned (0: none), which inputs delivered it, what arrived
  // behind it (at most channel_credits batches per input: nothing is granted for them).
  std::optional<checkpoint_storage> storage_;
  int64_t aligning_ = 0;
  int64_t last_barrier_ = 0;
  int64_t alignment_started_us_ = 0;
  std::vector<uint8_t> barrier_seen_;
  std::vector<std::deque<channel_item>> backlog_;

  // Metrics (docs/design/0010-metrics.md): the subtask's series, removed when it ends.
  std::optional<metrics::operator_metrics> metrics_;
  std::optional<metrics::activity_clock> activity_;
  uint64_t bytes_in_ = 0;  ///< Payload bytes received; published with records_in_.
  uint64_t published_records_in_ = 0;
  uint64_t published_bytes_in_ = 0;
  uint64_t published_rows_out_ = 0;
  uint64_t published_bytes_out_ = 0;
  uint64_t published_late_ = 0;
  int64_t state_size_due_ns_ = 0;
};

}  // namespace vigil
