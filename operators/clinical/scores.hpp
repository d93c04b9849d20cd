#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "operators/clinical/normalize.hpp"

/// Early-warning and sepsis scores as pure functions of the latest parameter values:
/// NEWS2, qSOFA, SIRS and the SOFA components a vital-sign and lab stream can give.
///
/// Every score takes score_inputs (values in the canonical units of normalize.hpp) and returns
/// its total, the points of each item, and the mask of its input parameters that had no value
/// (bit(parameter)). A missing parameter scores 0: the total is a lower bound when `missing`
/// is not 0.
///
/// Values are banded as charted: NEWS2 charts integers (temperature in tenths of °C), so
/// respiration rate, SpO2, systolic pressure and pulse are rounded to the nearest integer
/// (halves away from zero) and temperature to 0.1 °C before banding; GCS is rounded to an
/// integer for NEWS2, qSOFA and SOFA. SIRS and SOFA thresholds apply to the values as they are.

namespace vigil::clinical {

/// What the scores read.
struct score_inputs {
  parameter_values values;
  /// Supplemental oxygen, when a source states it; otherwise it is inferred from FiO2 > 0.21
  /// or an oxygen flow > 0.
  std::optional<bool> supplemental_o2;
  /// NEWS2 SpO2 Scale 2 (patients with hypercapnic respiratory failure and a prescribed target
  /// saturation of 88–92 %, flagged by a clinician).
  bool hypercapnic = false;
  /// Mechanical ventilation / respiratory support, for SOFA respiration points 3 and 4. When
  /// unknown (the stream has no ventilation data) the PaO2/FiO2 thresholds apply alone; when
  /// false, respiration scores at most 2 (Singer 2016, Table 1).
  std::optional<bool> mechanical_ventilation;

  /// The value of `p`, if known.
  const std::optional<double>& operator[](parameter p) const {
    return values[static_cast<size_t>(p)];
  }
  std::optional<double>& operator[](parameter p) { return values[static_cast<size_t>(p)]; }
};

/// NEWS2 clinical risk (RCP 2017, Chart 4).
enum class news2_band : uint8_t {
  low,         ///< Aggregate 0–4 without a red score: ward-based response.
  low_medium,  ///< A single parameter scoring 3 (aggregate < 5): urgent ward-based response.
  medium,      ///< Aggregate 5–6: key threshold for urgent response.
  high,        ///< Aggregate 7 or more: urgent or emergency response.
};

/// "low", "low_medium", "medium", "high".
std::string_view to_string(news2_band band);

/// NEWS2 items in chart order.
enum class news2_item : uint8_t {
  resp_rate,
  spo2,
  air_or_oxygen,
  sbp,
  pulse,
  consciousness,
  temperature,
};
inline constexpr size_t news2_item_count = 7;
/// Item names: "resp_rate", "spo2", "air_or_oxygen", "sbp", "pulse", "consciousness",
/// "temperature".
std::string_view to_string(news2_item item);

struct news2_result {
  int total = 0;
  std::array<int, news2_item_count> points{};
  int spo2_scale = 1;  ///< 1 or 2.
  news2_band band = news2_band::low;
  bool red = false;  ///< Some single item scored 3.
  uint32_t missing = 0;
};

/// NEWS2 (Royal College of Physicians, National Early Warning Score 2, 2017, Chart 1 and
/// Chart 4). Consciousness comes from the GCS: GCS < 15 counts as new confusion or V/P/U on
/// ACVPU (3 points), GCS 15 as Alert. Air or oxygen: oxygen when supplemental_o2 is true, or
/// FiO2 > 0.21, or O2 flow > 0; air when stated or when FiO2/flow say so; missing otherwise
/// (listed as fio2; scores 0 as air would).
news2_result news2(const score_inputs& in);

/// qSOFA criteria.
enum class qsofa_item : uint8_t { resp_rate, sbp, mentation };
inline constexpr size_t qsofa_item_count = 3;
/// "resp_rate", "sbp", "mentation".
std::string_view to_string(qsofa_item item);

struct qsofa_result {
  int total = 0;
  std::array<int, qsofa_item_count> points{};
  uint32_t missing = 0;
};

/// qSOFA (Seymour et al., JAMA 2016;315(8):762-774): respiratory rate ≥ 22/min, systolic
/// pressure ≤ 100 mmHg, altered mentation (GCS < 15); one point each, positive at ≥ 2.
qsofa_result qsofa(const score_inputs& in);

/// SIRS criteria.
enum class sirs_item : uint8_t { temperature, heart_rate, respiratory, white_cells };
inline constexpr size_t sirs_item_count = 4;
/// "temperature", "heart_rate", "respiratory", "white_cells".
std::string_view to_string(sirs_item item);

struct sirs_result {
  int total = 0;
  std::array<int, sirs_item_count> points{};
  uint32_t missing = 0;
};

/// SIRS (ACCP/SCCM Consensus Conference, Bone et al., Chest 1992;101(6):1644-1655):
/// temperature > 38 °C or < 36 °C; heart rate > 90/min; respiratory rate > 20/min or PaCO2 <
/// 32 mmHg; WBC > 12 or < 4 ×10³/µL or bands > 10 %. One point per criterion met.
sirs_result sirs(const score_inputs& in);

/// SOFA organ systems computable from the stream.
enum class sofa_item : uint8_t { respiration, coagulation, liver, cardiovascular, cns, renal };
inline constexpr size_t sofa_item_count = 6;
/// "respiration", "coagulation", "liver", "cardiovascular", "cns", "renal".
std::string_view to_string(sofa_item item);

struct sofa_result {
  int total = 0;  ///< Sum of the computable components (0–21 here).
  std::array<int, sofa_item_count> points{};
  uint32_t missing = 0;
};

/// SOFA components (Vincent et al., Intensive Care Med 1996;22:707-710; Singer et al., JAMA
/// 2016;315(8):801-810, Table 1): respiration PaO2/FiO2 (mmHg) < 400: 1, < 300: 2, < 200 with
/// respiratory support: 3, < 100 with support: 4; coagulation platelets (×10³/µL) < 150: 1,
/// < 100: 2, < 50: 3, < 20: 4; liver bilirubin (mg/dL) 1.2–1.9: 1, 2.0–5.9: 2, 6.0–11.9: 3,
/// ≥ 12: 4; cardiovascular MAP < 70 mmHg: 1 (higher points need vasopressor doses, which the
/// stream does not carry); CNS GCS 13–14: 1, 10–12: 2, 6–9: 3, < 6: 4; renal creatinine
/// (mg/dL) 1.2–1.9: 1, 2.0–3.4: 2, 3.5–4.9: 3, ≥ 5.0: 4 (urine output is not in the stream).
sofa_result sofa(const score_inputs& in);

/// Appends the names of the parameters in `mask`, comma-separated, in parameter order.
void append_parameter_names(std::string& out, uint32_t mask);

}  // namespace vigil::clinical
