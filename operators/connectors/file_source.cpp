#include "operators/connectors/file_source.hpp"

#include <algorithm>
#include <charconv>

#include "operators/connectors/csv_record.hpp"
#include "operators/connectors/json_format.hpp"
#include "operators/connectors/json_record_reader.hpp"
#include "operators/connectors/line_reader.hpp"

namespace vigil {

namespace {

/// A quoted CSV cell may span lines; a record longer than this is reported as an error (most
/// likely an unterminated quote) instead of reading the rest of the file into memory.
constexpr size_t max_csv_record_bytes = size_t{8} << 20;

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
  explicit file_source(const file_source_params& params)
      : params_(params), reader_(params.schema, params.event_time_index, params.epoch_unit_us) {}

  status open(operator_context& ctx) override {
    ctx_ = &ctx;
    VIGIL_TRY(lines_.open(params_.path));
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
      if (!lines_.next(line)) {
        at_end = true;
        break;
      }
      if (is_blank(line)) continue;
      const uint64_t line_number = lines_.line_number();
      raw_ = line;
      const bool ok =
          params_.format == file_format::csv ? read_csv_record(line) : reader_.stage_json(line);
      if (ok && reader_.commit(out_, 0)) {
        max_event_time_ = good_rows_ == 0 ? reader_.event_time()
                                          : std::max(max_event_time_, reader_.event_time());
        ++good_rows_;
      } else {
        push_error(line_number, reader_.reason(), raw_);
      }
      ++produced;
    }
    if (at_end && lines_.failed()) {
      push_error(lines_.line_number() + 1, lines_.error_message(), {});
    }
    if (!out_.empty()) out.emit(0, out_.finish());
    if (!errors_.empty()) out.emit(1, errors_.finish());
    if (at_end) {
      done_ = true;
      lines_.close();
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
    lines_.close();
    return {};
  }

  /// {"path": the file, "lines": lines read, "records": good records emitted}.
  std::string position_json() const override {
    std::string out = "{\"path\":";
    append_json_string(out, params_.path);
    out += ",\"lines\":" + std::to_string(lines_.line_number()) +
           ",\"records\":" + std::to_string(good_rows_) + "}";
    return out;
  }

 private:
  // --- CSV ---

  status read_csv_header() {
    std::string_view line;
    if (!lines_.next(line)) {
      if (lines_.failed()) return make_error(errc::io_error, lines_.error_message());
      return make_error(errc::parse_error,
                        "'" + params_.path + "': empty file, a CSV header line is required");
    }
    if (split_csv_record(line, cells_, cell_text_, split_reason_) != csv_split_result::ok) {
      if (split_reason_.empty()) split_reason_ = "unterminated quote";
      return make_error(errc::parse_error,
                        "'" + params_.path + "': invalid CSV header: " + split_reason_);
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
    reader_.begin();
    csv_split_result r = split_csv_record(line, cells_, cell_text_, split_reason_);
    if (r == csv_split_result::open_quote) {
      record_.assign(line);
      while (r == csv_split_result::open_quote) {
        std::string_view more;
        if (record_.size() > max_csv_record_bytes) {
          raw_ = record_;
          return reader_.fail("quoted cell longer than " + std::to_string(max_csv_record_bytes) +
                              " bytes (unterminated quote?)");
        }
        if (!lines_.next(more)) {
          raw_ = record_;
          return reader_.fail("unterminated quoted field at the end of the file");
        }
        record_.push_back('\n');
        record_.append(more);
        r = split_csv_record(record_, cells_, cell_text_, split_reason_);
      }
      raw_ = record_;
    }
    if (r == csv_split_result::error) return reader_.fail(split_reason_);
    if (cells_.size() != column_field_.size()) {
      return reader_.fail("expected " + std::to_string(column_field_.size()) + " columns, got " +
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
    staged_value& s = reader_.value(idx);
    s.present = true;
    s.null = !was_quoted && text.empty();
    if (s.null) {
      if (!fd.nullable)
        return reader_.fail(reader_.field_prefix(idx) + "empty (null) value is not allowed");
      return true;
    }
    if (fd.type == type_id::string) {
      reader_.stage_string(idx, text);
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
          return reader_.fail(reader_.field_prefix(idx) + "expected bool, got " +
                              quoted_for_reason(text));
        }
        return true;
      case type_id::int64:
        if (auto [p, ec] = std::from_chars(t.data(), end, s.i);
            ec != std::errc() || p != end || t.empty()) {
          return reader_.fail(reader_.field_prefix(idx) + "expected int64, got " +
                              quoted_for_reason(text));
        }
        return true;
      case type_id::float64:
        if (auto [p, ec] = std::from_chars(t.data(), end, s.d);
            ec != std::errc() || p != end || t.empty()) {
          return reader_.fail(reader_.field_prefix(idx) + "expected double, got " +
                              quoted_for_reason(text));
        }
        return true;
      case type_id::timestamp:
        return reader_.timestamp_from_text(idx, t, s.i);
      case type_id::string:
        break;
    }
    return true;
  }

  // --- output ---

  void push_error(uint64_t line, std::string_view reason, std::string_view raw) {
    errors_.col(0).push_int64(static_cast<int64_t>(line));
    errors_.col(1).push_string(reason);
    errors_.col(2).push_string(raw.substr(0, error_raw_limit));
    errors_.end_row(watermark_ == min_watermark ? 0 : watermark_);
  }

  const file_source_params params_;
  operator_context* ctx_ = nullptr;
  line_reader lines_;
  json_record_reader reader_;      ///< Parses JSON lines; stages CSV records too.
  std::vector<csv_cell> cells_;    ///< Cells of the current CSV record.
  std::string cell_text_;          ///< Their unescaped text.
  std::string record_;             ///< A CSV record spanning several lines.
  std::vector<int> column_field_;  ///< CSV column -> schema field.
  std::string_view raw_;           ///< Text of the current record.
  std::string split_reason_;       ///< Why a CSV record could not be split into cells.
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
