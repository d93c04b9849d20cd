#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metrics/registry.hpp"
#include "runtime/operator.hpp"
#include "runtime/state_backend.hpp"

namespace vigil {

/// Registers `dedup`: forwards the first record of each key and drops the records of that key
/// that follow within a time-to-live, in event time.
///
/// Config:
/// - `ttl` (duration, required, > 0): a record of key k at event time t is a duplicate if a
///   record of k was forwarded at event time t0 and t < t0 + ttl (t may be before t0: a record
///   that arrives out of order is still a duplicate). Otherwise it is forwarded and t becomes
///   the key's t0. "First" is first in arrival order; duplicates within one batch are caught.
/// - `allowed_lateness` (duration, default: the graph's allowed lateness): a record with
///   t + allowed_lateness <= the current watermark is late; it goes to the "late" port and is
///   counted in operator_context::late_records, whether or not it is a duplicate (the state that
///   would tell has been cleaned up or soon will be).
///
/// Ports: in "in" (keyed), out "out" and "late". Both outputs have the input's schema, event
/// times and key (key fields and key hashes). Dropped duplicates are counted
/// (dedup_operator::duplicates()): dropping them is the operator's purpose, not data loss.
///
/// State: per key, a value state "dedup_seen" with an event-time TTL holding t0 (8 bytes,
/// ordered int64), written with the explicit expiry cleanup time = t0 + ttl - 1 +
/// allowed_lateness (state_backend::put_expiring()): it is visible while the watermark is below
/// the cleanup time and absent from then on, when no record that is not late can be a duplicate
/// of t0; RocksDB's compaction filter deletes it. No timers: a new key costs one state read and
/// one write, and the reads of a batch's keys are prefetched together
/// (state_backend::prefetch(): one RocksDB MultiGet for the keys the cache lacks). A restore goes
/// on from the watermark of the snapshot (the subtask driver keeps it), so expired entries stay
/// expired and late records stay late (after a rescale: from the lowest watermark of the merged
/// snapshots); only a checkpoint written before snapshots recorded the watermark leaves expired but
/// not yet deleted entries counting until the first watermark
/// (docs/design/0002-keyed-state-layout.md).
///
/// Checkpoints of the earlier layout (a value state "dedup_first_seen" plus an event-time timer
/// at the cleanup time that erased it) still restore: the old state stays declared, and while
/// restored event-time timers remain the operator is in legacy mode: a key missing from
/// "dedup_seen" is looked up in "dedup_first_seen" and a hit there counts as t0 as before (a
/// record that replaces it deletes its entry and timer), and the firing timers erase the old
/// entries. Legacy mode ends at the first watermark after which no event-time timer is left;
/// fresh operators never enter it and make no extra lookups.
void register_dedup_operator(operator_registry& r);

/// The running dedup operator (see register_dedup_operator()); public for its counter.
class dedup_operator final : public operator_base {
 public:
  struct settings {
    std::vector<int> key_fields;
    int64_t ttl_us = 0;
    int64_t allowed_lateness_us = 0;
    schema_ptr schema;
  };

  explicit dedup_operator(std::shared_ptr<const settings> s) : s_(std::move(s)) {}

  status open(operator_context& ctx) override;
  void process(size_t port, const record_batch& batch, output& out) override;
  /// Emits `batch` itself when it forwards every row of it (no duplicate, no late row) and has
  /// at most operator_context::batch_size rows.
  void process_shared(size_t port, const batch_ptr& batch, output& out) override;
  void on_timer(const timer& t, output& out) override;
  void on_watermark(int64_t wm, output& out) override;

  /// Records dropped as duplicates so far.
  uint64_t duplicates() const { return duplicates_; }
  /// Whether the operator still reads the earlier layout's state (see register_dedup_operator()).
  bool legacy_mode() const { return legacy_; }

 private:
  int64_t cleanup_time(int64_t first_seen) const;
  /// process() and process_shared(): `shared` owns `batch`, or is null.
  void run(const record_batch& batch, const batch_ptr* shared, output& out);

  std::shared_ptr<const settings> s_;
  operator_context* ctx_ = nullptr;
  state_backend::state_id seen_id_ = 0;         ///< "dedup_seen": t0 with a TTL.
  state_backend::state_id legacy_seen_id_ = 0;  ///< "dedup_first_seen": the earlier layout.
  bool legacy_ = false;  ///< Restored event-time timers of the earlier layout remain.
  batch_builder out_;
  batch_builder late_;
  // The keys of a batch's rows that are not late, in row order, read ahead in one
  // state_backend::prefetch() (reused per batch).
  std::string keys_;                          ///< Their encodings, one after another.
  std::vector<size_t> key_ends_;              ///< Where each ends in keys_.
  std::vector<uint32_t> key_groups_;          ///< Their key groups.
  std::vector<state_backend::key_ref> refs_;  ///< Key group and encoding of each.
  std::string value_;                         ///< State value read or written.
  uint64_t duplicates_ = 0;
  /// vigil_clinical_duplicates_dropped_total{job}: dedup by message or observation id is the
  /// clinical silver layer's deduplication (docs/design/0009-clinical-layer.md).
  metrics::series<prometheus::Counter> duplicates_metric_;
};

}  // namespace vigil
