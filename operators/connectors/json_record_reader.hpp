#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/record_batch.hpp"
#include "common/types.hpp"

/// Turns text records (JSON objects, CSV cells) into rows of a declared schema, with a reason a
/// pipeline author can act on for every record that cannot become a row. Shared by the sources
/// that read JSON or CSV (file_source, kafka_source).

namespace vigil {

/// Values quoted in error reasons are cut to this many bytes.
inline constexpr size_t reason_quote_limit = 64;

/// `s` in double quotes, cut to reason_quote_limit bytes (then "..."), for error reasons.
std::string quoted_for_reason(std::string_view s);

/// The value of one field of the record being read, kept until the whole record is known to be
/// valid, so that a bad record leaves no partial row in the output columns.
struct staged_value {
  bool present = false;  ///< The record has this field (possibly null).
  bool null = false;
  bool b = false;
  int64_t i = 0;  ///< int64 values and timestamps (µs).
  double d = 0;
  uint32_t str_offset = 0;  ///< String values: where they are in the stager's string buffer.
  uint32_t str_length = 0;
};

/// Stages the typed values of one record and appends the record to a batch only once all of them
/// are valid. Reasons name the field: "field 'hr': expected int64, got \"x\"". Buffers are reused
/// from record to record: staging allocates only when a record is larger than any before.
class record_stager {
 public:
  /// `event_time_index` is the timestamp field that gives a record's event time, or -1 when the
  /// caller supplies the event time to commit(). `epoch_unit_us` scales timestamps written as
  /// numbers (1000: milliseconds since the epoch).
  record_stager(schema_ptr schema, int event_time_index, int64_t epoch_unit_us);

  const schema& record_schema() const { return *schema_; }

  /// Starts a new record: forgets the staged values and the reason.
  void begin();

  /// The staged value of field `idx`.
  staged_value& value(size_t idx) { return staged_[idx]; }

  /// Stages string `s` as the value of field `idx` (the caller sets present/null).
  void stage_string(size_t idx, std::string_view s);

  /// Parses a timestamp written as text (ISO-8601 with a zone, or a number in the epoch unit)
  /// for field `idx`. False with reason() set if it is neither or out of range.
  bool timestamp_from_text(size_t idx, std::string_view text, int64_t& us);
  /// Converts an integer in the epoch unit to µs. False if out of range.
  bool epoch_int_to_us(size_t idx, int64_t v, int64_t& us);
  /// Converts a number in the epoch unit to µs (rounded). False if out of range.
  bool epoch_double_to_us(size_t idx, double v, int64_t& us);

  /// Refuses the current record with `reason`; returns false so callers can `return fail(...)`.
  bool fail(std::string reason);
  /// "field '<name>': ", the start of a reason about field `idx`.
  std::string field_prefix(size_t idx) const;

  /// Checks the staged record (non-nullable fields present, event time set) and appends it to
  /// `out`. Its event time is the event-time field's value or, without one, `fallback_event_time`,
  /// which must be in range (event_time_in_range). False with reason() set if refused.
  bool commit(batch_builder& out, int64_t fallback_event_time);

  /// The event time of the record last committed.
  int64_t event_time() const { return event_time_; }
  /// Why the current record was refused.
  const std::string& reason() const { return reason_; }

 private:
  schema_ptr schema_;
  int event_time_index_;
  int64_t epoch_unit_us_;
  std::vector<staged_value> staged_;
  std::string strings_;  ///< Staged string values of the current record.
  std::string reason_;
  int64_t event_time_ = 0;
};

/// Reads one JSON object per record into rows of a schema: fields not in the schema are ignored,
/// the whole text must be valid JSON (values of ignored fields included) with nothing after the
/// object. Types: bool ← true/false; int64 ← integers; double ← any number; string ← strings;
/// timestamp ← an ISO-8601 string with a zone, or a number (or numeric string) in the epoch unit.
/// A record with a wrong type, a null in a non-nullable field, a missing non-nullable field, a
/// duplicate field or an event time beyond ±max_event_time_us is refused with a reason.
class json_record_reader : public record_stager {
 public:
  json_record_reader(schema_ptr schema, int event_time_index, int64_t epoch_unit_us);
  ~json_record_reader();
  json_record_reader(const json_record_reader&) = delete;
  json_record_reader& operator=(const json_record_reader&) = delete;

  /// Starts a record and stages the fields of the JSON object `text`. False with reason() set.
  bool stage_json(std::string_view text);

  /// stage_json() then commit(): appends `text` as a row of `out`, or returns false with
  /// reason() set and `out` unchanged.
  bool read(std::string_view text, batch_builder& out, int64_t fallback_event_time) {
    return stage_json(text) && commit(out, fallback_event_time);
  }

 private:
  struct parser_state;
  std::unique_ptr<parser_state> parser_;
};

}  // namespace vigil
