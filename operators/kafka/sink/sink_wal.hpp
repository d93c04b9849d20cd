#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

/// The kafka_sink's write-ahead log: the encoded messages of each epoch, held until the epoch's
/// checkpoint is complete and the epoch is committed to Kafka, and part of every checkpoint
/// until then.

namespace vigil::kafka {

/// The messages of one epoch: keys and values back to back in one buffer, plus their sizes.
class wal_epoch {
 public:
  /// One message: its key (if any) then its value, at the running offset in data().
  struct entry {
    uint32_t key_size = 0;
    uint32_t value_size = 0;
    bool has_key = false;
  };

  int64_t epoch = 0;
  /// Committed when the input ended (see progress_marker::final); never checkpointed.
  bool final = false;

  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::string& data() const { return data_; }
  const std::vector<entry>& entries() const { return entries_; }

  /// Appending a message: begin_key() (optional), append the key's bytes to buffer(), then
  /// begin_value(), append the value's bytes, then end_message(). No allocation beyond the
  /// buffers' growth.
  std::string& buffer() { return data_; }
  void begin_key() { key_start_ = data_.size(); }
  void begin_value() { value_start_ = data_.size(); }
  void end_message();

  /// Calls f(key, value) for every message in order until f returns false; key is nullopt for
  /// messages without one. Returns false if f did.
  template <class F>
  bool for_each(F&& f) const {
    size_t at = 0;
    std::string_view all = data_;
    for (const entry& e : entries_) {
      std::optional<std::string_view> key;
      if (e.has_key) key = all.substr(at, e.key_size);
      at += e.key_size;
      if (!f(key, all.substr(at, e.value_size))) return false;
      at += e.value_size;
    }
    return true;
  }

  /// Used by decode_sink_state.
  void assign(std::string data, std::vector<entry> entries) {
    data_ = std::move(data);
    entries_ = std::move(entries);
  }

 private:
  std::string data_;
  std::vector<entry> entries_;
  size_t key_start_ = SIZE_MAX;  ///< SIZE_MAX: the current message has no key.
  size_t value_start_ = 0;
};

/// Everything a kafka_sink checkpoints.
struct sink_state {
  /// The writer's sink id ("<job>/<node>/<subtask>"); empty in version 1 states.
  std::string sink_id;
  /// The writer's subtask index; -1 in version 1 states.
  int64_t subtask = -1;
  std::string run;                 ///< See progress_marker::run.
  int64_t last_checkpoint_id = 0;  ///< The checkpoint this state was taken for.
  std::vector<wal_epoch> pending;  ///< Sealed epochs not yet committed, oldest first.
};

/// The version encode_sink_state writes. Version 1 lacked the writer's sink id and subtask
/// index; decode_sink_state still reads it.
inline constexpr uint32_t sink_state_version = 2;

/// Binary, little-endian: "VKSK", u32 version, u32 sink id size + sink id, u32 subtask index,
/// u32 run size + run, i64 last checkpoint id, u32 epoch count, then per epoch: i64 epoch, u64
/// message count, u64 data size, per message (u8 has_key, u32 key size, u32 value size), then
/// the data. Version 1 is the same without the sink id and the subtask index.
void encode_sink_state(std::string& out, const std::string& sink_id, uint32_t subtask,
                       const std::string& run, int64_t last_checkpoint_id,
                       const std::vector<wal_epoch>& pending);

/// Reads encode_sink_state's bytes (version 1 or 2); state_error for another format or version,
/// or for truncated or inconsistent bytes.
result<sink_state> decode_sink_state(std::string_view bytes);

}  // namespace vigil::kafka
