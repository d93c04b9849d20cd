#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "operators/clinical/clinical_types.hpp"

/// HL7 v2.5 ORU^R01 parsing for the clinical ingest.

namespace vigil::clinical {

/// The delimiters of one message, read from MSH-1 and MSH-2.
struct hl7_delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
};

/// Parses an HL7 TS/DTM value "YYYYMMDDHHMM[SS[.S+]][+/-ZZZZ]" into µs since the epoch, UTC.
/// A value without a zone is read as UTC (senders in the reference deployment send UTC; a
/// local wall-clock time cannot be placed without the sender's time zone). Minute precision is
/// the least accepted: a vital sign needs a time of day. Up to 6 fraction digits; the zone
/// offset is at most ±14:00. nullopt for anything else (including month 13, February 30).
std::optional<int64_t> parse_hl7_timestamp(std::string_view text);

/// Parses HL7 v2.5 ORU^R01 messages without allocating per field: fields are string_views into
/// the message; text with escape sequences is unescaped into the parser's scratch buffers,
/// which are reused from message to message. One parser serves one thread.
///
/// What is read: delimiters from MSH-1/MSH-2 (MSH-2 has 4 or 5 characters: component,
/// repetition, escape, subcomponent and optionally the v2.7 truncation character); segments
/// split on CR, LF or CRLF (empty segments are skipped, segments the parser does not use are
/// ignored); escapes \F\ \S\ \T\ \R\ \E\ and \Xhh..\ (anything else is bad_escape). MSH-9 must be
/// ORU^R01; MSH-10 (message control id) is required; PID-3 first repetition, first component
/// is the MRN (the assigning authority is not part of it, so that HL7 and FHIR senders of the
/// same hospital map to the same patient); PV1-19 first component is the encounter. Per OBX:
/// OBX-2 must be NM; OBX-3 is code^text^system[^alt code^alt text^alt system] and the code is
/// taken from the first triple whose system is "LN" or absent (the primary triple only may
/// omit the system); OBX-5 is a decimal number; OBX-6 first component is the unit; OBX-11 maps
/// to a FHIR status (F, U → final; C → corrected; P, R, S → preliminary; I, O → registered;
/// D, W → entered-in-error; X, N → cancelled); OBX-14 is the event time, or if empty the
/// observation time (OBR-7) of the OBR segment before the OBX.
class hl7_parser {
 public:
  /// Header fields of the last message parsed (views valid until the next parse()).
  struct header {
    std::string_view message_id;
    std::string_view patient;
    std::string_view encounter;
  };

  /// Parses `message`. A message-level error (truncated, not_hl7, bad_delimiters, bad_escape in
  /// a header field, unsupported_message, missing_patient, missing_message_id) is returned with
  /// `detail` set, and no OBX is reported; a message without OBX segments returns
  /// no_observations. Otherwise each OBX goes to `obs` (observation or
  /// refused) in message order and nullopt is returned.
  std::optional<ingest_errc> parse(std::string_view message, observation_sink& obs,
                                   std::string& detail);

  /// Header fields read by the last parse() (possibly partial after an error).
  const header& last_header() const { return header_; }

 private:
  bool read_delimiters(std::string_view message);
  /// Field `n` of segment `seg` (MSH counts MSH-1 as the field separator itself).
  std::string_view field(std::string_view seg, int n) const;
  /// Component `n` (1-based) of the first repetition of `f`.
  std::string_view component(std::string_view f, int n) const;
  /// Unescapes `in` into `scratch` when it has escape sequences; nullopt on a bad escape.
  std::optional<std::string_view> unescape(std::string_view in, std::string& scratch) const;
  void parse_obx(std::string_view seg, int index, std::string_view obr_time, observation_sink& obs);
  void refuse(observation_sink& obs, int index, ingest_errc code, std::string_view what);

  hl7_delimiters d_;
  header header_;
  std::string id_scratch_;
  std::string patient_scratch_;
  std::string encounter_scratch_;
  std::string code_scratch_;
  std::string unit_scratch_;
  std::string what_;    ///< An OBX refusal's description, without the OBX prefix.
  std::string detail_;  ///< An OBX refusal's detail as reported.
};

}  // namespace vigil::clinical
