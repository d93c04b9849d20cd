#include "operators/clinical/fhir_parser.hpp"

#include <simdjson.h>

#include <cstring>
#include <vector>

#include "operators/connectors/json_format.hpp"

namespace vigil::clinical {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr std::string_view loinc_system = "http://loinc.org";

/// Member `key` of `obj` as a string, or empty when absent or not a string.
std::string_view string_member(object obj, std::string_view key) {
  std::string_view s;
  if (obj[key].get_string().get(s)) return {};
  return s;
}

/// Member `key` of `obj` as an object.
std::optional<object> object_member(object obj, std::string_view key) {
  object o;
  if (obj[key].get_object().get(o)) return std::nullopt;
  return o;
}

/// The id part of a reference "<type>/<id>", or of a `identifier.value`.
std::string_view reference_id(object obj, std::string_view key, std::string_view type) {
  const std::optional<object> ref = object_member(obj, key);
  if (!ref) return {};
  const std::string_view r = string_member(*ref, "reference");
  if (r.size() > type.size() + 1 && r.substr(0, type.size()) == type && r[type.size()] == '/') {
    return r.substr(type.size() + 1);
  }
  if (const std::optional<object> ident = object_member(*ref, "identifier")) {
    return string_member(*ident, "value");
  }
  return {};
}

bool known_status(std::string_view s) {
  static constexpr std::string_view statuses[] = {"registered",       "preliminary", "final",
                                                  "amended",          "corrected",   "cancelled",
                                                  "entered-in-error", "unknown"};
  for (std::string_view k : statuses) {
    if (k == s) return true;
  }
  return false;
}

}  // namespace

struct fhir_parser::impl {
  simdjson::dom::parser parser;
  std::vector<char> buffer;
  std::string what;
  std::string detail;
  int index = 0;

  void refuse(observation_sink& sink, int i, std::string_view patient, ingest_errc code,
              std::string_view id) {
    detail.assign("observation #");
    detail.append(std::to_string(i));
    if (!id.empty()) {
      detail.append(" (");
      detail.append(id.substr(0, 128));
      detail.append(")");
    }
    detail.append(": ");
    detail.append(what);
    sink.refused(i, patient, code, detail);
  }

  /// Reads the LOINC code of `code_parent` (an Observation or a component) into `code`.
  std::optional<ingest_errc> loinc_of(object code_parent, std::string_view& code) {
    const std::optional<object> cc = object_member(code_parent, "code");
    simdjson::dom::array codings;
    if (!cc || (*cc)["coding"].get_array().get(codings) || codings.size() == 0) {
      what = "code.coding is missing or empty";
      return ingest_errc::missing_code;
    }
    for (element c : codings) {
      object co;
      if (c.get_object().get(co)) continue;
      if (string_member(co, "system") == loinc_system) {
        code = string_member(co, "code");
        if (code.empty()) break;
        return std::nullopt;
      }
    }
    what = "code.coding has no code of system http://loinc.org";
    return ingest_errc::not_loinc;
  }

  /// Reads valueQuantity of `parent` into obs.value and obs.unit.
  std::optional<ingest_errc> quantity_of(object parent, observation_ref& obs) {
    const std::optional<object> q = object_member(parent, "valueQuantity");
    if (!q) {
      for (auto kv : parent) {
        if (kv.key.substr(0, 5) == "value") {
          what = "value[x] is ";
          what.append(kv.key);
          what.append(", expected valueQuantity");
          return ingest_errc::non_numeric_value;
        }
      }
      what = "no valueQuantity";
      return ingest_errc::missing_value;
    }
    double v = 0;
    element ve;
    if ((*q)["value"].get(ve)) {
      what = "valueQuantity.value is missing";
      return ingest_errc::missing_value;
    }
    if (ve.get_double().get(v)) {
      what = "valueQuantity.value is not a number";
      return ingest_errc::non_numeric_value;
    }
    obs.value = v;
    obs.unit = string_member(*q, "code");
    if (obs.unit.empty()) obs.unit = string_member(*q, "unit");
    return std::nullopt;
  }

  void observation(object o, observation_sink& sink) {
    const int first = ++index;
    observation_ref obs;
    obs.message_id = string_member(o, "id");
    obs.patient = reference_id(o, "subject", "Patient");
    obs.encounter = reference_id(o, "encounter", "Encounter");
    obs.index = first;
    simdjson::dom::array components;
    const bool has_components =
        !o["component"].get_array().get(components) && components.size() > 0;
    // Components are numbered after their Observation even when it is refused.
    const auto refuse_all = [&](ingest_errc code) {
      refuse(sink, first, obs.patient, code, obs.message_id);
      if (has_components) index += static_cast<int>(components.size());
    };
    if (obs.message_id.empty()) {
      what = "id is missing";
      return refuse_all(ingest_errc::missing_message_id);
    }
    if (obs.patient.empty()) {
      what = "subject has neither a Patient/<id> reference nor an identifier value";
      return refuse_all(ingest_errc::missing_patient);
    }
    obs.status = string_member(o, "status");
    if (obs.status.empty()) {
      what = "status is missing";
      return refuse_all(ingest_errc::missing_status);
    }
    if (!known_status(obs.status)) {
      what = "status '";
      what.append(obs.status.substr(0, 32));
      what.append("' is not an ObservationStatus");
      return refuse_all(ingest_errc::unknown_status);
    }
    std::string_view when = string_member(o, "effectiveDateTime");
    const char* when_name = "effectiveDateTime";
    if (when.empty()) {
      when = string_member(o, "effectiveInstant");
      when_name = "effectiveInstant";
    }
    if (when.empty()) {
      if (const std::optional<object> period = object_member(o, "effectivePeriod")) {
        when = string_member(*period, "start");
        when_name = "effectivePeriod.start";
      }
    }
    if (when.empty()) {
      what = "no effectiveDateTime, effectiveInstant or effectivePeriod.start";
      return refuse_all(ingest_errc::missing_effective_time);
    }
    const std::optional<int64_t> t = parse_timestamp_iso(when);
    if (!t) {
      what = when_name;
      what.append(" '");
      what.append(when.substr(0, 40));
      what.append("' is not an ISO 8601 date-time with a zone");
      return refuse_all(ingest_errc::bad_timestamp);
    }
    obs.event_time = *t;

    bool has_own_value = false;
    for (auto kv : o) {
      if (kv.key.substr(0, 5) == "value") has_own_value = true;
    }
    if (has_own_value || !has_components) {
      observation_ref own = obs;
      if (auto e = loinc_of(o, own.code)) {
        refuse(sink, first, obs.patient, *e, obs.message_id);
      } else if (auto e2 = quantity_of(o, own)) {
        refuse(sink, first, obs.patient, *e2, obs.message_id);
      } else {
        sink.observation(own);
      }
    }
    if (!has_components) return;
    for (element c : components) {
      observation_ref part = obs;
      part.index = ++index;
      object co;
      if (c.get_object().get(co)) {
        what = "component is not an object";
        refuse(sink, part.index, obs.patient, ingest_errc::missing_code, obs.message_id);
        continue;
      }
      if (auto e = loinc_of(co, part.code)) {
        refuse(sink, part.index, obs.patient, *e, obs.message_id);
      } else if (auto e2 = quantity_of(co, part)) {
        refuse(sink, part.index, obs.patient, *e2, obs.message_id);
      } else {
        sink.observation(part);
      }
    }
  }
};

fhir_parser::fhir_parser() : impl_(std::make_unique<impl>()) {}
fhir_parser::~fhir_parser() = default;

std::optional<ingest_errc> fhir_parser::parse(std::string_view document, observation_sink& sink,
                                              std::string& detail) {
  impl& m = *impl_;
  m.index = 0;
  const size_t capacity = document.size() + simdjson::SIMDJSON_PADDING;
  if (m.buffer.size() < capacity) m.buffer.resize(capacity);
  std::memcpy(m.buffer.data(), document.data(), document.size());
  element doc;
  if (auto e = m.parser.parse(m.buffer.data(), document.size(), false).get(doc)) {
    detail = "invalid JSON (";
    detail.append(simdjson::error_message(e));
    detail.append(")");
    return ingest_errc::invalid_json;
  }
  object root;
  if (doc.get_object().get(root)) {
    detail = "the document is not a JSON object";
    return ingest_errc::wrong_resource_type;
  }
  const std::string_view type = string_member(root, "resourceType");
  if (type == "Observation") {
    m.observation(root, sink);
    return std::nullopt;
  }
  if (type != "Bundle") {
    detail = "resourceType '";
    detail.append(type.substr(0, 64));
    detail.append("' is not Observation or Bundle");
    return ingest_errc::wrong_resource_type;
  }
  simdjson::dom::array entries;
  if (root["entry"].get_array().get(entries) || entries.size() == 0) {
    detail = "the Bundle has no entries";
    return ingest_errc::empty_bundle;
  }
  for (element e : entries) {
    object entry;
    object resource;
    if (e.get_object().get(entry) || entry["resource"].get_object().get(resource) ||
        string_member(resource, "resourceType") != "Observation") {
      const int i = ++m.index;
      m.what = "Bundle entry is not an Observation";
      m.refuse(sink, i, {}, ingest_errc::wrong_resource_type, {});
      continue;
    }
    m.observation(resource, sink);
  }
  return std::nullopt;
}

}  // namespace vigil::clinical
