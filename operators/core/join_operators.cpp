#include "operators/core/join_operators.hpp"

#include "operators/core/join_interval.hpp"
#include "operators/core/join_temporal.hpp"

namespace vigil {

void register_join_operators(operator_registry& r) {
  r.add(make_interval_join_factory());
  r.add(make_temporal_join_factory());
}

}  // namespace vigil
