#include "operators/clinical/clinical_operators.hpp"

#include "operators/clinical/clinical_alerts.hpp"
#include "operators/clinical/clinical_ingest.hpp"
#include "operators/clinical/clinical_scores.hpp"

namespace vigil {

void register_clinical_operators(operator_registry& r) {
  clinical::register_clinical_ingest_operator(r);
  clinical::register_clinical_scores_operator(r);
  clinical::register_clinical_alerts_operator(r);
}

}  // namespace vigil
