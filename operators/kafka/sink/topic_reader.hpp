#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

/// Reads a whole Kafka topic, from the beginning of every partition to the end offsets it had
/// when the read started: the progress topic (a sink's last marker) and, in tests and tools,
/// the committed view of an output topic.

namespace vigil::kafka {

/// One consumed message; the views are valid only during the callback.
struct consumed_record {
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string_view> key;  ///< nullopt: the message has no key.
  std::string_view value;
  std::vector<std::pair<std::string_view, std::string_view>> headers;
};

struct topic_read_options {
  std::string bootstrap;
  std::string topic;
  /// read_committed (skip aborted transactions; stop at the last stable offset until open
  /// transactions end) or read_uncommitted.
  bool read_committed = true;
  /// The whole read, including the connection, must finish within this time.
  int64_t timeout_us = 30'000'000;
  /// Extra librdkafka properties (e.g. security settings). Producer-only properties are ignored.
  std::vector<std::pair<std::string, std::string>> properties;
};

/// Calls `on_record` for every message of the topic, in offset order within each partition
/// (partitions interleave). A topic that does not exist reads as empty. io_error (naming the
/// topic and the broker problem) if the end offsets cannot be reached within the timeout.
status read_topic(const topic_read_options& opts,
                  const std::function<void(const consumed_record&)>& on_record);

}  // namespace vigil::kafka
