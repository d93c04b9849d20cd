#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "operators/kafka/sink/txn_client.hpp"
#include "runtime/operator.hpp"

namespace vigil {

/// `kafka_sink`: writes every input record as one Kafka message (value: the row as a JSON
/// object with "_event_time"; key: the text of `key_field`, if configured). Every message
/// carries the headers vigil.sink ("<job>/<node>/<subtask>"), vigil.epoch and vigil.attempt.
///
/// mode exactly_once (default) is a write-ahead sink (DESIGN.md, "Exactly-once sinks"): the
/// messages of an epoch are held in the operator's checkpointed state; when the epoch's
/// checkpoint is complete they are produced in one Kafka transaction (transactional.id = the
/// sink id) together with a marker record in the progress topic, and committed. A restored
/// subtask fences older producers with its transactional.id, reads its last committed marker
/// and commits only the restored epochs after it. Restored with another parallelism, old subtask
/// j's pending epochs are committed by new subtask j % parallelism under j's sink id and run
/// (fencing j's transactional.id), the new subtasks write under a run of their own, and a
/// restore that would write replayed input twice is refused (see
/// docs/design/0008-kafka-exactly-once.md, "Rescaling"). Commit failures are logged and retried at
/// the next checkpoint; at the end of a bounded input the rest is committed, retried up to
/// transaction_timeout. mode at_least_once produces right away with an idempotent producer and
/// waits for the broker's acknowledgements at every checkpoint barrier.
std::unique_ptr<operator_factory> make_kafka_sink_factory();

/// What tests replace: the Kafka client and the clock used for retry backoff.
struct kafka_sink_hooks {
  kafka::txn_client_maker make_client;  ///< Default: the librdkafka client.
  std::function<int64_t()> now_us;      ///< Default: operator_context::now_us.
};

/// make_kafka_sink_factory() with the client and clock of `hooks`.
std::unique_ptr<operator_factory> make_kafka_sink_factory(kafka_sink_hooks hooks);

}  // namespace vigil
