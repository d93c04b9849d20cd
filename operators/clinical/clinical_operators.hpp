#pragma once

#include "runtime/operator.hpp"

namespace vigil {

/// Registers the clinical operators: `clinical_ingest`, `clinical_scores` and
/// `clinical_alerts` (see operators/clinical/clinical_ingest.hpp, clinical_scores.hpp and
/// clinical_alerts.hpp for their config, ports and schemas).
void register_clinical_operators(operator_registry& r);

}  // namespace vigil
