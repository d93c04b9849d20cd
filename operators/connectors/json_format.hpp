#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/record_batch.hpp"

/// JSON text for record batches and ISO-8601 timestamps, shared by the connectors (the stdout and
/// jsonl_file sinks write rows with it; the file source parses timestamps with it).

namespace vigil {

/// Appends `us` (µs since the epoch, UTC) as ISO-8601 with a 'Z' zone:
/// "2026-01-01T00:00:10Z". A fraction is added only when non-zero, with 3 digits when the value
/// is a whole number of milliseconds ("...:10.250Z") and 6 digits otherwise ("...:10.000001Z").
/// Years outside 0000..9999 are written with a sign and as many digits as needed.
void append_timestamp_iso(std::string& out, int64_t us);

/// append_timestamp_iso() into a new string.
std::string format_timestamp_iso(int64_t us);

/// Parses an ISO-8601 / RFC 3339 timestamp into µs since the epoch, UTC:
/// "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DD[T| ]HH:MM[:SS[.fraction]]<zone>" where the zone is
/// "Z" or an offset "+hh:mm", "+hhmm" or "+hh" (or '-'). The zone is required with a time of day,
/// so that a local time is never silently read as UTC. Fraction digits beyond microseconds are
/// truncated. Returns nullopt for anything else, including out-of-range fields (month 13,
/// February 30, hour 24, second 60).
std::optional<int64_t> parse_timestamp_iso(std::string_view text);

/// Appends `s` as a JSON string literal (with quotes). Control characters, '"' and '\' are
/// escaped; bytes that are not well-formed UTF-8 are replaced by U+FFFD so the output is always
/// valid JSON.
void append_json_string(std::string& out, std::string_view s);

/// Appends `v` with the shortest text that reads back as the same double (std::to_chars).
/// NaN and infinities have no JSON form and are written as null.
void append_json_double(std::string& out, double v);

/// Appends the value at `row` of `col` as a JSON value: null, true/false, an integer, a double
/// (append_json_double), a string, or a timestamp as an ISO-8601 string.
void append_json_value(std::string& out, const column& col, size_t row);

/// Appends row `row` of `batch` as one JSON object (no newline): field names are the keys, in
/// schema order. With `include_event_time`, the row's event time is added last as
/// "_event_time" (an ISO-8601 string).
void append_json_row(std::string& out, const record_batch& batch, size_t row,
                     bool include_event_time);

}  // namespace vigil
