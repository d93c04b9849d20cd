#include "operators/connectors/file_source.hpp"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "operators/connectors/csv_record.hpp"
#include "operators/connectors/json_format.hpp"
#include "operators/connectors/line_reader.hpp"

namespace vigil {

namespace {

/// A quoted CSV cell may span lines; a record longer than this is reported as an error (most
/// likely an unterminated quote) instead of reading the rest of the file into memory.
constexpr size_t max_csv_record_bytes = size_t{8} << 20;
/// Values quoted in error reasons are cut to this many bytes.
constexpr size_t max_quoted_value = 64;

enum class file_format { jsonl, csv };

struct file_source_params {
  std::string path;
  file_format format = file_format::jsonl;
  int event_time_index = -1;
  int64_t max_out_of_orderness_us = 0;
  int64_t epoch_unit_us = 1000;
  schema_ptr schema;
  schema_ptr errors_schema;
};

/// The value of one field of the record being read, kept until the whole record is known to be
/// valid, so that a bad record leaves no partial row in the output columns.
struct staged_value {
  bool present = false;
  bool null = false;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  uint32_t str_offset = 0;
  uint32_t str_length = 0;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

/// `s` without leading and trailing spaces, tabs and carriage returns.
std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_blank(std::string_view s) {
  return trim(s).empty();
}

/// `s` in double quotes, cut to max_quoted_value bytes, for error reasons.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  out.append(s.substr(0, max_quoted_value));
  if (s.size() > max_quoted_value) out.append("...");
  out.push_back('"');
  return out;
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != b[i]) return false;
  }
  return true;
}

class file_source final : public operator_base {
 public:
  explicit file_source(const file_source_params& params) : params_(params) {}

  status open(operator_context& ctx) override {
    ctx_ = &ctx;
    VIGIL_TRY(reader_.open(params_.path));
    const size_t fields = params_.schema->size();
    staged_.resize(fields);
    out_ = batch_builder(params_.schema, ctx.batch_size);
    errors_ = batch_builder(params_.errors_schema, 64);
    if (params_.format == file_format::csv) return read_csv_header();
    return {};
  }

  poll_result poll(output& out) override {
    if (done_) return {poll_result::state::finished, 0, max_watermark};
    const size_t limit = std::max<size_t>(1, ctx_->batch_size);
    size_t produced = 0;
    bool at_end = false;
    while (produced < limit) {
      std::string_view line;
      if (!reader_.next(line)) {
        at_end = true;
        break;
      }
      if (is_blank(line)) continue;
      const uint64_t line_number = reader_.line_number();
      raw_ = line;
      reason_.clear();
      const bool ok = params_.format == file_format::csv ? read_csv_record(line) : read_json(line);
      if (ok && commit_row()) {
        ++good_rows_;
      } else {
        push_error(line_number, reason_, raw_);
      }
      ++produced;
    }
    if (at_end && reader_.failed()) {
      push_error(reader_.line_number() + 1, reader_.error_message(), {});
    }
    if (!out_.empty()) out.emit(0, out_.finish());
    if (!errors_.empty()) out.emit(1, errors_.finish());
    if (at_end) {
      done_ = true;
      reader_.close();
      return {poll_result::state::finished, 0, max_watermark};
    }
    if (good_rows_ > 0) {
      int64_t wm = 0;
      if (__builtin_sub_overflow(max_event_time_, params_.max_out_of_orderness_us, &wm) ||
          __builtin_sub_overflow(wm, 1, &wm)) {
        wm = min_watermark;
      }
      watermark_ = std::max(watermark_, wm);
    }
    return {poll_result::state::more, 0, watermark_};
  }

  status close(output& out) override {
    (void)out;
    reader_.close();
    return {};
  }

 private:
  bool fail(std::string reason) {
    reason_ = std::move(reason);
    return false;
  }

  std::string field_prefix(size_t idx) const {
    return "field '" + params_.schema->at(idx).name + "': ";
  }

  void reset_staged() {
    for (auto& s : staged_) s.present = false;
    strings_.clear();
  }

  /// Stages a string value of field `idx`.
  void stage_string(size_t idx, std::string_view s) {
    staged_value& v = staged_[idx];
    v.str_offset = static_cast<uint32_t>(strings_.size());
    v.str_length = static_cast<uint32_t>(s.size());
    strings_.append(s);
  }

  /// Converts an epoch number in epoch_unit to µs.
  bool epoch_int_to_us(size_t idx, int64_t v, int64_t& us) {
    if (__builtin_mul_overflow(v, params_.epoch_unit_us, &us) || !event_time_in_range(us)) {
      return fail(field_prefix(idx) + "timestamp " + std::to_string(v) + " is out of range");
    }
    return true;
  }

  bool epoch_double_to_us(size_t idx, double v, int64_t& us) {
    const double scaled = v * static_cast<double>(params_.epoch_unit_us);
    if (!std::isfinite(scaled) || std::fabs(scaled) > static_cast<double>(max_event_time_us)) {
      return fail(field_prefix(idx) + "timestamp out of range");
    }
    us = std::llround(scaled);
    return true;
  }

  /// A timestamp written as text: ISO-8601, or a number in epoch_unit.
  bool timestamp_from_text(size_t idx, std::string_view text, int64_t& us) {
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
    return fail(field_prefix(idx) + "invalid timestamp " + quoted(text) +
                " (expected ISO-8601 with a zone, e.g. \"2026-01-01T08:00:00Z\", or a number)");
  }

  // --- JSON lines ---

  bool json_fail(simdjson::error_code e) {
    return fail(std::string("invalid JSON (") + simdjson::error_message(e) + ")");
  }

  /// Describes a JSON value for an error reason.
  static std::string describe(simdjson::dom::element v) {
    switch (v.type()) {
      case simdjson::dom::element_type::OBJECT:
        return "an object";
      case simdjson::dom::element_type::ARRAY:
        return "an array";
      default: {
        const std::string text = simdjson::to_string(v);
        if (text.size() <= max_quoted_value) return text;
        return text.substr(0, max_quoted_value) + "...";
      }
    }
  }

  bool wrong_type(size_t idx, simdjson::dom::element v) {
    return fail(field_prefix(idx) + "expected " +
                std::string(to_string(params_.schema->at(idx).type)) + ", got " + describe(v));
  }

  /// Parses one line (the DOM parser validates the whole line, including values of fields that
  /// are not in the schema, and refuses trailing content) and stages its values.
  bool read_json(std::string_view line) {
    reset_staged();
    const size_t capacity = line.size() + simdjson::SIMDJSON_PADDING;
    if (json_buffer_.size() < capacity) json_buffer_.resize(capacity);
    std::memcpy(json_buffer_.data(), line.data(), line.size());
    simdjson::dom::element doc;
    if (auto e = parser_.parse(json_buffer_.data(), line.size(), false).get(doc)) {
      return json_fail(e);
    }
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) return fail("expected a JSON object, got " + describe(doc));
    for (const simdjson::dom::key_value_pair kv : obj) {
      const int idx = params_.schema->index_of(kv.key);
      if (idx < 0) continue;  // Fields not in the schema are ignored.
      if (staged_[idx].present) return fail("duplicate field '" + std::string(kv.key) + "'");
      if (!read_json_value(static_cast<size_t>(idx), kv.value)) return false;
    }
    return true;
  }

  bool read_json_value(size_t idx, simdjson::dom::element v) {
    using simdjson::dom::element_type;
    const field& fd = params_.schema->at(idx);
    staged_value& s = staged_[idx];
    const element_type t = v.type();
    s.present = true;
    s.null = t == element_type::NULL_VALUE;
    if (s.null) {
      if (!fd.nullable) return fail(field_prefix(idx) + "null is not allowed");
      return true;
    }
    switch (fd.type) {
      case type_id::boolean:
        if (t != element_type::BOOL) return wrong_type(idx, v);
        s.b = v.get_bool().value_unsafe();
        return true;
      case type_id::int64:
        if (t != element_type::INT64) return wrong_type(idx, v);
        s.i = v.get_int64().value_unsafe();
        return true;
      case type_id::float64:
        if (t != element_type::INT64 && t != element_type::UINT64 && t != element_type::DOUBLE) {
          return wrong_type(idx, v);
        }
        s.d = v.get_double().value_unsafe();
        return true;
      case type_id::string: {
        if (t != element_type::STRING) return wrong_type(idx, v);
        stage_string(idx, v.get_string().value_unsafe());
        return true;
      }
      case type_id::timestamp:
        if (t == element_type::STRING) {
          return timestamp_from_text(idx, v.get_string().value_unsafe(), s.i);
        }
        if (t == element_type::INT64)
          return epoch_int_to_us(idx, v.get_int64().value_unsafe(), s.i);
        if (t == element_type::UINT64 || t == element_type::DOUBLE) {
          return epoch_double_to_us(idx, v.get_double().value_unsafe(), s.i);
        }
        return wrong_type(idx, v);
    }
    return wrong_type(idx, v);
  }

  // --- CSV ---

  status read_csv_header() {
    std::string_view line;
    if (!reader_.next(line)) {
      if (reader_.failed()) return make_error(errc::io_error, reader_.error_message());
      return make_error(errc::parse_error,
                        "'" + params_.path + "': empty file, a CSV header line is required");
    }
    if (split_csv_record(line, cells_, cell_text_, reason_) != csv_split_result::ok) {
      if (reason_.empty()) reason_ = "unterminated quote";
      return make_error(errc::parse_error,
                        "'" + params_.path + "': invalid CSV header: " + reason_);
    }
    const schema& s = *params_.schema;
    std::vector<bool> covered(s.size(), false);
    column_field_.clear();
    for (const csv_cell& c : cells_) {
      const std::string_view name = trim(std::string_view(cell_text_).substr(c.offset, c.length));
      const int idx = s.index_of(name);
      if (idx < 0) {
        return make_error(errc::parse_error,
                          "'" + params_.path + "': CSV column '" + std::string(name) +
                              "' is not a field of the schema (" + s.to_string() + ")");
      }
      if (covered[idx]) {
        return make_error(errc::parse_error, "'" + params_.path + "': CSV column '" +
                                                 std::string(name) + "' appears twice");
      }
      covered[idx] = true;
      column_field_.push_back(idx);
    }
    for (size_t i = 0; i < s.size(); ++i) {
      if (covered[i]) continue;
      if (!s.at(i).nullable || static_cast<int>(i) == params_.event_time_index) {
        return make_error(
            errc::parse_error,
            "'" + params_.path + "': CSV header has no column for field '" + s.at(i).name + "'");
      }
    }
    return {};
  }

  /// Splits the record starting with `line`, reading more lines while a quoted cell is open, and
  /// stages its values. Sets raw_ to the whole record.
  bool read_csv_record(std::string_view line) {
    reset_staged();
    csv_split_result r = split_csv_record(line, cells_, cell_text_, reason_);
    if (r == csv_split_result::open_quote) {
      record_.assign(line);
      while (r == csv_split_result::open_quote) {
        std::string_view more;
        if (record_.size() > max_csv_record_bytes) {
          raw_ = record_;
          return fail("quoted cell longer than " + std::to_string(max_csv_record_bytes) +
                      " bytes (unterminated quote?)");
        }
        if (!reader_.next(more)) {
          raw_ = record_;
          return fail("unterminated quoted field at the end of the file");
        }
        record_.push_back('\n');
        record_.append(more);
        r = split_csv_record(record_, cells_, cell_text_, reason_);
      }
      raw_ = record_;
    }
    if (r == csv_split_result::error) return false;
    if (cells_.size() != column_field_.size()) {
      return fail("expected " + std::to_string(column_field_.size()) + " columns, got " +
                  std::to_string(cells_.size()));
    }
    for (size_t c = 0; c < cells_.size(); ++c) {
      const csv_cell& cell = cells_[c];
      const std::string_view text = std::string_view(cell_text_).substr(cell.offset, cell.length);
      if (!stage_csv_cell(static_cast<size_t>(column_field_[c]), text, cell.quoted)) return false;
    }
    return true;
  }

  bool stage_csv_cell(size_t idx, std::string_view text, bool was_quoted) {
    const field& fd = params_.schema->at(idx);
    staged_value& s = staged_[idx];
    s.present = true;
    s.null = !was_quoted && text.empty();
    if (s.null) {
      if (!fd.nullable) return fail(field_prefix(idx) + "empty (null) value is not allowed");
      return true;
    }
    if (fd.type == type_id::string) {
      stage_string(idx, text);
      return true;
    }
    const std::string_view t = trim(text);
    const char* end = t.data() + t.size();
    switch (fd.type) {
      case type_id::boolean:
        if (equals_ignore_case(t, "true") || t == "1") {
          s.b = true;
        } else if (equals_ignore_case(t, "false") || t == "0") {
          s.b = false;
        } else {
          return fail(field_prefix(idx) + "expected bool, got " + quoted(text));
        }
        return true;
      case type_id::int64:
        if (auto [p, ec] = std::from_chars(t.data(), end, s.i);
            ec != std::errc() || p != end || t.empty()) {
          return fail(field_prefix(idx) + "expected int64, got " + quoted(text));
        }
        return true;
      case type_id::float64:
        if (auto [p, ec] = std::from_chars(t.data(), end, s.d);
            ec != std::errc() || p != end || t.empty()) {
          return fail(field_prefix(idx) + "expected double, got " + quoted(text));
        }
        return true;
      case type_id::timestamp:
        return timestamp_from_text(idx, t, s.i);
      case type_id::string:
        break;
    }
    return true;
  }

  // --- output ---

  /// Checks the staged record (required fields, event time) and appends it to the output.
  bool commit_row() {
    const schema& s = *params_.schema;
    for (size_t i = 0; i < s.size(); ++i) {
      if (!staged_[i].present) {
        if (!s.at(i).nullable) return fail("missing field '" + s.at(i).name + "'");
        staged_[i].null = true;
      }
    }
    const staged_value& et = staged_[params_.event_time_index];
    if (et.null) {
      return fail("event time field '" + s.at(params_.event_time_index).name + "' is null");
    }
    for (size_t i = 0; i < s.size(); ++i) {
      const staged_value& v = staged_[i];
      column& col = out_.col(i);
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
    out_.end_row(et.i);
    max_event_time_ = good_rows_ == 0 ? et.i : std::max(max_event_time_, et.i);
    return true;
  }

  void push_error(uint64_t line, std::string_view reason, std::string_view raw) {
    errors_.col(0).push_int64(static_cast<int64_t>(line));
    errors_.col(1).push_string(reason);
    errors_.col(2).push_string(raw.substr(0, error_raw_limit));
    errors_.end_row(watermark_ == min_watermark ? 0 : watermark_);
  }

  const file_source_params params_;
  operator_context* ctx_ = nullptr;
  line_reader reader_;
  simdjson::dom::parser parser_;
  std::vector<char> json_buffer_;
  std::vector<staged_value> staged_;
  std::string strings_;            ///< Staged string values of the current record.
  std::vector<csv_cell> cells_;    ///< Cells of the current CSV record.
  std::string cell_text_;          ///< Their unescaped text.
  std::string record_;             ///< A CSV record spanning several lines.
  std::vector<int> column_field_;  ///< CSV column -> schema field.
  std::string_view raw_;           ///< Text of the current record.
  std::string reason_;             ///< Why the current record was refused.
  batch_builder out_;
  batch_builder errors_;
  uint64_t good_rows_ = 0;
  int64_t max_event_time_ = 0;
  int64_t watermark_ = min_watermark;
  bool done_ = false;
};

class file_source_plan final : public operator_plan {
 public:
  file_source_params params;

  std::unique_ptr<operator_base> instantiate() const override {
    return std::make_unique<file_source>(params);
  }
};

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         equals_ignore_case(s.substr(s.size() - suffix.size()), suffix);
}

class file_source_factory final : public operator_factory {
 public:
  file_source_factory() {
    traits_.name = "file_source";
    traits_.output_ports = {"out", "errors"};
    traits_.summary = "Replays a JSON-lines or CSV file; unreadable lines go to port 'errors'";
  }

  const operator_traits& traits() const override { return traits_; }

  result<plan_ptr> plan(const plan_context& ctx) const override {
    config_reader r(*ctx.config);
    auto p = std::make_shared<file_source_plan>();
    file_source_params& fp = p->params;

    auto path = r.required_string("path");
    if (!path) return path.err();
    if (path->empty()) return config_reader::key_error("path", "must not be empty");
    fp.path = *path;

    auto format = r.string_or("format", "");
    if (!format) return format.err();
    if (*format == "jsonl") {
      fp.format = file_format::jsonl;
    } else if (*format == "csv") {
      fp.format = file_format::csv;
    } else if (!format->empty()) {
      return config_reader::key_error("format",
                                      "expected \"jsonl\" or \"csv\", got \"" + *format + "\"");
    } else if (ends_with(fp.path, ".csv")) {
      fp.format = file_format::csv;
    } else if (ends_with(fp.path, ".jsonl") || ends_with(fp.path, ".ndjson") ||
               ends_with(fp.path, ".json")) {
      fp.format = file_format::jsonl;
    } else {
      return config_reader::key_error("format", "required: cannot tell the format from the name '" +
                                                    fp.path + "' (use \"jsonl\" or \"csv\")");
    }

    auto et_field = r.required_string("event_time_field");
    if (!et_field) return et_field.err();

    auto ooo = r.duration_us_or("max_out_of_orderness", 0);
    if (!ooo) return ooo.err();
    fp.max_out_of_orderness_us = *ooo;

    auto unit = r.string_or("epoch_unit", "ms");
    if (!unit) return unit.err();
    if (*unit == "us") {
      fp.epoch_unit_us = 1;
    } else if (*unit == "ms") {
      fp.epoch_unit_us = 1000;
    } else if (*unit == "s") {
      fp.epoch_unit_us = 1'000'000;
    } else {
      return config_reader::key_error("epoch_unit",
                                      "expected \"us\", \"ms\" or \"s\", got \"" + *unit + "\"");
    }

    if (auto st = r.finish(); !st) return st.err();

    if (ctx.declared_output == nullptr || ctx.declared_output->size() == 0) {
      return make_error(
          errc::invalid_graph,
          "output_schema: required for file_source (the fields of the file's records)");
    }
    fp.schema = ctx.declared_output;
    fp.event_time_index = fp.schema->index_of(*et_field);
    if (fp.event_time_index < 0) {
      return config_reader::key_error(
          "event_time_field",
          "no field '" + *et_field + "' in the schema (" + fp.schema->to_string() + ")");
    }
    if (fp.schema->at(fp.event_time_index).type != type_id::timestamp) {
      return config_reader::key_error(
          "event_time_field", "field '" + *et_field + "' must have type timestamp, not " +
                                  std::string(to_string(fp.schema->at(fp.event_time_index).type)));
    }
    if (ctx.parallelism > 1) {
      return make_error(errc::invalid_graph,
                        "file_source reads a single file and needs parallelism 1 (got " +
                            std::to_string(ctx.parallelism) + ")");
    }
    fp.errors_schema = file_source_errors_schema();
    p->outputs.push_back(stream_info{fp.schema, {}});
    p->outputs.push_back(stream_info{fp.errors_schema, {}});
    return plan_ptr(std::move(p));
  }

 private:
  operator_traits traits_;
};

}  // namespace

schema_ptr file_source_errors_schema() {
  static const schema_ptr s = make_schema({
      {"line", type_id::int64, false},
      {"reason", type_id::string, false},
      {"raw", type_id::string, false},
  });
  return s;
}

std::unique_ptr<operator_factory> make_file_source_factory() {
  return std::make_unique<file_source_factory>();
}

}  // namespace vigil
