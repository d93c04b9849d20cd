#include "tools/replay/replay_messages.hpp"

#include <charconv>
#include <cmath>
#include <ctime>

#include "operators/connectors/json_format.hpp"

namespace vigil::replay {
namespace {

void append_int(std::string& out, int64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

/// The shortest text that reads back as `v` (v is finite: NaN cells are never written).
void append_number(std::string& out, double v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

/// HL7 DTM with an explicit UTC zone: YYYYMMDDHHMMSS+0000 (sub-second parts are dropped; event
/// times are whole hours after a whole-second base time).
void append_hl7_time(std::string& out, int64_t us) {
  const int64_t secs = us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000);
  const auto t = static_cast<std::time_t>(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  const size_t n = std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S+0000", &tm);
  out.append(buf, n);
}

bool measured(const psv_row& row, size_t column) {
  return !std::isnan(row.values[column]);
}

std::string_view category_code(column_category c) {
  return c == column_category::vital_signs ? "vital-signs" : "laboratory";
}

/// The start of field `n` (1-based, after its separator) of the segment starting at `seg`, or
/// npos.
size_t field_start(const std::string& msg, size_t seg, int n) {
  size_t pos = seg;
  for (int i = 0; i < n; ++i) {
    pos = msg.find('|', pos);
    if (pos == std::string::npos || msg.find('\r', seg) < pos) return std::string::npos;
    ++pos;
  }
  return pos;
}

}  // namespace

void append_encounter_id(std::string& out, std::string_view patient) {
  out.append(patient);
  out.append("-icu");
}

void append_row_message_id(std::string& out, std::string_view patient, int64_t iculos) {
  out.append(patient);
  out.push_back('-');
  append_int(out, iculos);
}

void append_observation_id(std::string& out, std::string_view patient, int64_t iculos,
                           size_t column) {
  append_row_message_id(out, patient, iculos);
  out.push_back('-');
  out.append(replay_columns[column].loinc);
}

size_t measured_count(const psv_row& row) {
  size_t n = 0;
  for (size_t c = 0; c < replay_column_count; ++c) n += measured(row, c) ? 1 : 0;
  return n;
}

void append_hl7_row(std::string& out, const row_ref& r) {
  out.append("MSH|^~\\&|VIGIL_REPLAY|PHYSIONET2019|VIGIL|ICU|");
  append_hl7_time(out, r.event_time);
  out.append("||ORU^R01^ORU_R01|");
  append_row_message_id(out, r.patient, r.row->iculos);
  out.append("|P|2.5\rPID|1||");
  out.append(r.patient);
  out.append("^^^PHYSIONET^MR\rPV1|1|I|ICU||||||||||||||||");  // PV1-19 follows.
  append_encounter_id(out, r.patient);
  out.append("\rOBR|1||");
  append_row_message_id(out, r.patient, r.row->iculos);
  out.append("^VIGIL_REPLAY|85353-1^Vital signs panel^LN|||");
  append_hl7_time(out, r.event_time);
  out.push_back('\r');
  int index = 0;
  for (size_t c = 0; c < replay_column_count; ++c) {
    if (!measured(*r.row, c)) continue;
    const replay_column& col = replay_columns[c];
    out.append("OBX|");
    append_int(out, ++index);
    out.append("|NM|");
    out.append(col.loinc);
    out.push_back('^');
    out.append(col.display);
    out.append("^LN||");
    append_number(out, r.row->values[c]);
    out.push_back('|');
    out.append(col.ucum);
    out.push_back('^');
    out.append(col.ucum);
    out.append("^UCUM|||||F|||");
    append_hl7_time(out, r.event_time);
    out.push_back('\r');
  }
}

void append_fhir_observation(std::string& out, const row_ref& r, size_t column) {
  const replay_column& col = replay_columns[column];
  out.append(R"({"resourceType":"Observation","id":")");
  append_observation_id(out, r.patient, r.row->iculos, column);
  out.append(R"(","status":"final","category":[{"coding":[{"system":")"
             R"(http://terminology.hl7.org/CodeSystem/observation-category","code":")");
  out.append(category_code(col.category));
  out.append(R"("}]}],"code":{"coding":[{"system":"http://loinc.org","code":")");
  out.append(col.loinc);
  out.append(R"(","display":)");
  append_json_string(out, col.display);
  out.append(R"(}]},"subject":{"reference":"Patient/)");
  out.append(r.patient);
  out.append(R"("},"encounter":{"reference":"Encounter/)");
  append_encounter_id(out, r.patient);
  out.append(R"("},"effectiveDateTime":")");
  append_timestamp_iso(out, r.event_time);
  out.append(R"(","valueQuantity":{"value":)");
  append_number(out, r.row->values[column]);
  out.append(R"(,"unit":")");
  out.append(col.ucum);
  out.append(R"(","system":"http://unitsofmeasure.org","code":")");
  out.append(col.ucum);
  out.append(R"("}})");
}

void append_fhir_bundle(std::string& out, const row_ref& r) {
  out.append(R"({"resourceType":"Bundle","id":")");
  append_row_message_id(out, r.patient, r.row->iculos);
  out.append(R"(","type":"collection","timestamp":")");
  append_timestamp_iso(out, r.event_time);
  out.append(R"(","entry":[)");
  bool first = true;
  for (size_t c = 0; c < replay_column_count; ++c) {
    if (!measured(*r.row, c)) continue;
    if (!first) out.push_back(',');
    first = false;
    out.append(R"({"resource":)");
    append_fhir_observation(out, r, c);
    out.push_back('}');
  }
  out.append("]}");
}

void make_malformed(std::string& msg, message_format format, malformed_kind kind) {
  if (format == message_format::hl7) {
    switch (kind) {
      case malformed_kind::truncated:
        // Cut inside MSH, before MSH-9 and MSH-10.
        msg.resize(std::min(msg.size(), msg.find('\r') / 2));
        return;
      case malformed_kind::bad_delimiter:
        msg[4] = 'A';  // MSH-2's component separator must not be alphanumeric.
        return;
      case malformed_kind::non_numeric: {
        const size_t obx = msg.find("\rOBX|");
        const size_t value = obx == std::string::npos ? obx : field_start(msg, obx + 1, 5);
        if (value == std::string::npos) return msg.resize(msg.find('\r') / 2);
        msg.insert(value, "n/a ");
        return;
      }
    }
  }
  switch (kind) {
    case malformed_kind::truncated:
      msg.resize(msg.size() / 2);
      return;
    case malformed_kind::bad_delimiter:
      msg[msg.find(':')] = '=';
      return;
    case malformed_kind::non_numeric: {
      constexpr std::string_view key = R"("valueQuantity":{"value":)";
      const size_t at = msg.find(key) + key.size();
      msg.insert(msg.find(',', at), "\"");
      msg.insert(at, "\"");
      return;
    }
  }
}

}  // namespace vigil::replay
