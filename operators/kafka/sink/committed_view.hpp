#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "operators/kafka/sink/progress_marker.hpp"

/// The committed view of a kafka_sink's output topic, rebuilt from the progress markers. The
/// test broker (librdkafka's mock cluster) does not isolate transactions, so read_committed
/// consumers see aborted records too; a record counts only if its (vigil.sink, vigil.epoch,
/// vigil.attempt) headers equal a marker's (sink, epoch, attempt). Against a real Kafka cluster
/// the view equals what read_committed consumers see. It needs every marker, so it is meant for
/// tests and tools on a progress topic that has not been compacted.

namespace vigil::kafka {

/// A message of the output topic.
struct output_record {
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;

  /// The value of header `name`, or nullopt.
  std::optional<std::string> header(std::string_view name) const;
};

struct committed_view_options {
  std::string bootstrap;
  std::string topic;           ///< The sink's output topic.
  std::string progress_topic;  ///< Default: "<topic>.progress".
  int64_t timeout_us = 30'000'000;
  std::vector<std::pair<std::string, std::string>> properties;  ///< Extra librdkafka properties.
};

struct committed_view {
  /// The records that count, by partition then offset.
  std::vector<output_record> records;
  /// Every marker, in the progress topic's order.
  std::vector<progress_marker> markers;
  /// Records of the output topic that do not count (aborted or unfinished attempts, or without
  /// the vigil headers).
  uint64_t discarded = 0;
  /// Distinct (sink, epoch) pairs written by more than one attempt (an epoch replayed after a
  /// restore or a failed commit).
  uint64_t replayed_epochs = 0;
  /// Distinct (sink, epoch) pairs with markers of more than one attempt: such an epoch is in the
  /// view twice. Always 0 for a correct sink.
  uint64_t duplicate_epochs = 0;
  /// Markers whose `records` differs from the number of records that match them.
  uint64_t incomplete_epochs = 0;
};

/// Consumes `topic` and the progress topic to their end offsets and rebuilds the view.
result<committed_view> read_committed_view(const committed_view_options& opts);

}  // namespace vigil::kafka
