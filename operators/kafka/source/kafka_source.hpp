#pragma once

#include <cstddef>
#include <memory>

#include "runtime/operator.hpp"

/// `kafka_source`: reads a Kafka topic whose message values are JSON objects (format json) or
/// any bytes (format raw).
///
/// format json: the record schema is the node's declared `output_schema:` (read like
/// file_source's JSON lines). format raw: the schema is kafka_source_raw_schema() and the event
/// time the message's Kafka timestamp.
/// Output ports: "out" (the records) and "errors" (partition int64, offset int64, reason string,
/// raw string) for every message that cannot become a record; nothing is dropped silently.
///
/// Partitions are assigned explicitly, without consumer-group rebalancing: subtask i of p reads
/// the partitions q with q % p == i. Offsets are never committed to Kafka; the checkpoint holds
/// them (snapshot_state: next offset and largest event time per partition). The watermark is the
/// minimum over the subtask's non-idle partitions of (largest event time - max_out_of_orderness
/// - 1 µs); see partition_watermarks. open() fetches the topic's metadata and offsets (bounded by
/// `metadata_timeout`); poll() never blocks.

namespace vigil {

/// The schema of the "errors" port: partition, offset, reason, raw (the message value, truncated
/// to kafka_source_raw_limit bytes).
schema_ptr kafka_source_errors_schema();

inline constexpr size_t kafka_source_raw_limit = 65536;

/// The output schema with format raw: raw string (the message value), key string? (the message
/// key; null without one), timestamp timestamp (the Kafka timestamp, also the event time).
schema_ptr kafka_source_raw_schema();

/// The factory of operator `kafka_source`.
std::unique_ptr<operator_factory> make_kafka_source_factory();

}  // namespace vigil
