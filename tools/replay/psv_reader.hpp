#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "tools/replay/replay_types.hpp"

/// Reading PhysioNet/CinC Challenge 2019 `.psv` files: one ICU stay per file, one row per hour,
/// pipe-separated, "NaN" where nothing was measured, a header row naming the columns.

namespace vigil::replay {

/// One hourly row of a stay: the hour (ICULOS) and the values of the replayed columns
/// (replay_columns order; NaN when not measured).
struct psv_row {
  int64_t iculos = 0;  ///< Hours since ICU admission (the PhysioNet ICULOS column).
  std::array<double, replay_column_count> values{};
};

/// One ICU stay: the patient id (the file name without `.psv`) and its rows in file order.
struct patient_stay {
  std::string patient;
  std::vector<psv_row> rows;
};

/// Whether `id` can be a patient id: 1..64 letters, digits, '-' or '.' (what a FHIR id
/// allows, and nothing with a meaning in HL7 or JSON).
bool valid_patient_id(std::string_view id);

/// Parses the text of a `.psv` file. `file_name` names the file in errors
/// ("p000002.psv:7: ..."). The header must name ICULOS; replayed columns it does not name are
/// never measured; other columns are skipped. Every row must have as many fields as the header,
/// ICULOS must be a whole number of hours and the replayed columns numbers or "NaN". CRLF line
/// ends and a missing final newline are accepted. Errors: parse_error.
result<patient_stay> parse_psv(std::string_view text, std::string_view file_name,
                               std::string patient);

/// Reads and parses `path`; the patient id is the file name without its extension and must be
/// valid_patient_id() (invalid_argument otherwise). io_error when the file cannot be read.
result<patient_stay> read_psv(const std::filesystem::path& path);

/// Expands `inputs` (files, or directories whose `*.psv` files are taken) into a list of files
/// sorted by name, without duplicates. Errors: not_found for a path that does not exist,
/// invalid_argument when the list ends up empty or two files give the same patient id.
result<std::vector<std::filesystem::path>> list_psv_files(const std::vector<std::string>& inputs);

}  // namespace vigil::replay
