#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "operators/clinical/clinical_types.hpp"
#include "operators/clinical/hl7_parser.hpp"
#include "operators/clinical/normalize.hpp"
#include "operators/clinical/pseudonymize.hpp"

/// Drives the clinical parsers the way the clinical_ingest operator does (parse, normalize each
/// observation, pseudonymize and redact) and checks what must hold for any input. Shared by the
/// libFuzzer harnesses hl7_fuzz.cpp and fhir_fuzz.cpp; a broken invariant aborts with a message,
/// which libFuzzer reports as a crash and saves the input.

namespace vigil::fuzz {

/// Prints `what` and aborts when `cond` is false (also in builds with NDEBUG).
#define VIGIL_FUZZ_CHECK(cond, what)                                   \
  do {                                                                 \
    if (!(cond)) ::vigil::fuzz::fail(__FILE__, __LINE__, #cond, what); \
  } while (false)

/// Reports a broken invariant and aborts.
[[noreturn]] inline void fail(const char* file, int line, const char* cond, std::string_view what) {
  std::fprintf(stderr, "fuzz invariant broken at %s:%d: %s: %.*s\n", file, line, cond,
               static_cast<int>(what.size()), what.data());
  std::abort();
}

/// The fixed pseudonym key of the harnesses (not a secret: fuzzing only).
inline constexpr std::string_view test_key = "vigil-fuzz-test-key-0123456789abcdef";

/// Dead letters carry at most this much of the message (as in clinical_ingest.cpp).
inline constexpr size_t max_raw_bytes = 64 * 1024;

/// Earliest and latest event times the timestamp grammars can express (years 0000..9999 with a
/// zone offset below one day), in µs since the epoch, UTC.
inline constexpr int64_t min_event_time_us = (-62167219200LL - 86400) * 1000000;
inline constexpr int64_t max_event_time_us = (253402300800LL + 86400) * 1000000;

/// True when `code` is one of `allowed`.
inline bool one_of(clinical::ingest_errc code,
                   std::initializer_list<clinical::ingest_errc> allowed) {
  for (clinical::ingest_errc a : allowed) {
    if (a == code) return true;
  }
  return false;
}

/// True when `s` is a FHIR ObservationStatus code.
inline bool fhir_status(std::string_view s) {
  for (std::string_view k : {"registered", "preliminary", "final", "amended", "corrected",
                             "cancelled", "entered-in-error", "unknown"}) {
    if (k == s) return true;
  }
  return false;
}

/// Parses inputs with a `Parser` (clinical::hl7_parser or clinical::fhir_parser) and checks each
/// callback, as clinical_ingest would consume them. Parsing the same input twice with the reused
/// parser must report the same events.
template <class Parser>
class ingest_checker final : private clinical::observation_sink {
 public:
  /// A checker whose pseudonymizer uses test_key.
  ingest_checker() {
    auto p = clinical::pseudonymizer::make(test_key, "fuzz");
    VIGIL_FUZZ_CHECK(p.ok(), "the pseudonymizer cannot be made");
    pseudonymizer_ = std::move(*p);
  }

  /// Parses `input` twice and checks every invariant; aborts on a broken one.
  void run(std::string_view input) {
    raw_ = input;
    parse_once();
    const std::string first = events_;
    parse_once();
    VIGIL_FUZZ_CHECK(first == events_, "a second parse of the same input reported other events");
  }

 private:
  void parse_once() {
    events_.clear();
    calls_ = 0;
    last_index_ = 0;
    raw_redacted_ = false;
    detail_.clear();
    const std::optional<clinical::ingest_errc> e = parser_.parse(raw_, *this, detail_);
    if (!e) return;
    std::string_view mrn;
    using enum clinical::ingest_errc;
    if constexpr (is_hl7) {
      mrn = parser_.last_header().patient;
      VIGIL_FUZZ_CHECK(
          one_of(*e, {truncated, not_hl7, bad_delimiters, bad_escape, unsupported_message,
                      missing_patient, missing_message_id, no_observations}),
          clinical::to_string(*e));
    } else {
      VIGIL_FUZZ_CHECK(one_of(*e, {invalid_json, wrong_resource_type, empty_bundle}),
                       clinical::to_string(*e));
    }
    VIGIL_FUZZ_CHECK(calls_ == 0, "a message-level error after observations were reported");
    dead_letter(*e, detail_, mrn);
  }

  void observation(const clinical::observation_ref& parsed) override {
    record_index(parsed.index);
    VIGIL_FUZZ_CHECK(!parsed.patient.empty(), "an observation without a patient");
    VIGIL_FUZZ_CHECK(!parsed.message_id.empty(), "an observation without a message id");
    VIGIL_FUZZ_CHECK(!parsed.code.empty(), "an observation without a code");
    VIGIL_FUZZ_CHECK(fhir_status(parsed.status), parsed.status);
    VIGIL_FUZZ_CHECK(
        parsed.event_time >= min_event_time_us && parsed.event_time <= max_event_time_us,
        "the event time is out of the range of the timestamp grammar");
    events_.append("obs ");
    events_.append(std::to_string(parsed.index));
    events_.push_back(' ');
    events_.append(parsed.code);
    events_.push_back(' ');
    events_.append(std::to_string(parsed.value));
    events_.push_back(' ');
    events_.append(parsed.unit);
    events_.push_back('\n');

    clinical::observation_ref obs = parsed;
    const std::optional<clinical::parameter> p = clinical::parameter_of_code(parsed.code);
    if (auto e = clinical::normalize(obs, what_)) {
      using enum clinical::ingest_errc;
      VIGIL_FUZZ_CHECK(one_of(*e, {unknown_unit, implausible_value}), clinical::to_string(*e));
      VIGIL_FUZZ_CHECK(p.has_value(), "normalize refused a code it does not know");
      VIGIL_FUZZ_CHECK(!what_.empty(), "normalize refused without a detail");
      return dead_letter(*e, what_, obs.patient);
    }
    VIGIL_FUZZ_CHECK(std::isfinite(obs.value), "an accepted observation has a non-finite value");
    VIGIL_FUZZ_CHECK(!obs.code.empty(), "normalize left an empty code");
    if (p) {
      const clinical::parameter_info& pi = clinical::info(*p);
      VIGIL_FUZZ_CHECK(obs.code == pi.loinc, "the code is not canonical after normalize");
      VIGIL_FUZZ_CHECK(obs.unit == pi.unit, "the unit is not canonical after normalize");
      VIGIL_FUZZ_CHECK(obs.value >= pi.min_plausible && obs.value <= pi.max_plausible,
                       "an accepted value is outside its plausible range");
    }
    pseudonymize(obs.patient);
    text_.assign(obs.patient);
    clinical::redact(text_, obs.patient, pseudonym_);
    VIGIL_FUZZ_CHECK(text_ == pseudonym_, "redacting the MRN itself does not give the pseudonym");
    redacted(obs.encounter, obs.patient);
    redacted(obs.message_id, obs.patient);
  }

  void refused(int index, std::string_view patient, clinical::ingest_errc code,
               std::string_view detail) override {
    record_index(index);
    using enum clinical::ingest_errc;
    if constexpr (is_hl7) {
      VIGIL_FUZZ_CHECK(
          one_of(code, {non_numeric_value, missing_code, not_loinc, bad_escape, missing_value,
                        missing_status, unknown_status, missing_effective_time, bad_timestamp}),
          clinical::to_string(code));
      VIGIL_FUZZ_CHECK(!patient.empty() && patient == parser_.last_header().patient,
                       "an OBX refusal without the patient of the message");
      const std::string prefix = "OBX #" + std::to_string(index) + ": ";
      VIGIL_FUZZ_CHECK(detail.substr(0, prefix.size()) == prefix, detail);
    } else {
      VIGIL_FUZZ_CHECK(
          one_of(code, {missing_message_id, missing_patient, missing_status, unknown_status,
                        missing_effective_time, bad_timestamp, missing_code, not_loinc,
                        non_numeric_value, missing_value, wrong_resource_type}),
          clinical::to_string(code));
      const std::string prefix = "observation #" + std::to_string(index);
      VIGIL_FUZZ_CHECK(detail.substr(0, prefix.size()) == prefix, detail);
    }
    VIGIL_FUZZ_CHECK(detail.size() > 0, "a refusal without a detail");
    events_.append("refused ");
    events_.append(std::to_string(index));
    events_.push_back(' ');
    events_.append(clinical::to_string(code));
    events_.push_back(' ');
    events_.append(detail);
    events_.push_back('\n');
    dead_letter(code, detail, patient);
  }

  /// Observations and refusals are numbered from 1, strictly increasing in message order.
  void record_index(int index) {
    ++calls_;
    VIGIL_FUZZ_CHECK(index > last_index_, "observation indexes are not strictly increasing");
    last_index_ = index;
  }

  /// What clinical_ingest does with a refusal: the reason's name, the redacted detail and the
  /// redacted, truncated raw message.
  void dead_letter(clinical::ingest_errc code, std::string_view detail, std::string_view mrn) {
    const std::string_view reason = clinical::to_string(code);
    VIGIL_FUZZ_CHECK(!reason.empty() && reason != "unknown", "a reason without a name");
    VIGIL_FUZZ_CHECK(!detail.empty(), "a dead letter without a detail");
    redacted(detail, mrn);
    // The ingest redacts the raw message for every dead letter. Once per MRN and message covers
    // the same code and keeps the harness fast on messages with many refused OBX segments.
    if (raw_redacted_ && mrn == raw_mrn_) return;
    raw_redacted_ = true;
    raw_mrn_.assign(mrn);
    text_.assign(raw_.substr(0, max_raw_bytes + 4));
    if (!mrn.empty()) {
      pseudonymize(mrn);
      clinical::redact(text_, mrn, pseudonym_);
    }
  }

  void pseudonymize(std::string_view mrn) {
    pseudonymizer_->pseudonym(mrn, pseudonym_);
    VIGIL_FUZZ_CHECK(pseudonym_.size() == clinical::pseudonym_hex_chars, pseudonym_);
    for (char c : pseudonym_) {
      VIGIL_FUZZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'), pseudonym_);
    }
  }

  void redacted(std::string_view text, std::string_view mrn) {
    text_.assign(text);
    if (mrn.empty()) return;
    pseudonymize(mrn);
    clinical::redact(text_, mrn, pseudonym_);
  }

  static constexpr bool is_hl7 = std::is_same_v<Parser, clinical::hl7_parser>;

  Parser parser_;
  std::unique_ptr<clinical::pseudonymizer> pseudonymizer_;
  std::string_view raw_;
  std::string detail_;
  std::string what_;
  std::string text_;
  std::string pseudonym_;
  std::string events_;
  int calls_ = 0;
  int last_index_ = 0;
  bool raw_redacted_ = false;
  std::string raw_mrn_;  ///< The MRN the raw message was last redacted with.
};

}  // namespace vigil::fuzz
