#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "operators/clinical/clinical_types.hpp"

/// FHIR R4 Observation (JSON) parsing for the clinical ingest.

namespace vigil::clinical {

/// Parses FHIR R4 JSON: an Observation, or a Bundle whose entries' resources are Observations.
/// Reuses its simdjson parser and buffers from document to document; one parser serves one
/// thread.
///
/// Per Observation: `id` is the message id (required); `status` (required, one of registered,
/// preliminary, final, amended, corrected, cancelled, entered-in-error, unknown);
/// `code.coding[]`: the first coding with system http://loinc.org; `subject`: "Patient/<mrn>"
/// in `reference`, else `identifier.value`; `encounter`: "Encounter/<id>" in `reference`, else
/// `identifier.value` (optional); the event time from `effectiveDateTime`, `effectiveInstant`
/// or `effectivePeriod.start` (ISO 8601 with a zone; a bare date is midnight UTC);
/// `valueQuantity.value` with the UCUM `code` as unit (or `unit` when there is no code).
/// Each `component[]` with a valueQuantity (e.g. systolic 8480-6 and diastolic 8462-4 of a
/// blood pressure panel 85354-9) is one more observation with the component's code and the
/// Observation's id, status, subject and time; an Observation with components needs no value
/// of its own. Observations are numbered from 1 in document order (components after their
/// Observation) for the `index` of observation_ref and of refusals.
class fhir_parser {
 public:
  fhir_parser();
  ~fhir_parser();
  fhir_parser(const fhir_parser&) = delete;
  fhir_parser& operator=(const fhir_parser&) = delete;

  /// Parses `document`. A document-level error (invalid_json, wrong_resource_type of the
  /// document, empty_bundle) is returned with `detail` set and nothing reported. Otherwise each
  /// observation goes to `sink` (observation or refused) and nullopt is returned.
  std::optional<ingest_errc> parse(std::string_view document, observation_sink& sink,
                                   std::string& detail);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace vigil::clinical
