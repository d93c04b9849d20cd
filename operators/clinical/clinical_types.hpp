#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

/// Value types of the clinical layer: observations as the ingest parsers read them and the
/// reasons a message or an observation is refused (the dead-letter reasons).

namespace vigil::clinical {

/// Why a message or one of its observations went to the dead-letter output. Each code has a
/// stable snake_case name (to_string) that dead-letter records carry in their `reason` field.
enum class ingest_errc : uint8_t {
  truncated,               ///< Empty input, or it ends before the first segment is complete.
  not_hl7,                 ///< The message does not start with an MSH segment.
  bad_delimiters,          ///< MSH-1/MSH-2 are missing, repeated or alphanumeric.
  bad_escape,              ///< An unknown or unterminated escape sequence.
  unsupported_message,     ///< MSH-9 is not ORU^R01.
  missing_message_id,      ///< MSH-10 (FHIR: Observation.id) is empty.
  missing_patient,         ///< No PID-3 ID (FHIR: subject reference or identifier).
  missing_code,            ///< OBX-3 (FHIR: Observation.code.coding) has no code.
  not_loinc,               ///< The observation code is not a LOINC code.
  non_numeric_value,       ///< OBX-2 is not NM, or OBX-5 / valueQuantity.value is no number.
  missing_value,           ///< OBX-5 (FHIR: valueQuantity) is empty.
  unknown_unit,            ///< The unit is not one the parameter can be converted from.
  missing_status,          ///< OBX-11 (FHIR: Observation.status) is empty.
  unknown_status,          ///< OBX-11 is not a code of HL7 table 0085.
  bad_timestamp,           ///< OBX-14 / effectiveDateTime cannot be read.
  missing_effective_time,  ///< Neither OBX-14 nor OBR-7 (FHIR: effectiveDateTime) is given.
  invalid_json,            ///< The FHIR document is not valid JSON.
  wrong_resource_type,     ///< Not an Observation (or a Bundle of Observations).
  implausible_value,       ///< The value is outside the parameter's plausibility range.
  missing_input,           ///< The input field holding the message is null.
  empty_bundle,            ///< A FHIR Bundle without entries.
  no_observations,         ///< An ORU^R01 without OBX segments.
};

/// The number of ingest_errc codes: the last enumerator + 1 (a code added at the end of the
/// enum must be named here instead).
inline constexpr size_t ingest_errc_count = static_cast<size_t>(ingest_errc::no_observations) + 1;

/// The stable snake_case name of `code`, e.g. "bad_escape".
std::string_view to_string(ingest_errc code);

/// A refusal: the reason code and a detail message for a human.
struct ingest_error {
  ingest_errc code = ingest_errc::truncated;
  std::string detail;
};

/// An observation as a parser reads it: views into the message (or into the parser's scratch
/// buffers for unescaped text), valid until the parser parses the next message. `patient` is the
/// MRN as received; the ingest operator replaces it by its pseudonym before anything is emitted.
struct observation_ref {
  std::string_view patient;     ///< MRN (PID-3.1 / FHIR subject), never emitted as such.
  std::string_view encounter;   ///< PV1-19.1 / FHIR encounter; empty when absent.
  std::string_view code;        ///< LOINC code (canonical after normalize()).
  double value = 0;             ///< In `unit`.
  std::string_view unit;        ///< UCUM code (canonical after normalize()).
  std::string_view status;      ///< FHIR ObservationStatus: "final", "corrected", ...
  int64_t event_time = 0;       ///< µs since the epoch, UTC.
  std::string_view message_id;  ///< MSH-10 / FHIR Observation.id.
  int index = 0;                ///< 1-based position of the OBX segment / observation.
};

/// An observation that owns its text (the clinical scores operator and tests use it).
struct observation {
  std::string patient;                   ///< Pseudonymized patient id.
  std::optional<std::string> encounter;  ///< PV1-19 / FHIR encounter reference.
  std::string code;                      ///< Canonical LOINC code.
  double value = 0;                      ///< In the canonical unit of `code`.
  std::string unit;                      ///< UCUM code.
  std::string status;                    ///< "final" | "corrected" | "amended" | "preliminary" ...
  int64_t event_time = 0;                ///< µs since the epoch, UTC.
  std::string message_id;                ///< MSH-10 / FHIR Observation.id.
};

/// Receives what a parser finds in a message. The views are valid during the call.
class observation_sink {
 public:
  virtual ~observation_sink() = default;
  /// An observation that was read (not yet normalized).
  virtual void observation(const observation_ref& obs) = 0;
  /// An observation that was refused: `index` is its 1-based position in the message, `patient`
  /// the MRN when known (else empty).
  virtual void refused(int index, std::string_view patient, ingest_errc code,
                       std::string_view detail) = 0;
};

}  // namespace vigil::clinical
