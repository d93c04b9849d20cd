#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "common/key.hpp"
#include "common/result.hpp"

namespace vigil {

/// Keyed state of one subtask in RocksDB. Every RocksDB key is
///   [key group: u16 big-endian][state id: u16 big-endian][encoded key][suffix]
/// so that one key group is one contiguous range (rescaling moves key-group ranges). The
/// suffix is a namespace (value state: 8 bytes, order-preserving int64, e.g. a window end) or a
/// user key (map state). List state appends with a RocksDB merge operator.
///
/// Keyed accessors act on the current key, set with set_current_key() (the runtime sets it
/// before on_timer). Values are opaque bytes; operators encode their own accumulators.
///
/// TTL: a state declared with ttl_us > 0 stores an expiry time with each value; reads treat
/// expired values as absent and a compaction filter deletes them. The TTL clock is the event
/// time (watermark) or the processing time, chosen per state, advanced by the runtime via
/// advance_clocks(). A value of a TTL state may also be written with an explicit expiry time
/// (put_expiring()) instead of clock + ttl; it is then stored, cached, checkpointed and cleaned up
/// exactly like any other TTL value.
///
/// Writes skip the RocksDB WAL: durability comes from checkpoints, not from the WAL.
/// Not thread-safe: used from the one actor that owns the subtask.
class state_backend {
 public:
  enum class kind : uint8_t { value, list, map };
  enum class ttl_clock : uint8_t { event_time, processing_time };
  using state_id = uint16_t;

  struct options {
    std::string directory;                 ///< Created if missing; wiped if `fresh`.
    bool fresh = true;                     ///< Start empty (no restore).
    size_t write_buffer_bytes = 32 << 20;  ///< RocksDB memtable; also the write-back cache limit.
    size_t block_cache_bytes = 16 << 20;
  };

  static result<std::unique_ptr<state_backend>> open(const options& opts);

  /// Rescaling: builds the state directory `target` (which must not exist) for a subtask owning
  /// key groups `range` from the RocksDB directories of the old subtasks in `sources` (restored
  /// from a checkpoint taken with another parallelism): their state registry, which must be the
  /// same in all, and every entry of a key group in `range`. Open the result with fresh = false.
  static status merge_key_groups(const std::vector<std::string>& sources, key_group_range range,
                                 const std::string& target);
  virtual ~state_backend() = default;

  /// Declares a named state and returns its id. Idempotent per name (same kind required).
  /// Ids 0xff00 and above are reserved for the runtime (timers).
  virtual result<state_id> declare(std::string_view name, kind k, int64_t ttl_us = 0,
                                   ttl_clock clock = ttl_clock::event_time) = 0;

  /// Sets the key all keyed accessors below act on. `key` is an encode_key() encoding; the
  /// backend copies it.
  virtual void set_current_key(uint32_t key_group, std::string_view key) = 0;
  virtual uint32_t current_key_group() const = 0;
  virtual std::string_view current_key() const = 0;

  // Value state (with an int64 namespace, 0 when unused).
  /// Reads the value into `out`; false if absent or expired.
  virtual bool get(state_id id, int64_t ns, std::string& out) = 0;
  /// Writes the value; for a state declared with a TTL it expires at the TTL clock's current
  /// time plus the state's ttl (never, if the clock has not advanced yet).
  virtual void put(state_id id, int64_t ns, std::string_view value) = 0;
  /// Writes the value of a state declared with a TTL with an explicit expiry time on the state's
  /// TTL clock instead of clock + ttl: the value is visible while the clock is below
  /// `expires_at_us` and absent once it reaches it (reads, scans and the compaction filter treat
  /// it as any expired TTL value). Before the clock's first advance it is below every time, so
  /// the value is visible unless `expires_at_us` is INT64_MIN. The state's declared ttl plays no
  /// part. For a state declared without a TTL there is nowhere to keep an expiry: that is a
  /// caller bug (asserted in debug builds); release builds write the value as put() does, and it
  /// never expires.
  virtual void put_expiring(state_id id, int64_t ns, std::string_view value,
                            int64_t expires_at_us) = 0;
  virtual void erase(state_id id, int64_t ns) = 0;

  /// A key of prefetch(): its key group and encode_key() encoding.
  struct key_ref {
    uint32_t key_group = 0;
    std::string_view key;
  };
  /// Reads the values of value state `id` at namespace `ns` for `keys` ahead of their get()s, in
  /// one batched read of whatever the backend does not hold in memory (an operator that looks
  /// up one key per record calls it once per batch). A hint only: every get() returns what it
  /// would have returned without it. Keys may repeat; the current key is unchanged.
  virtual void prefetch(state_id id, int64_t ns, std::span<const key_ref> keys) = 0;

  // Map state.
  virtual bool map_get(state_id id, std::string_view user_key, std::string& out) = 0;
  virtual void map_put(state_id id, std::string_view user_key, std::string_view value) = 0;
  /// map_put() of a user key the caller knows has no entry for the current key (map_get()
  /// would return false), e.g. because it keeps an exact in-memory index of the map. The backend
  /// may skip work on that premise: the RocksDB backend writes nothing at all for an entry
  /// that is erased again before it would have reached RocksDB. Calling it for a user key that
  /// has an entry is a caller bug (the old entry may survive a later map_erase()).
  virtual void map_put_new(state_id id, std::string_view user_key, std::string_view value) {
    map_put(id, user_key, value);
  }
  virtual void map_erase(state_id id, std::string_view user_key) = 0;
  /// Calls fn(user_key, value) for every live entry of the current key in user-key order;
  /// stops early when fn returns false.
  virtual void map_scan(state_id id,
                        const std::function<bool(std::string_view, std::string_view)>& fn) = 0;

  // List state.
  virtual void list_add(state_id id, std::string_view element) = 0;
  /// Calls fn(element) for each element of the current key in insertion order.
  virtual void list_scan(state_id id, const std::function<bool(std::string_view)>& fn) = 0;
  virtual void list_clear(state_id id) = 0;

  /// Scans every (key group, key, namespace or user key, value) of state `id` owned by this
  /// backend, in key-group order. Used by the runtime (e.g. to rebuild timers) and by tests.
  virtual void scan_all(
      state_id id, const std::function<bool(uint32_t key_group, std::string_view key_and_suffix,
                                            std::string_view value)>& fn) = 0;

  /// Advances the TTL clocks (µs). Expired values stop being visible at once.
  virtual void advance_clocks(int64_t event_time_us, int64_t processing_time_us) = 0;

  /// An estimate of the state's size in bytes, for metrics, that writes nothing: RocksDB's live
  /// data and memtables plus the write-back cache (which may also hold copies of stored values).
  virtual uint64_t estimated_size_bytes() = 0;

  /// Forces a flush and compaction (tests of TTL clean-up use it).
  virtual status compact() = 0;

  /// Writes everything (write-back cache, memtables) to SST files and creates a RocksDB
  /// checkpoint of the current state in `dir` (which must not exist): hard links to the
  /// immutable SST files plus copies of the small metadata files. Cheap once flushed. Returns
  /// the RocksDB instance's identity (unique per instance: SST numbers are unique only within
  /// one).
  virtual result<std::string> checkpoint_to(const std::string& dir) = 0;
};

}  // namespace vigil
