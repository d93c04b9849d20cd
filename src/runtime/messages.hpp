#pragma once

#include <caf/all.hpp>
#include <memory>
#include <string>
#include <vector>

#include "common/record_batch.hpp"
#include "runtime/output_router.hpp"
#include "runtime/wire.hpp"

namespace vigil {

// Data plane between subtasks (receiver input channel index first).
using batch_atom = caf::atom_constant<caf::atom("batch")>;
using watermark_atom = caf::atom_constant<caf::atom("wm")>;
using idle_atom = caf::atom_constant<caf::atom("idle")>;
using eos_atom = caf::atom_constant<caf::atom("eos")>;
/// Checkpoint barrier: (barrier, input channel, checkpoint id).
using barrier_atom = caf::atom_constant<caf::atom("barrier")>;
/// Receiver to sender: (credit, sender output channel index, number of batches).
using credit_atom = caf::atom_constant<caf::atom("credit")>;

// Control between the executor (or a job master) and subtasks.
using wire_atom = caf::atom_constant<caf::atom("wire")>;
using start_atom = caf::atom_constant<caf::atom("start")>;
using poll_atom = caf::atom_constant<caf::atom("poll")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using wake_atom = caf::atom_constant<caf::atom("wake")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using failed_atom = caf::atom_constant<caf::atom("failed")>;

// Checkpoints between the checkpoint coordinator (executor or job master) and subtasks.
/// Coordinator to sources: (trigger, checkpoint id, storage root) inject barrier id.
using trigger_atom = caf::atom_constant<caf::atom("trigger")>;
/// Subtask to coordinator: (ack, checkpoint_ack).
using ack_atom = caf::atom_constant<caf::atom("ack")>;
/// Subtask to coordinator: (decline, checkpoint id, node, subtask, reason).
using decline_atom = caf::atom_constant<caf::atom("decline")>;
/// Coordinator to subtasks: (complete, checkpoint id, source positions): the positions as in
/// the checkpoint's _metadata, `{"<node id>": [<position of subtask 0>, ...]}`.
using complete_atom = caf::atom_constant<caf::atom("complete")>;
/// Coordinator to source subtasks: (end_input): stop reading and end the stream, as a bounded
/// source does at its end (a drain: downstream operators flush and sinks commit).
using end_input_atom = caf::atom_constant<caf::atom("endinput")>;

// Cluster control between the coordinator, job masters and workers (src/coordinator,
// src/worker; docs/design/0005-cluster.md).
using register_atom = caf::atom_constant<caf::atom("register")>;
using heartbeat_atom = caf::atom_constant<caf::atom("heartbeat")>;
using deploy_atom = caf::atom_constant<caf::atom("deploy")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using released_atom = caf::atom_constant<caf::atom("released")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;

/// How one subtask is connected, computed once all subtasks of a job exist (compute_wiring in
/// runtime/wiring.hpp). A value: sent by the local executor and, over the network, by a job
/// master to subtasks on remote workers (actor handles serialize as node and actor id).
struct subtask_wiring {
  struct input {
    size_t port = 0;  ///< The operator's input port.
    caf::actor upstream;
    uint32_t upstream_channel = 0;  ///< The upstream's output channel index.
  };
  std::vector<output_router::edge> edges;
  std::vector<caf::actor> channel_targets;     ///< Per output channel: the receiver.
  std::vector<uint32_t> channel_target_input;  ///< Per output channel: its input index there.
  std::vector<input> inputs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, output_router::edge& x) {
  return f(caf::meta::type_name("vigil.edge"), x.port, x.part, x.channels);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subtask_wiring::input& x) {
  return f(caf::meta::type_name("vigil.input"), x.port, x.upstream, x.upstream_channel);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subtask_wiring& x) {
  return f(caf::meta::type_name("vigil.wiring"), x.edges, x.channel_targets, x.channel_target_input,
           x.inputs);
}

/// One subtask of a job: node index (plan order) and subtask index.
struct subtask_ref {
  uint32_t node = 0;
  uint32_t subtask = 0;
  friend bool operator==(const subtask_ref&, const subtask_ref&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subtask_ref& x) {
  return f(caf::meta::type_name("vigil.subtask_ref"), x.node, x.subtask);
}

/// What a job master sends with a deployment besides the graph and the subtasks.
struct deploy_settings {
  /// The job's deployments so far: a worker reports it with every release of the job's slots
  /// (released, worker id, job id, attempt), so a late release of an earlier attempt cannot
  /// free the slots of the current one. A cancel carries the attempt it stops.
  uint32_t attempt = 0;
  std::string checkpoint_dir;  ///< The job's checkpoint storage; empty: no checkpoints.
  /// Start from complete checkpoint `restore_id` of the storage at `restore_dir` (the job's own
  /// or a savepoint); 0: from scratch.
  std::string restore_dir;
  int64_t restore_id = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, deploy_settings& x) {
  return f(caf::meta::type_name("vigil.deploy_settings"), x.attempt, x.checkpoint_dir,
           x.restore_dir, x.restore_id);
}

/// What a subtask reports when it has finished.
struct subtask_stats {
  size_t node = 0;
  uint32_t subtask = 0;
  uint64_t records_in = 0;
  std::vector<uint64_t> rows_out;  ///< Per output port.
  uint64_t late_records = 0;
  uint64_t dropped_records = 0;
};

/// A subtask stored its part of a checkpoint.
struct checkpoint_ack {
  int64_t id = 0;
  size_t node = 0;
  uint32_t subtask = 0;
  uint64_t bytes = 0;         ///< Size of its snapshot.
  uint64_t bytes_copied = 0;  ///< New bytes copied to checkpoint storage for it.
  int64_t duration_us = 0;    ///< From barrier alignment to stored.
  /// Sources: the read position at the snapshot (operator_base::position_json); else empty.
  std::string position;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkpoint_ack& x) {
  return f(caf::meta::type_name("vigil.checkpoint_ack"), x.id, x.node, x.subtask, x.bytes,
           x.bytes_copied, x.duration_us, x.position);
}

/// CAF 0.17 inspection: serializable, so that a remote worker can report to the coordinator.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, subtask_stats& x) {
  return f(caf::meta::type_name("vigil.subtask_stats"), x.node, x.subtask, x.records_in, x.rows_out,
           x.late_records, x.dropped_records);
}

}  // namespace vigil
