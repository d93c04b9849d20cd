#pragma once

#include "runtime/operator.hpp"

namespace vigil {

/// Registers the keyed event-time window operators (Flink's window semantics):
///  - tumbling_window: windows [offset + k*size, offset + (k+1)*size); config `size`, `offset`.
///  - sliding_window: windows of `size` starting every `slide` (at offset + k*slide); a record
///    belongs to every window that contains it; config `size`, `slide`, `offset`.
///  - session_window: per key, records less than `gap` apart form a session
///    [first event time, last event time + gap); a record whose [t, t + gap) overlaps two
///    sessions merges them (records exactly `gap` apart start a new session); config `gap`.
/// All take `aggregates` (see parse_aggregates) and `allowed_lateness` (default: the graph's),
/// read keyed input port "in" and write two ports:
///  - "out": one row per key and window: the key fields (input names and types, in key order),
///    window_start and window_end (timestamps), then the aggregates in config order; event time
///    window_end - 1 µs; keyed on the key fields.
///  - "late": input rows too late for every window they belong to, unchanged (input schema and
///    keys), counted in operator_context::late_records.
///
/// Time: a window fires when the watermark reaches window_end - 1 and is cleaned up when it
/// reaches window_end - 1 + allowed_lateness. A record is late when all its windows are cleaned
/// up (for tumbling windows: window_end - 1 + allowed_lateness <= watermark); a record for a
/// window that fired but is not cleaned up updates it and the window fires again at once (one
/// updated row per window per input batch). Empty windows produce nothing.
void register_window_operators(operator_registry& r);

}  // namespace vigil
