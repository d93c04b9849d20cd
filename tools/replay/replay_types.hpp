#pragma once

#include <array>
#include <cstddef>
#include <string_view>

/// Value types of vigil-replay: the PhysioNet columns it replays and how each is coded.

namespace vigil::replay {

/// The FHIR observation category of a replayed column.
enum class column_category { vital_signs, laboratory };

/// A PhysioNet column that is replayed as an observation: its LOINC code, display text, and
/// the UCUM unit the values are sent in (the PhysioNet unit; every one is a unit the clinical
/// ingest normalizes).
struct replay_column {
  std::string_view psv_name;  ///< Column name in the `.psv` header.
  std::string_view loinc;
  std::string_view display;
  std::string_view ucum;
  column_category category;
};

/// The number of replayed columns.
inline constexpr size_t replay_column_count = 14;

/// The replayed columns: the vitals and labs the clinical scores use (NEWS2, qSOFA, SIRS,
/// SOFA parts) that the PhysioNet 2019 data has. FiO2 is sent as the fraction PhysioNet stores
/// (unit "1"); Lactate in mmol/L (what the data holds, whatever the PhysioNet docs say).
inline constexpr std::array<replay_column, replay_column_count> replay_columns{{
    {"HR", "8867-4", "Heart rate", "/min", column_category::vital_signs},
    {"O2Sat", "2708-6", "Oxygen saturation in Arterial blood", "%", column_category::vital_signs},
    {"Temp", "8310-5", "Body temperature", "Cel", column_category::vital_signs},
    {"SBP", "8480-6", "Systolic blood pressure", "mm[Hg]", column_category::vital_signs},
    {"MAP", "8478-0", "Mean blood pressure", "mm[Hg]", column_category::vital_signs},
    {"DBP", "8462-4", "Diastolic blood pressure", "mm[Hg]", column_category::vital_signs},
    {"Resp", "9279-1", "Respiratory rate", "/min", column_category::vital_signs},
    {"FiO2", "3150-0", "Inhaled oxygen concentration", "1", column_category::vital_signs},
    {"PaCO2", "2019-8", "Carbon dioxide [Partial pressure] in Arterial blood", "mm[Hg]",
     column_category::laboratory},
    {"Creatinine", "2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL",
     column_category::laboratory},
    {"Lactate", "2524-7", "Lactate [Moles/volume] in Serum or Plasma", "mmol/L",
     column_category::laboratory},
    {"Bilirubin_total", "1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL",
     column_category::laboratory},
    {"WBC", "6690-2", "Leukocytes [#/volume] in Blood", "10*3/uL", column_category::laboratory},
    {"Platelets", "777-3", "Platelets [#/volume] in Blood", "10*3/uL", column_category::laboratory},
}};

}  // namespace vigil::replay
