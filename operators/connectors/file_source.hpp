#pragma once

#include <memory>

#include "runtime/operator.hpp"

/// `file_source`: replays a JSON-lines or CSV file as a bounded stream.
///
/// The record schema is the node's declared `output_schema:`. Output ports: "out" (records of that
/// schema, event time = the `event_time_field`) and "errors" (line int64, reason string, raw
/// string) for every line that cannot become a record; nothing is dropped silently. The
/// watermark after each poll is (max event time read so far) - max_out_of_orderness - 1µs, so a
/// record at most max_out_of_orderness older than the newest one seen is never late. Runs with
/// parallelism 1 only.

namespace vigil {

/// The schema of the "errors" port: line (1-based line where the record starts), reason, raw
/// (the record's text, truncated to error_raw_limit bytes).
schema_ptr file_source_errors_schema();

inline constexpr size_t error_raw_limit = 65536;

std::unique_ptr<operator_factory> make_file_source_factory();

}  // namespace vigil
