#pragma once

#include <memory>

#include "runtime/operator.hpp"

namespace vigil {

/// `interval_join`: Flink's event-time interval join of two keyed streams.
///
/// Emits (l, r) for every left row l and right row r with equal keys and
///   l.time + lower <= r.time <= l.time + upper.
/// Keys are compared on their encoded bytes, so both inputs must be keyed with the same number
/// and types of key fields (in key order). A row with a null key field matches nothing.
///
/// Config:
///   lower, upper       signed durations (required): integer milliseconds or strings such as
///                      "-5m", "30s"; lower <= upper.
///   allowed_lateness   duration, default: the graph's allowed lateness.
///   right_prefix       string, default "right_": prefix of right fields whose name is a left
///                      field's name.
///
/// Ports: in "left", "right"; out "out", "late_left" (left schema), "late_right" (right schema).
/// Output "out": every left field, then every right field (renamed with right_prefix on a name
/// collision), nullability unchanged; event time max(l.time, r.time); keyed on the left key
/// fields (same key hash as both inputs). A pair is emitted as soon as its second row arrives,
/// so pairs come in arrival order, not in event-time order.
///
/// Lateness (W = the operator's input watermark when a row arrives, A = allowed_lateness): a row
/// with time + A <= W is late: it goes unchanged to "late_left"/"late_right", is counted in
/// late_records and joins nothing. Every other row is joined with the buffered rows of the other
/// side, so with A = 0 every emitted pair has a time above the watermark (with A > 0, at most A
/// behind it). A left row stays buffered until W >= l.time + upper + A and a right row until
/// W >= r.time - lower + A (then no non-late row of the other side can match it); a row for
/// which that already holds on arrival is not buffered at all. After the final watermark the
/// state is empty.
///
/// Release granularity: the buffered rows of a key and side are grouped in chunks of at most 32
/// rows spanning at most 30 s of event time. A full chunk is released when its last row may go;
/// a chunk that is not full when its last row may go is released at the end of that 10 s
/// period of event time (bound rounded up to the next multiple of 10 s, minus 1 µs). So at most
/// 31 rows per key and side outlive their bound, by less than 10 s; this never changes the
/// output, and lets rows of a key that arrive further apart than the bound share state entries
/// and timers (the cost of a state entry and a timer is what bounds throughput).
///
/// State (value states, per key): "interval_join.left_chunks" / "interval_join.right_chunks"
/// (namespace 0: the chunk directory, see chunk_directory in join_interval.cpp) and
/// "interval_join.left" / "interval_join.right" (namespace = chunk id: the chunk's rows as
/// join::append_entry() entries, in arrival order); one pending event-time timer per key and
/// side (namespace 0 = left, 1 = right) at the earliest release time of its chunks.
/// Per row: a directory read per side, the reads of the other side's chunks whose time range
/// meets the probe interval, one chunk read and write and one directory write; no scans.
std::unique_ptr<operator_factory> make_interval_join_factory();

}  // namespace vigil
