#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"
#include "operators/kafka/sink/progress_marker.hpp"

/// The Kafka producer as the kafka_sink sees it: a small interface so that the write-ahead
/// protocol can be tested against a fake that implements commit, abort and fencing (the test
/// broker does not isolate transactions), with one implementation over librdkafka.

namespace vigil::kafka {

/// One message header. `name` is NUL-terminated (librdkafka takes a C string).
struct message_header {
  const char* name = "";
  std::string_view value;
};

/// What a client is made from.
struct txn_client_config {
  std::string bootstrap;
  /// The stable transactional.id; empty for a non-transactional idempotent producer.
  std::string transactional_id;
  /// Bound of every blocking call (init, commit, abort, flush, reading the progress topic) and
  /// the producer's transaction.timeout.ms.
  int64_t timeout_us = 60'000'000;
  /// Extra librdkafka properties, applied before the ones the sink manages.
  std::vector<std::pair<std::string, std::string>> properties;
};

/// A producer. Called from one thread. Every call is bounded in time by the config's timeout
/// and reports broker problems as errors (io_error), never by crashing or throwing.
class txn_client {
 public:
  virtual ~txn_client() = default;

  /// Registers the transactional id with the broker: fences every older producer with the same
  /// id (their later calls fail as fenced) and aborts the transaction they left open. May be
  /// called again after an error; it then starts over with a fresh producer if needed.
  virtual status init_transactions() = 0;
  virtual status begin_transaction() = 0;
  /// Queues one message (copied). `key` nullopt: no key (librdkafka's default partitioner).
  virtual status produce(const std::string& topic, std::optional<std::string_view> key,
                         std::string_view value, std::span<const message_header> headers) = 0;
  /// Delivers everything produced in the transaction and commits it.
  virtual status commit_transaction() = 0;
  /// Aborts the open transaction, if any.
  virtual status abort_transaction() = 0;
  /// Non-transactional producers: waits until every produced message is acknowledged.
  virtual status flush() = 0;
  /// The committed marker of `sink_id` and `run` with the highest epoch in `progress_topic`
  /// (read_committed, to the end offsets), or nullopt if there is none.
  virtual result<std::optional<progress_marker>> last_marker(const std::string& progress_topic,
                                                             std::string_view sink_id,
                                                             std::string_view run) = 0;
  /// True once a newer producer with the same transactional id has fenced this one; nothing
  /// this client does can succeed afterwards.
  virtual bool fenced() const = 0;
};

/// Makes a client; must not block on the network (the connection is made by the first call).
using txn_client_maker =
    std::function<result<std::unique_ptr<txn_client>>(const txn_client_config&)>;

}  // namespace vigil::kafka
