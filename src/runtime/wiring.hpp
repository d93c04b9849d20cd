#pragma once

#include <caf/all.hpp>
#include <vector>

#include "runtime/job_plan.hpp"
#include "runtime/messages.hpp"

namespace vigil {

/// Computes every subtask's wiring once all subtasks of a job exist: the output channels of each
/// edge (one per downstream subtask; forward edges connect subtask i to subtask i) and the
/// matching input channels. `actors[n][s]` is subtask s of plan node n, local or remote; the
/// result has the same shape.
std::vector<std::vector<subtask_wiring>> compute_wiring(
    const job_plan& plan, const std::vector<std::vector<caf::actor>>& actors);

}  // namespace vigil
