#include "operators/connectors/json_record_reader.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "operators/connectors/json_format.hpp"

namespace vigil {

std::string quoted_for_reason(std::string_view s) {
  std::string out = "\"";
  out.append(s.substr(0, reason_quote_limit));
  if (s.size() > reason_quote_limit) out.append("...");
  out.push_back('"');
  return out;
}

record_stager::record_stager(schema_ptr schema, int event_time_index, int64_t epoch_unit_us)
    : schema_(std::move(schema)),
      event_time_index_(event_time_index),
      epoch_unit_us_(epoch_unit_us),
      staged_(schema_->size()) {}

void record_stager::begin() {
  for (auto& s : staged_) s.present = false;
  strings_.clear();
  reason_.clear();
}

void record_stager::stage_string(size_t idx, std::string_view s) {
  staged_value& v = staged_[idx];
  v.str_offset = static_cast<uint32_t>(strings_.size());
  v.str_length = static_cast<uint32_t>(s.size());
  strings_.append(s);
}

bool record_stager::fail(std::string reason) {
  reason_ = std::move(reason);
  return false;
}

std::string record_stager::field_prefix(size_t idx) const {
  return "field '" + schema_->at(idx).name + "': ";
}

bool record_stager::epoch_int_to_us(size_t idx, int64_t v, int64_t& us) {
  if (__builtin_mul_overflow(v, epoch_unit_us_, &us) || !event_time_in_range(us)) {
    return fail(field_prefix(idx) + "timestamp " + std::to_string(v) + " is out of range");
  }
  return true;
}

bool record_stager::epoch_double_to_us(size_t idx, double v, int64_t& us) {
  const double scaled = v * static_cast<double>(epoch_unit_us_);
  if (!std::isfinite(scaled) || std::fabs(scaled) > static_cast<double>(max_event_time_us)) {
    return fail(field_prefix(idx) + "timestamp out of range");
  }
  us = std::llround(scaled);
  return true;
}

bool record_stager::timestamp_from_text(size_t idx, std::string_view text, int64_t& us) {
  if (auto iso = parse_timestamp_iso(text)) {
    us = *iso;
    return true;
  }
  const char* end = text.data() + text.size();
  int64_t i = 0;
  if (auto [p, ec] = std::from_chars(text.data(), end, i); ec == std::errc() && p == end) {
    return epoch_int_to_us(idx, i, us);
  }
  double d = 0;
  if (auto [p, ec] = std::from_chars(text.data(), end, d); ec == std::errc() && p == end) {
    return epoch_double_to_us(idx, d, us);
  }
  return fail(field_prefix(idx) + "invalid timestamp " + quoted_for_reason(text) +
              " (expected ISO-8601 with a zone, e.g. \"2026-01-01T08:00:00Z\", or a number)");
}

bool record_stager::commit(batch_builder& out, int64_t fallback_event_time) {
  const schema& s = *schema_;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!staged_[i].present) {
      if (!s.at(i).nullable) return fail("missing field '" + s.at(i).name + "'");
      staged_[i].null = true;
    }
  }
  int64_t et = fallback_event_time;
  if (event_time_index_ >= 0) {
    const staged_value& v = staged_[event_time_index_];
    if (v.null) return fail("event time field '" + s.at(event_time_index_).name + "' is null");
    et = v.i;
  }
  for (size_t i = 0; i < s.size(); ++i) {
    const staged_value& v = staged_[i];
    column& col = out.col(i);
    if (v.null) {
      col.push_null();
      continue;
    }
    switch (col.type) {
      case type_id::boolean:
        col.push_bool(v.b);
        break;
      case type_id::int64:
      case type_id::timestamp:
        col.push_int64(v.i);
        break;
      case type_id::float64:
        col.push_float64(v.d);
        break;
      case type_id::string:
        col.push_string(std::string_view(strings_).substr(v.str_offset, v.str_length));
        break;
    }
  }
  out.end_row(et);
  event_time_ = et;
  return true;
}

struct json_record_reader::parser_state {
  simdjson::dom::parser parser;
  std::vector<char> buffer;  ///< The record's text with simdjson's padding.
};

json_record_reader::json_record_reader(schema_ptr schema, int event_time_index,
                                       int64_t epoch_unit_us)
    : record_stager(std::move(schema), event_time_index, epoch_unit_us),
      parser_(std::make_unique<parser_state>()) {}

json_record_reader::~json_record_reader() = default;

namespace {

/// Describes a JSON value for an error reason.
std::string describe(simdjson::dom::element v) {
  switch (v.type()) {
    case simdjson::dom::element_type::OBJECT:
      return "an object";
    case simdjson::dom::element_type::ARRAY:
      return "an array";
    default: {
      const std::string text = simdjson::to_string(v);
      if (text.size() <= reason_quote_limit) return text;
      return text.substr(0, reason_quote_limit) + "...";
    }
  }
}

/// Stages JSON value `v` as field `idx` of `st`.
bool stage_json_value(record_stager& st, size_t idx, simdjson::dom::element v) {
  using simdjson::dom::element_type;
  const field& fd = st.record_schema().at(idx);
  staged_value& s = st.value(idx);
  const element_type t = v.type();
  s.present = true;
  s.null = t == element_type::NULL_VALUE;
  if (s.null) {
    if (!fd.nullable) return st.fail(st.field_prefix(idx) + "null is not allowed");
    return true;
  }
  auto wrong_type = [&] {
    return st.fail(st.field_prefix(idx) + "expected " + std::string(to_string(fd.type)) + ", got " +
                   describe(v));
  };
  switch (fd.type) {
    case type_id::boolean:
      if (t != element_type::BOOL) return wrong_type();
      s.b = v.get_bool().value_unsafe();
      return true;
    case type_id::int64:
      if (t != element_type::INT64) return wrong_type();
      s.i = v.get_int64().value_unsafe();
      return true;
    case type_id::float64:
      if (t != element_type::INT64 && t != element_type::UINT64 && t != element_type::DOUBLE) {
        return wrong_type();
      }
      s.d = v.get_double().value_unsafe();
      return true;
    case type_id::string:
      if (t != element_type::STRING) return wrong_type();
      st.stage_string(idx, v.get_string().value_unsafe());
      return true;
    case type_id::timestamp:
      if (t == element_type::STRING) {
        return st.timestamp_from_text(idx, v.get_string().value_unsafe(), s.i);
      }
      if (t == element_type::INT64)
        return st.epoch_int_to_us(idx, v.get_int64().value_unsafe(), s.i);
      if (t == element_type::UINT64 || t == element_type::DOUBLE) {
        return st.epoch_double_to_us(idx, v.get_double().value_unsafe(), s.i);
      }
      return wrong_type();
  }
  return wrong_type();
}

}  // namespace

bool json_record_reader::stage_json(std::string_view text) {
  begin();
  // The DOM parser validates the whole text, including values of fields that are not in the
  // schema, and refuses trailing content.
  std::vector<char>& buffer = parser_->buffer;
  const size_t capacity = text.size() + simdjson::SIMDJSON_PADDING;
  if (buffer.size() < capacity) buffer.resize(capacity);
  if (!text.empty()) std::memcpy(buffer.data(), text.data(), text.size());
  simdjson::dom::element doc;
  if (auto e = parser_->parser.parse(buffer.data(), text.size(), false).get(doc)) {
    return fail(std::string("invalid JSON (") + simdjson::error_message(e) + ")");
  }
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) return fail("expected a JSON object, got " + describe(doc));
  const schema& s = record_schema();
  for (const simdjson::dom::key_value_pair kv : obj) {
    const int idx = s.index_of(kv.key);
    if (idx < 0) continue;  // Fields not in the schema are ignored.
    if (value(idx).present) return fail("duplicate field '" + std::string(kv.key) + "'");
    if (!stage_json_value(*this, static_cast<size_t>(idx), kv.value)) return false;
  }
  return true;
}

}  // namespace vigil
