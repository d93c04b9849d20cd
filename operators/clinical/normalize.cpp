#include "operators/clinical/normalize.hpp"

#include <cmath>
#include <cstdio>

namespace vigil::clinical {
namespace {

using enum parameter;
using enum parameter_kind;

/// Canonical codes and units (LOINC; UCUM), and plausibility ranges in the canonical unit.
/// The ranges are wide on purpose: they catch unit mix-ups and typing errors (a temperature of
/// 98.6 sent as Cel, an SpO2 of 930), not abnormal physiology.
constexpr std::array<parameter_info, parameter_count> parameters{{
    {heart_rate, "heart_rate", "8867-4", "/min", vital, 0, 300},
    {resp_rate, "resp_rate", "9279-1", "/min", vital, 0, 100},
    {sbp, "sbp", "8480-6", "mm[Hg]", vital, 0, 350},
    {dbp, "dbp", "8462-4", "mm[Hg]", vital, 0, 250},
    {map, "map", "8478-0", "mm[Hg]", vital, 0, 300},
    {temperature, "temperature", "8310-5", "Cel", vital, 25, 45},
    {spo2, "spo2", "2708-6", "%", vital, 0, 100},
    {fio2, "fio2", "3150-0", "1", vital, 0.21, 1.0},
    {o2_flow, "o2_flow", "3151-8", "L/min", vital, 0, 80},
    {gcs, "gcs", "9269-2", "{score}", vital, 3, 15},
    {lactate, "lactate", "2524-7", "mmol/L", lab, 0, 40},
    {wbc, "wbc", "6690-2", "10*3/uL", lab, 0, 1000},
    {bands, "bands", "764-1", "%", lab, 0, 100},
    {platelets, "platelets", "777-3", "10*3/uL", lab, 0, 5000},
    {creatinine, "creatinine", "2160-0", "mg/dL", lab, 0, 40},
    {bilirubin, "bilirubin", "1975-2", "mg/dL", lab, 0, 100},
    {pao2, "pao2", "2703-7", "mm[Hg]", lab, 0, 800},
    {paco2, "paco2", "2019-8", "mm[Hg]", lab, 0, 250},
}};

struct code_alias {
  std::string_view loinc;
  parameter p;
};

/// LOINC codes of the same parameter measured otherwise or reported in another unit.
constexpr code_alias aliases[] = {
    {"8331-1", temperature},  // Oral temperature.
    {"8328-7", temperature},  // Axillary temperature.
    {"59408-5", spo2},        // SpO2 by pulse oximetry.
    {"32693-4", lactate},     // Lactate in blood.
    {"2518-9", lactate},      // Lactate in arterial blood.
    {"26464-8", wbc},         // Leukocytes in blood.
    {"26515-7", platelets},   // Platelets in blood.
    {"14682-9", creatinine},  // Creatinine, µmol/L.
    {"38483-4", creatinine},  // Creatinine in blood.
    {"14631-6", bilirubin},   // Total bilirubin, µmol/L.
};

/// canonical = value * factor + offset.
struct unit_conversion {
  parameter p;
  std::string_view unit;
  double factor;
  double offset;
};

constexpr double mmhg_per_kpa = 7.50062;

/// Accepted units per parameter (UCUM codes; "mmHg" is accepted next to "mm[Hg]" because many
/// devices send it). Molar masses: creatinine 113.12 g/mol (1 mg/dL = 88.42 µmol/L), bilirubin
/// 584.66 g/mol (1 mg/dL = 17.1 µmol/L), lactate 90.08 g/mol (1 mmol/L = 9.008 mg/dL).
constexpr unit_conversion conversions[] = {
    {heart_rate, "/min", 1, 0},
    {heart_rate, "{beats}/min", 1, 0},
    {heart_rate, "{beat}/min", 1, 0},
    {heart_rate, "1/min", 1, 0},
    {resp_rate, "/min", 1, 0},
    {resp_rate, "{breaths}/min", 1, 0},
    {resp_rate, "{breath}/min", 1, 0},
    {resp_rate, "1/min", 1, 0},
    {sbp, "mm[Hg]", 1, 0},
    {sbp, "mmHg", 1, 0},
    {sbp, "kPa", mmhg_per_kpa, 0},
    {dbp, "mm[Hg]", 1, 0},
    {dbp, "mmHg", 1, 0},
    {dbp, "kPa", mmhg_per_kpa, 0},
    {map, "mm[Hg]", 1, 0},
    {map, "mmHg", 1, 0},
    {map, "kPa", mmhg_per_kpa, 0},
    {temperature, "Cel", 1, 0},
    {temperature, "[degF]", 5.0 / 9.0, -32.0 * 5.0 / 9.0},
    {spo2, "%", 1, 0},
    {fio2, "1", 1, 0},
    {fio2, "%", 0.01, 0},
    {o2_flow, "L/min", 1, 0},
    {gcs, "{score}", 1, 0},
    {gcs, "1", 1, 0},
    {gcs, "", 1, 0},  // GCS is a dimensionless score; many senders leave the unit empty.
    {lactate, "mmol/L", 1, 0},
    {lactate, "mg/dL", 1 / 9.008, 0},
    {wbc, "10*3/uL", 1, 0},
    {wbc, "10*9/L", 1, 0},
    {wbc, "/nL", 1, 0},
    {bands, "%", 1, 0},
    {platelets, "10*3/uL", 1, 0},
    {platelets, "10*9/L", 1, 0},
    {platelets, "/nL", 1, 0},
    {creatinine, "mg/dL", 1, 0},
    {creatinine, "umol/L", 1 / 88.42, 0},
    {bilirubin, "mg/dL", 1, 0},
    {bilirubin, "umol/L", 1 / 17.1, 0},
    {pao2, "mm[Hg]", 1, 0},
    {pao2, "mmHg", 1, 0},
    {pao2, "kPa", mmhg_per_kpa, 0},
    {paco2, "mm[Hg]", 1, 0},
    {paco2, "mmHg", 1, 0},
    {paco2, "kPa", mmhg_per_kpa, 0},
};

void describe(std::string& out, const char* fmt, std::string_view a, double v, double lo,
              double hi) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, static_cast<int>(a.size()), a.data(), v, lo, hi);
  out = buf;
}

}  // namespace

const parameter_info& info(parameter p) {
  return parameters[static_cast<size_t>(p)];
}

std::optional<parameter> parameter_of_code(std::string_view loinc) {
  for (const parameter_info& i : parameters) {
    if (i.loinc == loinc) return i.id;
  }
  for (const code_alias& a : aliases) {
    if (a.loinc == loinc) return a.p;
  }
  return std::nullopt;
}

std::optional<parameter> parameter_of_name(std::string_view name) {
  for (const parameter_info& i : parameters) {
    if (i.name == name) return i.id;
  }
  return std::nullopt;
}

std::optional<ingest_errc> normalize(observation_ref& obs, std::string& detail) {
  const std::optional<parameter> p = parameter_of_code(obs.code);
  if (!p) return std::nullopt;
  const parameter_info& pi = info(*p);
  const unit_conversion* conv = nullptr;
  for (const unit_conversion& c : conversions) {
    if (c.p == *p && c.unit == obs.unit) {
      conv = &c;
      break;
    }
  }
  if (conv == nullptr) {
    detail = "unit '";
    detail.append(obs.unit);
    detail.append("' is not a unit of ");
    detail.append(pi.name);
    detail.append(" (LOINC ");
    detail.append(obs.code);
    detail.append(")");
    return ingest_errc::unknown_unit;
  }
  const double v = obs.value * conv->factor + conv->offset;
  if (!std::isfinite(v) || v < pi.min_plausible || v > pi.max_plausible) {
    describe(detail, "%.*s %g is outside the plausible range %g..%g", pi.name, v, pi.min_plausible,
             pi.max_plausible);
    detail.append(" ");
    detail.append(pi.unit);
    return ingest_errc::implausible_value;
  }
  obs.value = v;
  obs.code = pi.loinc;
  obs.unit = pi.unit;
  return std::nullopt;
}

std::string_view to_string(ingest_errc code) {
  switch (code) {
    case ingest_errc::truncated:
      return "truncated";
    case ingest_errc::not_hl7:
      return "not_hl7";
    case ingest_errc::bad_delimiters:
      return "bad_delimiters";
    case ingest_errc::bad_escape:
      return "bad_escape";
    case ingest_errc::unsupported_message:
      return "unsupported_message";
    case ingest_errc::missing_message_id:
      return "missing_message_id";
    case ingest_errc::missing_patient:
      return "missing_patient";
    case ingest_errc::missing_code:
      return "missing_code";
    case ingest_errc::not_loinc:
      return "not_loinc";
    case ingest_errc::non_numeric_value:
      return "non_numeric_value";
    case ingest_errc::missing_value:
      return "missing_value";
    case ingest_errc::unknown_unit:
      return "unknown_unit";
    case ingest_errc::missing_status:
      return "missing_status";
    case ingest_errc::unknown_status:
      return "unknown_status";
    case ingest_errc::bad_timestamp:
      return "bad_timestamp";
    case ingest_errc::missing_effective_time:
      return "missing_effective_time";
    case ingest_errc::invalid_json:
      return "invalid_json";
    case ingest_errc::wrong_resource_type:
      return "wrong_resource_type";
    case ingest_errc::implausible_value:
      return "implausible_value";
    case ingest_errc::missing_input:
      return "missing_input";
    case ingest_errc::empty_bundle:
      return "empty_bundle";
    case ingest_errc::no_observations:
      return "no_observations";
  }
  return "unknown";
}

}  // namespace vigil::clinical
