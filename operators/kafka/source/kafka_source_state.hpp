#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

/// The checkpointed state of one kafka_source subtask and its binary encoding.

namespace vigil {

/// Where one partition's reading stands.
struct kafka_partition_position {
  int32_t partition = 0;
  int64_t next_offset = 0;  ///< The offset of the next message to read.
  bool has_max_event_time = false;
  int64_t max_event_time = 0;  ///< The largest event time read so far (µs), if any.
  /// With `start: <timestamp>`: messages whose Kafka timestamp (µs) is before this are skipped
  /// until the first one at or after it. Absent (has_skip_before false) once that one was read.
  bool has_skip_before = false;
  int64_t skip_before_us = 0;

  friend bool operator==(const kafka_partition_position&,
                         const kafka_partition_position&) = default;
};

/// A subtask's positions in `topic`, one per partition it reads.
struct kafka_source_state {
  std::string topic;
  std::vector<kafka_partition_position> partitions;

  friend bool operator==(const kafka_source_state&, const kafka_source_state&) = default;
};

/// The version encode_kafka_source_state() writes.
inline constexpr uint8_t kafka_source_state_version = 1;

/// Encodes `state`: the magic "VKSS", a version byte, then the topic and the positions as
/// little-endian fixed-width integers.
std::string encode_kafka_source_state(const kafka_source_state& state);

/// Decodes what encode_kafka_source_state() wrote. A foreign, truncated or newer encoding is a
/// state_error naming what is wrong (e.g. "kafka_source state version 7 is not supported").
result<kafka_source_state> decode_kafka_source_state(std::string_view bytes);

}  // namespace vigil
