#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "tools/replay/replay.hpp"

struct rd_kafka_s;
struct rd_kafka_topic_s;
struct rd_kafka_message_s;

namespace vigil::replay {

/// Sends messages to a Kafka topic with an idempotent librdkafka producer; the record key is
/// the patient id, so a patient's messages stay in one partition, in order.
class kafka_output final : public message_output {
 public:
  /// Connects to `bootstrap` and checks that `topic` exists, waiting at most `timeout`, which
  /// also bounds each message's delivery. A message waits at most `linger` in the producer for
  /// others of its partition to share its request (librdkafka's linger.ms). Errors:
  /// invalid_argument for a bad configuration, io_error when no broker answers or the topic does
  /// not exist.
  static result<std::unique_ptr<kafka_output>> connect(
      const std::string& bootstrap, const std::string& topic, std::chrono::milliseconds timeout,
      std::chrono::milliseconds linger = std::chrono::milliseconds(5));
  ~kafka_output() override;
  kafka_output(const kafka_output&) = delete;
  kafka_output& operator=(const kafka_output&) = delete;

  /// Queues a message with Kafka timestamp `sent_at_us` (rounded down to ms); waits while
  /// librdkafka's queue is full, at most the timeout.
  status send(std::string_view key, std::string_view payload, int64_t sent_at_us) override;
  /// Flushes; an error names how many messages were not delivered and the first reason.
  status finish() override;

 private:
  kafka_output() = default;
  static void on_delivery(rd_kafka_s* rk, const rd_kafka_message_s* msg, void* opaque);
  status delivery_status() const;

  rd_kafka_s* rk_ = nullptr;
  rd_kafka_topic_s* topic_ = nullptr;
  std::string bootstrap_;
  std::string topic_name_;
  std::chrono::milliseconds timeout_{0};
  uint64_t failed_ = 0;      ///< Messages whose delivery failed.
  std::string first_error_;  ///< The reason of the first failure.
};

}  // namespace vigil::replay
