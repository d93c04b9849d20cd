#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "operators/clinical/clinical_types.hpp"

/// Clinical parameters, their canonical LOINC codes and UCUM units, unit conversions and
/// plausibility ranges (the "silver" normalization of the clinical layer).

namespace vigil::clinical {

/// The parameters the scores use. The order is stable: it indexes parameter_values and the
/// bits of missing-parameter masks.
enum class parameter : uint8_t {
  heart_rate,
  resp_rate,
  sbp,
  dbp,
  map,
  temperature,
  spo2,
  fio2,
  o2_flow,
  gcs,
  lactate,
  wbc,
  bands,
  platelets,
  creatinine,
  bilirubin,
  pao2,
  paco2,
};

inline constexpr size_t parameter_count = 18;

/// Vital signs are valid for the scores' `vitals_validity`, labs for `labs_validity`.
enum class parameter_kind : uint8_t { vital, lab };

/// What is known of a parameter: its names, canonical code and unit, and the plausible range
/// of values in the canonical unit (inclusive).
struct parameter_info {
  parameter id;
  std::string_view name;   ///< snake_case, used in `missing` lists and score inputs.
  std::string_view loinc;  ///< Canonical LOINC code.
  std::string_view unit;   ///< Canonical UCUM unit code.
  parameter_kind kind;
  double min_plausible;
  double max_plausible;
};

/// The information on `p`.
const parameter_info& info(parameter p);

/// The parameter a LOINC code measures (canonical codes and their variants, e.g. 59408-5 and
/// 2708-6 are both SpO2), or nullopt for codes the clinical layer does not know.
std::optional<parameter> parameter_of_code(std::string_view loinc);

/// The parameter whose name (parameter_info::name) is `name`.
std::optional<parameter> parameter_of_name(std::string_view name);

/// Normalizes an observation of a known parameter in place: canonical code, value converted
/// into the canonical unit (°F to °C, creatinine µmol/L to mg/dL, bilirubin µmol/L to mg/dL,
/// lactate mg/dL to mmol/L, FiO2 % to a fraction, kPa to mmHg, ...), then checks the
/// plausibility range. Observations of codes the layer does not know pass unchanged.
/// Errors: unknown_unit (a unit the parameter cannot be converted from, or none) and
/// implausible_value. `detail` receives the error detail.
std::optional<ingest_errc> normalize(observation_ref& obs, std::string& detail);

/// Latest values per parameter (the scores' input), indexed by parameter.
using parameter_values = std::array<std::optional<double>, parameter_count>;

/// Bit of parameter `p` in a parameter mask.
inline constexpr uint32_t bit(parameter p) {
  return uint32_t{1} << static_cast<unsigned>(p);
}

}  // namespace vigil::clinical
