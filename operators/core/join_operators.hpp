#pragma once

#include "runtime/operator.hpp"

namespace vigil {

/// Registers the event-time join operators `interval_join` and `temporal_join` (documented in
/// join_interval.hpp and join_temporal.hpp).
void register_join_operators(operator_registry& r);

}  // namespace vigil
