#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tools/replay/psv_reader.hpp"

/// The messages vigil-replay sends: HL7 v2.5 ORU^R01 and FHIR R4 Observation / Bundle text for
/// one hourly row of a stay, and the malformed variants used for fault injection. Every
/// function appends to `out`, so a caller reuses one buffer for all messages.

namespace vigil::replay {

/// The message formats.
enum class message_format {
  hl7,          ///< One ORU^R01 per row, one OBX per measured cell.
  fhir,         ///< One Observation per measured cell.
  fhir_bundle,  ///< One Bundle (type collection) of Observations per row.
};

/// The ways a message is broken by fault injection; each is one the clinical ingest
/// dead-letters.
enum class malformed_kind : uint8_t {
  truncated,      ///< Cut short (HL7: inside MSH; FHIR: in the middle of the JSON).
  bad_delimiter,  ///< HL7: an alphanumeric MSH-2 component separator; FHIR: a ':' made '='.
  non_numeric,    ///< The first value is text (HL7: OBX-5; FHIR: valueQuantity.value).
};

/// The number of malformed_kind values.
inline constexpr int malformed_kind_count = 3;

/// One row to write, with what identifies it.
struct row_ref {
  std::string_view patient;  ///< The MRN (PID-3 / Patient id).
  const psv_row* row = nullptr;
  int64_t event_time = 0;  ///< µs since the epoch, UTC (base time + ICULOS hours).
};

/// The encounter id of a patient's stay: "<patient>-icu" (PV1-19 / Encounter id).
void append_encounter_id(std::string& out, std::string_view patient);

/// The id of a row's message (HL7 MSH-10, FHIR Bundle id): "<patient>-<ICULOS>".
void append_row_message_id(std::string& out, std::string_view patient, int64_t iculos);

/// The id of one cell's FHIR Observation: "<patient>-<ICULOS>-<LOINC>".
void append_observation_id(std::string& out, std::string_view patient, int64_t iculos,
                           size_t column);

/// The number of measured (non-NaN) replayed cells of `row`.
size_t measured_count(const psv_row& row);

/// Appends an ORU^R01 with MSH, PID, PV1, OBR and one OBX per measured cell, segments ended by
/// CR. OBX-14 and OBR-7 carry the event time as YYYYMMDDHHMMSS+0000.
void append_hl7_row(std::string& out, const row_ref& r);

/// Appends one FHIR Observation (JSON, one line) for cell `column` of the row, which must be
/// measured.
void append_fhir_observation(std::string& out, const row_ref& r, size_t column);

/// Appends a FHIR Bundle (type collection) with one Observation per measured cell.
void append_fhir_bundle(std::string& out, const row_ref& r);

/// Breaks the message in `msg` (written in `format`) in the way `kind` says.
void make_malformed(std::string& msg, message_format format, malformed_kind kind);

}  // namespace vigil::replay
