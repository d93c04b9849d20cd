// A librdkafka client handle for the benchmarks of vigil-bench that produce and consume directly.
#pragma once

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
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

}  // namespace vigil::bench
