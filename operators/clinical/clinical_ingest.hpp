#pragma once

#include "runtime/operator.hpp"

namespace vigil::clinical {

/// Registers `clinical_ingest` (stateless): parses HL7 v2.5 ORU^R01 messages or FHIR R4
/// Observations (or Bundles of them) from a string field, normalizes units and codes, checks
/// plausibility and pseudonymizes the patient.
///
/// Config:
/// - `format` (string, required): "hl7" or "fhir".
/// - `field` (string, default "raw"): the input's string field holding one message per record.
/// - `pseudonym_key_file` (string) or `pseudonym_key_env` (string), exactly one required: the
///   file holding the HMAC key (its bytes, one trailing newline removed) or the name of the
///   environment variable holding it; at least 16 bytes. The key is read in open(): a job
///   without a readable key does not start. Neither the key nor an MRN is ever logged.
///
/// Ports: in "in" (any stream with the string field); out "out" (one record per accepted
/// observation, event time = the observation's event_time):
///   patient string (HMAC-SHA256(key, MRN), first 32 lowercase hex digits), encounter string?
///   (null when absent), code string (canonical LOINC), value double (canonical unit), unit
///   string (UCUM), status string (FHIR ObservationStatus), event_time timestamp, message_id
///   string, ingest_time timestamp (processing time of the batch);
/// and "dead" (one record per refused message or observation, event time = the input record's):
///   reason string (ingest_errc name), detail string, raw string (the whole message, cut at
///   64 KiB), ingest_time timestamp.
///
/// A message with good and bad observations: the good ones go to "out", each bad one goes to
/// "dead" (its detail names its position, e.g. "OBX #6: ..."), so that one bad value does not
/// withhold the patient's other vitals. Message-level errors (bad delimiters, no MSH-10, no
/// patient, invalid JSON, ...) send the message once to "dead" and nothing to "out".
///
/// The MRN never reaches an output: an MRN embedded in a message id or encounter is replaced
/// by the pseudonym, and in the raw text of dead letters every occurrence of the MRN (once the
/// parser found it) is replaced too. Dead letters of messages that fail before the patient is
/// read (invalid JSON, bad delimiters) keep their raw text as received: route "dead" to a
/// store cleared for identifiable data.
void register_clinical_ingest_operator(operator_registry& r);

}  // namespace vigil::clinical
