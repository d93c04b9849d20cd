// A librdkafka client handle for the benchmarks of vigil-bench that produce and consume directly.
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace vigil::bench {

/// Destroys a librdkafka client.
struct rd_kafka_deleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using kafka_handle = std::unique_ptr<rd_kafka_t, rd_kafka_deleter>;

/// A librdkafka client of `type` with `settings`; errors name the setting librdkafka refused.
result<kafka_handle> make_client(rd_kafka_type_t type,
                                 const std::vector<std::pair<std::string, std::string>>& settings);

/// A consumer (read_uncommitted, no offset commits) reading `partitions` (topic, partition)
/// from their beginning, with fetch.wait.max.ms = `fetch_wait_ms`; polled with
/// rd_kafka_consumer_poll.
result<kafka_handle> make_assigned_consumer(
    const std::string& bootstrap, const std::string& group_id, int fetch_wait_ms,
    const std::vector<std::pair<std::string, int32_t>>& partitions);

/// The value of the last header `name`, or an empty view.
std::string_view header_of(rd_kafka_headers_t* headers, const char* name);

}  // namespace vigil::bench
