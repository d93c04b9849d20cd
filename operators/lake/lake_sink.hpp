#pragma once

#include <memory>

#include "runtime/operator.hpp"

namespace vigil {

/// `lake_sink`: writes its input into a Delta Lake table, exactly once across restarts from a
/// checkpoint. Rows go to Parquet files under the table directory while an epoch (the time
/// between two checkpoints) lasts; at the checkpoint barrier the files are closed and listed
/// in the operator's checkpointed state; when the checkpoint is complete, the subtask commits
/// them as one Delta version with txn {appId: "<job>/<node>/<subtask>", version: checkpoint id}.
/// A restored subtask commits what its checkpoint lists unless the table already holds that
/// txn. At the end of a bounded job the last files are committed too. Files of an epoch that
/// never completed stay unreferenced. See docs/authoring.md for the config.
std::unique_ptr<operator_factory> make_lake_sink_factory();

void register_lake_operators(operator_registry& r);

}  // namespace vigil
