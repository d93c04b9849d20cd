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

namespace clinical {

result<int> require_input_field(std::string_view op, const schema& in, std::string_view name,
                                type_id t) {
  const int i = in.index_of(name);
  if (i < 0) {
    return make_error(errc::invalid_graph, std::string(op) + ": input field '" + std::string(name) +
                                               "' is missing (input: " + in.to_string() + ")");
  }
  if (in.at(static_cast<size_t>(i)).type != t) {
    return make_error(errc::invalid_graph, std::string(op) + ": input field '" + std::string(name) +
                                               "' must be " + std::string(to_string(t)));
  }
  return i;
}

}  // namespace clinical
}  // namespace vigil
