#pragma once

#include <cstdint>
#include <memory>

#include "runtime/operator.hpp"

namespace vigil {

/// `temporal_join`: joins each row of a stream ("left", the probe side) with the version of a
/// versioned table ("right", a changelog of rows per key) that was current at the left row's
/// event time: the right row with the same key and the greatest right.time <= left.time.
/// Keys are compared on their encoded bytes, so both inputs must be keyed with the same number
/// and types of key fields. A left row with a null key field matches nothing; a right row with a
/// null key field is not stored (no left row could match it). A right row with the same key and
/// event time as a stored version replaces it.
///
/// Config:
///   mode               "inner" (default: an unmatched left row is dropped and counted in
///                      temporal_join_stats::unmatched_left_rows) or "left" (an unmatched left
///                      row is emitted with null right fields).
///   max_age            duration, optional: a version matches only if
///                      left.time - right.time <= max_age.
///   allowed_lateness   duration, default: the graph's allowed lateness.
///   right_prefix       string, default "right_".
///
/// Ports: in "left", "right"; out "out", "late" (left schema).
/// Output "out": every left field, then the right fields except the right key fields (renamed
/// with right_prefix when the name is a left field's); in mode "left" the right fields are
/// nullable. Event time: the left row's; keyed on the left key fields.
///
/// Event time (W = the input watermark, A = allowed_lateness): a left row is buffered until
/// W >= left.time, when every right row with time <= left.time has arrived; buffered rows are
/// then emitted in event-time order (ties: key group, key, arrival). On arrival, a left row with
/// left.time + A <= W is late: it goes unchanged to "late" and is counted in late_records. One
/// with W - A < left.time <= W is joined at once with the versions stored then.
/// Right rows are never late: every right row is stored, whatever its time. A right row that
/// arrives after W passed its time therefore does not change left rows already emitted (no
/// retraction); it only affects left rows emitted later (buffered ones and allowed-late ones).
///
/// Retention: per key, versions older than the newest version at or before W - A are dropped
/// (that one is kept) whenever a right row of the key arrives, and for keys that get no more
/// right rows at the end of the 10 s event-time period containing right.time + A (when the
/// version supersedes older ones). With max_age, a version is also dropped once
/// W - A - right.time >= max_age (for idle keys: at the end of the 10 s period containing
/// right.time + A + max_age). Without max_age the newest version of every key is kept forever:
/// it is the table's current row. None of this changes the output: only versions that no left
/// row still to come can join are dropped.
///
/// State: value states "temporal_join.left" (per key, namespace = event time: the buffered left
/// rows of that time as join::append_entry() entries, in arrival order) and
/// "temporal_join.right" (per key, namespace 0: the versions as entries in time order), and
/// event-time timers (namespace 0: emit the left rows at the timer's time, 1: prune versions).
/// Per row: a few point reads and writes of state and one timer registration; no scans.
std::unique_ptr<operator_factory> make_temporal_join_factory();

/// Counters of a running temporal_join instance.
struct temporal_join_stats {
  uint64_t unmatched_left_rows = 0;  ///< Left rows dropped in mode "inner" for lack of a match.
};

/// The counters of `op` if it is a temporal_join instance, else nullptr.
const temporal_join_stats* temporal_join_stats_of(const operator_base& op);

}  // namespace vigil
