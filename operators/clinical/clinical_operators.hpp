#pragma once

#include "runtime/operator.hpp"

namespace vigil {

/// Registers the clinical operators: `clinical_ingest`, `clinical_scores` and
/// `clinical_alerts` (see operators/clinical/clinical_ingest.hpp, clinical_scores.hpp and
/// clinical_alerts.hpp for their config, ports and schemas).
void register_clinical_operators(operator_registry& r);

namespace clinical {

/// The index of input field `name` of type `t` in `in`; invalid_graph naming operator `op`,
/// the field and the input schema otherwise.
result<int> require_input_field(std::string_view op, const schema& in, std::string_view name,
                                type_id t);

}  // namespace clinical
}  // namespace vigil
