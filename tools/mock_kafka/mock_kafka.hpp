// A Kafka cluster for tests and demos: librdkafka's built-in mock cluster, which speaks the
// real Kafka protocol on loopback ports.
//
// Known limit (DESIGN.md, "Exactly-once sinks"): the mock accepts every transactional call
// but does not implement transaction isolation. read_committed consumers see aborted
// records, offsets sent in a transaction are dropped, and init_transactions fences nothing.
// Tests that check exactly-once output rebuild the committed view from the sink's markers.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

struct rd_kafka_s;
struct rd_kafka_mock_cluster_s;

namespace vigil::tools {

/// The most brokers a mock cluster may have (each broker holds a listening socket; the bound
/// keeps a typo from opening thousands of ports).
inline constexpr int max_mock_brokers = 64;

/// The most partitions one mock topic may have.
inline constexpr int max_mock_partitions = 10000;

/// A topic to create when the cluster starts.
struct mock_topic {
  std::string name;
  int partitions = 1;
  int replication_factor = 1;  ///< 1..brokers.
};

/// Parses `NAME:PARTITIONS[:REPLICATION]` for a cluster of `brokers` brokers. NAME uses
/// Kafka's legal characters (letters, digits, '.', '_', '-'; at most 249); PARTITIONS is
/// 1..max_mock_partitions; REPLICATION is 1..brokers and defaults to min(3, brokers).
result<mock_topic> parse_mock_topic(std::string_view spec, int brokers);

/// A running mock cluster. Its brokers serve on their own thread from start() until the
/// object is destroyed.
class mock_kafka_cluster {
 public:
  /// Starts `brokers` brokers on 127.0.0.1 (ephemeral ports) and creates `topics` (names
  /// must be distinct). Returns invalid_argument for bad counts, io_error if librdkafka
  /// cannot create the cluster or a topic.
  static result<std::unique_ptr<mock_kafka_cluster>> start(int brokers,
                                                           const std::vector<mock_topic>& topics);

  ~mock_kafka_cluster();
  mock_kafka_cluster(const mock_kafka_cluster&) = delete;
  mock_kafka_cluster& operator=(const mock_kafka_cluster&) = delete;

  /// The `bootstrap.servers` value for clients: "127.0.0.1:port,127.0.0.1:port,...".
  const std::string& bootstrap() const { return bootstrap_; }

 private:
  mock_kafka_cluster() = default;

  rd_kafka_s* owner_ = nullptr;                 ///< The handle the mock API requires.
  rd_kafka_mock_cluster_s* cluster_ = nullptr;  ///< Destroyed before owner_.
  std::string bootstrap_;
};

}  // namespace vigil::tools
