#pragma once

#include <caf/all.hpp>
#include <string>
#include <type_traits>

#include "common/record_batch.hpp"

/// Wire form of the data-plane messages exchanged between subtasks of different worker
/// processes (CAF remote actors). Local sends never serialize: a batch_ptr sent to an actor of
/// the same actor system is shared, not copied.
///
/// A batch (version 1) is written as:
///   u8 tag            0 = null pointer, 1 = batch in format version 1
///   u32 field count, then per field: string name, u8 type_id, u8 nullable
///   u32 row count
///   u8 flags          bit 0: keyed (a key-hash column follows the event-time column)
///   per column:
///     u8 has_nulls    0: every row is valid (no validity bytes follow); 1: validity follows
///     [rows bytes]    validity, 0 or 1 per row (only when has_nulls)
///     values          int64/timestamp: rows x 8 bytes; float64: rows x 8 bytes;
///                     boolean: rows bytes (0 or 1);
///                     string: (rows + 1) x 4 bytes of offsets (starting at 0, non-decreasing),
///                     then the characters, offsets[rows] bytes
///   rows x 8 bytes    event time (µs UTC)
///   [rows x 8 bytes]  key hash (only when keyed)
/// Scalars go through CAF's serializer (network byte order); value arrays are copied as raw
/// little-endian blobs with one memcpy each. Loading validates every size against the bytes
/// left in the message before allocating, and checks type ids, flags, validity and boolean
/// bytes and string offsets: a corrupt or truncated message yields a caf::error.
namespace vigil {

/// Writes `x` in the wire form above.
caf::error save_batch(caf::serializer& sink, const batch_ptr& x);

/// Reads a batch written by save_batch into `x`. Consecutive batches with an equal schema
/// share one schema object (a per-thread cache of the last decoded schema).
caf::error load_batch(caf::deserializer& source, batch_ptr& x);

/// A short human-readable description ("batch(rows=3, schema=a:int64, b:string?)").
std::string batch_summary(const batch_ptr& x);

/// CAF 0.17 inspection of batch_ptr: binary save/load through save_batch/load_batch, and a
/// summary for CAF's string conversion (logging, deep_to_string).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, batch_ptr& x) {
  if constexpr (std::is_base_of_v<caf::serializer, Inspector>) {
    return save_batch(f, x);
  } else if constexpr (std::is_base_of_v<caf::deserializer, Inspector>) {
    return load_batch(f, x);
  } else {
    return f(caf::meta::type_name("vigil.batch"), batch_summary(x));
  }
}

/// The text of a CAF error: the message of one made with caf::make_error(sec::runtime_error,
/// text) (how Vigil actors refuse requests), otherwise CAF's own rendering.
std::string error_text(const caf::error& err);

/// Registers every data-plane and report message type that crosses process boundaries
/// (vigil.batch, vigil.subtask_stats, vigil.wiring, vigil.subtask_refs). Every actor system of a
/// job, local or distributed, must call this on its config before the system is constructed; the
/// type names must match on both ends of a remote connection.
void add_message_types(caf::actor_system_config& cfg);

/// Sets up the scheduler of a Vigil actor system: `threads` worker threads sharing one job
/// queue (CAF's work-sharing policy). Idle workers block on a condition variable and an enqueue
/// wakes one at once; CAF's default work stealing instead polls with 50 µs and then 10 ms sleeps,
/// which burns a core on an idle stream and delays a message by up to 10 ms per hop
/// (docs/design/0013-scheduling-and-idle-cost.md).
void configure_scheduler(caf::actor_system_config& cfg, size_t threads);

}  // namespace vigil
